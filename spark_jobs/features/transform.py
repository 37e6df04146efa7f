"""The transform itself: fit the assemble -> standardise -> PCA(k) -> L2 Spark ML pipeline and embed tracks with it.

1. ``VectorAssembler`` over the 518 flat feature columns, in ``FLAT_FEATURE_NAMES`` order.
2. ``StandardScaler(withMean=True, withStd=True)``: the features live on wildly different
   scales (kurtosis vs. chroma means), and PCA on raw values would only see the largest.
   Centering matters too: Spark's ``PCAModel.transform`` projects without centering.
   **Zero-variance columns** (a constant feature, e.g. a statistic that is always 0 in a
   small sample) are kept, so the column order of a saved model never depends on the
   data, and Spark scales them to exactly 0.0: they carry no information and add nothing
   to any component. They are listed in the model's metadata.
3. ``PCA(k)``, ``k`` capped at ``min(n_features, n_rows - 1)`` (a sample of ``n`` rows
   spans at most ``n - 1`` centred dimensions); the cap is logged and recorded.
4. Optionally (default on) ``Normalizer(p=2)``: unit-length embeddings, so that
   ``||a - b||^2 = 2 - 2 cos(a, b)`` and the Euclidean LSH of the similarity step ranks
   neighbours exactly as cosine similarity would. The price is the vector's length (how
   far a track is from the average track), which similarity does not need. A track at
   the exact centre stays the zero vector.
"""

from __future__ import annotations

import logging

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import PCA, Normalizer, PCAModel, StandardScaler, StandardScalerModel, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame

from fma_platform.embeddings import EMBEDDING, TRACK_ID
from spark_jobs.features.errors import REASON_BAD_K, REASON_BAD_MODEL, REASON_TOO_FEW_ROWS, TransformInputError
from spark_jobs.features.reading import select_track_features
from audio_features.fma_schema import FLAT_FEATURE_NAMES
from spark_jobs.features.validation import FeatureProfile, validate_track_features

log = logging.getLogger(__name__)

DEFAULT_K = 32

# Intermediate column names of the pipeline.
_ASSEMBLED, _SCALED, _PROJECTED, _NORMALIZED = "features_raw", "features_scaled", "features_pca", "features_unit"


def capped_k(k: int, *, n_features: int, n_rows: int) -> int:
    """``k`` limited to ``min(n_features, n_rows - 1)``, the most components the data has."""
    if k < 1:
        raise TransformInputError(REASON_BAD_K, f"k must be >= 1, got {k}")
    limit = min(n_features, n_rows - 1)
    if limit < 1:
        raise TransformInputError(REASON_TOO_FEW_ROWS, f"{n_rows} row(s); PCA needs at least 2")
    if k > limit:
        log.warning("PCA k=%d capped to %d = min(%d features, %d rows - 1)", k, limit, n_features, n_rows)
    return min(k, limit)


def build_transform_pipeline(k: int, *, normalize: bool = True) -> Pipeline:
    """The unfitted pipeline: assemble 518 features, standardise, PCA(k), [L2-normalise]."""
    stages = [
        VectorAssembler(inputCols=list(FLAT_FEATURE_NAMES), outputCol=_ASSEMBLED, handleInvalid="error"),
        StandardScaler(inputCol=_ASSEMBLED, outputCol=_SCALED, withMean=True, withStd=True),
        PCA(k=k, inputCol=_SCALED, outputCol=_PROJECTED),
    ]
    if normalize:
        stages.append(Normalizer(p=2.0, inputCol=_PROJECTED, outputCol=_NORMALIZED))
    return Pipeline(stages=stages)


def fit_transform_model(
    features_df: DataFrame,
    k: int = DEFAULT_K,
    *,
    normalize: bool = True,
    profile: FeatureProfile | None = None,
) -> PipelineModel:
    """Validate ``features_df`` and fit the transform pipeline on it.

    ``profile``: the result of ``validate_track_features`` on this same DataFrame, to
    skip a second pass over the data (the job needs the profile for the version).
    """
    profile = profile or validate_track_features(features_df)
    k = capped_k(k, n_features=len(FLAT_FEATURE_NAMES), n_rows=profile.rows)
    return build_transform_pipeline(k, normalize=normalize).fit(select_track_features(features_df))


def embed_tracks(model: PipelineModel, features_df: DataFrame) -> DataFrame:
    """``track_id`` and ``embedding`` (array<float> of length k) for every row.

    Checks the schema only (no pass over the data), so it also works on a streaming
    DataFrame; a null or NaN feature fails the query in ``VectorAssembler``.
    """
    output = model.stages[-1].getOutputCol()
    transformed = model.transform(select_track_features(features_df))
    return transformed.select(TRACK_ID, vector_to_array(output, dtype="float32").alias(EMBEDDING))


def explained_variance(model: PipelineModel) -> list[float]:
    """Fraction of the standardised features' total variance per component, descending."""
    return [float(v) for v in _stage(model, PCAModel).explainedVariance.toArray()]


def zero_variance_columns(model: PipelineModel) -> list[str]:
    """Feature columns that were constant in the fitted data (scaled to 0.0)."""
    std = _stage(model, StandardScalerModel).std.toArray()
    return [name for name, s in zip(FLAT_FEATURE_NAMES, std) if s == 0.0]


def embedding_dimension(model: PipelineModel) -> int:
    """The k of the fitted PCA (after capping)."""
    return _stage(model, PCAModel).getK()


def is_normalized(model: PipelineModel) -> bool:
    """Whether the model ends with the L2 ``Normalizer`` (unit-length embeddings)."""
    return isinstance(model.stages[-1], Normalizer)


def _stage(model: PipelineModel, kind: type):
    stages = [s for s in model.stages if isinstance(s, kind)]
    if len(stages) != 1:
        raise TransformInputError(REASON_BAD_MODEL, f"model has {len(stages)} {kind.__name__} stages")
    return stages[0]
