"""spark-submit entrypoint: fit the feature transform and embed every track.

``spark-submit spark_jobs/transform_features.py --features OUT_DIR/chunks --out EMB.parquet``

The ETL's transform step. One Spark ML ``Pipeline`` turns the 518 FMA features of a
track into a short embedding:

1. ``VectorAssembler`` over the 518 flat feature columns, in ``feature_columns()`` order.
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

The fitted model is versioned under ``MODEL_DIR/<version>/{model,metadata.json}`` and
``MODEL_DIR/CURRENT`` names the latest version (replaced atomically);
``load_current_model`` gives the streaming job and the player the same transform.
The job ends by printing one JSON summary line.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import logging
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import PCA, Normalizer, PCAModel, StandardScaler, StandardScalerModel, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import NumericType

from audio_features.fma_schema import feature_columns, flat_feature_name
from fma_platform.errors import ReasonedError
from fma_platform.files import write_text_atomic
from fma_platform.settings import Settings, get_settings
from spark_jobs.session import spark_session

log = logging.getLogger(__name__)

APP_NAME = "transform-features"
TRACK_ID = "track_id"
EMBEDDING = "embedding"
MODEL_VERSION = "model_version"
FEATURE_NAMES: tuple[str, ...] = tuple(flat_feature_name(c) for c in feature_columns())
DEFAULT_K = 32
MODEL_SUBDIR = "model"
METADATA_FILE = "metadata.json"
CURRENT_FILE = "CURRENT"

# Intermediate column names of the pipeline.
_ASSEMBLED, _SCALED, _PROJECTED, _NORMALIZED = "features_raw", "features_scaled", "features_pca", "features_unit"

REASON_MISSING_COLUMNS = "missing_columns"
REASON_NON_NUMERIC_COLUMNS = "non_numeric_columns"
REASON_INVALID_VALUES = "invalid_values"
REASON_NULL_TRACK_IDS = "null_track_ids"
REASON_DUPLICATE_TRACK_IDS = "duplicate_track_ids"
REASON_TOO_FEW_ROWS = "too_few_rows"
REASON_NO_INPUT_FILES = "no_input_files"
REASON_BAD_K = "bad_k"
REASON_BAD_VERSION = "bad_version"
REASON_NO_CURRENT_MODEL = "no_current_model"
REASON_BAD_MODEL = "bad_model"


class TransformInputError(ReasonedError):
    """Input the transform cannot use; ``reason`` is one of the ``REASON_*`` codes."""


# -- reading ---------------------------------------------------------------------------


def feature_files(path: str | Path) -> list[str]:
    """The Parquet files behind ``path``: a file, a folder (searched recursively) or a glob.

    Resolved on the driver's file system, so that files Spark cannot read together (see
    ``read_track_features``) can be inspected first. Sorted for a stable order.
    """
    text = str(path)
    if glob.has_magic(text):
        files = glob.glob(text, recursive=True)
    elif Path(text).is_dir():
        files = [str(p) for p in Path(text).rglob("*.parquet") if not p.name.startswith((".", "_"))]
    else:
        files = [text] if Path(text).is_file() else []
    files = sorted(f for f in files if Path(f).is_file())
    if not files:
        raise TransformInputError(REASON_NO_INPUT_FILES, f"no Parquet files at {text!r}")
    return files


def non_empty_feature_files(files: Sequence[str]) -> list[str]:
    """``files`` without the zero-row ones, after checking each has every feature column.

    Reads only Parquet footers. A chunk whose tracks all failed extraction is written
    with untyped (null) columns, and Spark refuses to read it together with typed
    chunks; it holds no rows, so leaving it out loses nothing (the count is logged).
    """
    import pyarrow.parquet as pq

    kept = []
    for name in files:
        metadata = pq.read_metadata(name)
        if metadata.num_rows == 0:
            continue
        missing = sorted(set((TRACK_ID, *FEATURE_NAMES)) - set(metadata.schema.names))
        if missing:
            raise TransformInputError(REASON_MISSING_COLUMNS, f"{name} lacks {_name_some(missing)}")
        kept.append(name)
    if len(kept) < len(files):
        log.warning("skipped %d Parquet file(s) with no rows", len(files) - len(kept))
    if not kept:
        raise TransformInputError(REASON_TOO_FEW_ROWS, f"all {len(files)} Parquet file(s) are empty")
    return kept


def read_track_features(spark: SparkSession, path: str | Path) -> DataFrame:
    """``track_id`` and the 518 features (as double) from the Parquet at ``path``.

    Other columns of the extraction output (duration, tempo, timings) are dropped.
    """
    files = non_empty_feature_files(feature_files(path))
    raw = spark.read.parquet(*files)
    return select_track_features(raw)


def select_track_features(raw: DataFrame) -> DataFrame:
    """``track_id`` (long) and the feature columns (double), in the model's column order."""
    check_feature_schema(raw)
    return raw.select(
        F.col(TRACK_ID).cast("long").alias(TRACK_ID),
        *(F.col(name).cast("double").alias(name) for name in FEATURE_NAMES),
    )


# -- validation ------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureProfile:
    """What one pass over the input found: size, bad values per column, a fingerprint.

    ``fingerprint`` is an order-independent hash of every row's content (xor of
    per-row xxhash64), so the same data in any partitioning gives the same value.
    """

    rows: int
    null_track_ids: int
    invalid_counts: dict[str, int] = field(default_factory=dict)
    duplicate_track_ids: tuple[int, ...] = ()
    fingerprint: int = 0


def check_feature_schema(features_df: DataFrame) -> None:
    """Raise ``TransformInputError`` if a feature column is missing or not numeric."""
    present = {f.name: f.dataType for f in features_df.schema.fields}
    missing = [name for name in (TRACK_ID, *FEATURE_NAMES) if name not in present]
    if missing:
        raise TransformInputError(REASON_MISSING_COLUMNS, f"{len(missing)} missing: {_name_some(missing)}")
    non_numeric = [name for name in (TRACK_ID, *FEATURE_NAMES) if not isinstance(present[name], NumericType)]
    if non_numeric:
        raise TransformInputError(REASON_NON_NUMERIC_COLUMNS, _name_some(non_numeric))


def profile_track_features(features_df: DataFrame) -> FeatureProfile:
    """Count rows, null track ids and null/NaN/infinite values per feature in one pass.

    A second small job lists up to 5 duplicated track ids.
    """
    check_feature_schema(features_df)
    aggregates = [
        F.count(F.lit(1)).alias("rows"),
        F.count(F.when(F.col(TRACK_ID).isNull(), 1)).alias("null_track_ids"),
        F.bit_xor(F.xxhash64(TRACK_ID, *FEATURE_NAMES)).alias("fingerprint"),
        *(F.count(F.when(_is_invalid(name), 1)).alias(name) for name in FEATURE_NAMES),
    ]
    row = features_df.agg(*aggregates).first().asDict()
    duplicates = (
        features_df.where(F.col(TRACK_ID).isNotNull())
        .groupBy(TRACK_ID).count().where(F.col("count") > 1)
        .orderBy(TRACK_ID).limit(5).collect()
    )
    return FeatureProfile(
        rows=row["rows"],
        null_track_ids=row["null_track_ids"],
        invalid_counts={name: row[name] for name in FEATURE_NAMES if row[name]},
        duplicate_track_ids=tuple(r[TRACK_ID] for r in duplicates),
        fingerprint=row["fingerprint"] or 0,
    )


def check_feature_profile(profile: FeatureProfile) -> None:
    """Raise ``TransformInputError`` naming the first problem the profile shows."""
    if profile.invalid_counts:
        described = [f"{name}={count}" for name, count in profile.invalid_counts.items()]
        raise TransformInputError(
            REASON_INVALID_VALUES,
            f"null/NaN/infinite values in {len(described)} feature column(s): {_name_some(described)}",
        )
    if profile.null_track_ids:
        raise TransformInputError(REASON_NULL_TRACK_IDS, f"{profile.null_track_ids} row(s) have no track_id")
    if profile.duplicate_track_ids:
        raise TransformInputError(
            REASON_DUPLICATE_TRACK_IDS, f"e.g. {list(profile.duplicate_track_ids)} appear more than once"
        )
    if profile.rows < 2:
        raise TransformInputError(REASON_TOO_FEW_ROWS, f"{profile.rows} row(s); PCA needs at least 2")


def validate_track_features(features_df: DataFrame) -> FeatureProfile:
    """Profile ``features_df`` and raise ``TransformInputError`` if it cannot be fitted."""
    profile = profile_track_features(features_df)
    check_feature_profile(profile)
    return profile


def _is_invalid(name: str):
    column = F.col(name)
    return column.isNull() | F.isnan(column) | column.isin(math.inf, -math.inf)


def _name_some(items: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... ({len(items) - limit} more)"


# -- the pipeline ----------------------------------------------------------------------


def capped_k(k: int, *, n_features: int, n_rows: int) -> int:
    """``k`` limited to ``min(n_features, n_rows - 1)``, the most components the data has."""
    if k < 1:
        raise TransformInputError(REASON_BAD_K, f"k must be >= 1, got {k}")
    limit = min(n_features, n_rows - 1)
    if limit < 1:
        raise TransformInputError(REASON_TOO_FEW_ROWS, f"{n_rows} row(s); PCA needs at least 2")
    if k > limit:
        log.warning(
            "PCA k=%d capped to %d = min(%d features, %d rows - 1)", k, limit, n_features, n_rows
        )
    return min(k, limit)


def build_transform_pipeline(k: int, *, normalize: bool = True) -> Pipeline:
    """The unfitted pipeline: assemble 518 features, standardize, PCA(k), [L2-normalize]."""
    stages = [
        VectorAssembler(inputCols=list(FEATURE_NAMES), outputCol=_ASSEMBLED, handleInvalid="error"),
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
    skip a second pass over the data (``main`` needs the profile for the version).
    """
    profile = profile or validate_track_features(features_df)
    k = capped_k(k, n_features=len(FEATURE_NAMES), n_rows=profile.rows)
    return build_transform_pipeline(k, normalize=normalize).fit(select_track_features(features_df))


def embed_tracks(model: PipelineModel, features_df: DataFrame) -> DataFrame:
    """``track_id`` and ``embedding`` (array<float> of length k) for every row.

    Checks the schema only (no pass over the data), so it also works on a streaming
    DataFrame; a null or NaN feature fails the query in ``VectorAssembler``.
    """
    output = model.stages[-1].getOutputCol()
    transformed = model.transform(select_track_features(features_df))
    return transformed.select(TRACK_ID, vector_to_array(output, dtype="float32").alias(EMBEDDING))


def _stage(model: PipelineModel, kind: type):
    stages = [s for s in model.stages if isinstance(s, kind)]
    if len(stages) != 1:
        raise TransformInputError(REASON_BAD_MODEL, f"model has {len(stages)} {kind.__name__} stages")
    return stages[0]


def explained_variance(model: PipelineModel) -> list[float]:
    """Fraction of the standardized features' total variance per component, descending."""
    return [float(v) for v in _stage(model, PCAModel).explainedVariance.toArray()]


def zero_variance_columns(model: PipelineModel) -> list[str]:
    """Feature columns that were constant in the fitted data (scaled to 0.0)."""
    std = _stage(model, StandardScalerModel).std.toArray()
    return [name for name, s in zip(FEATURE_NAMES, std) if s == 0.0]


def embedding_dimension(model: PipelineModel) -> int:
    """The k of the fitted PCA (after capping)."""
    return _stage(model, PCAModel).getK()


# -- versions and persistence ----------------------------------------------------------


def default_version(profile: FeatureProfile, *, k: int, normalize: bool) -> str:
    """A 12-hex-digit hash of the input's content and the parameters.

    The same data with the same parameters always gives the same version, so a rerun
    overwrites its own files instead of adding a new model.
    """
    identity = {
        "rows": profile.rows,
        "fingerprint": profile.fingerprint,
        "k": k,
        "normalize": normalize,
        "feature_columns": list(FEATURE_NAMES),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def safe_version(version: str) -> str:
    """``version`` usable as a folder name: characters outside ``[A-Za-z0-9._-]`` -> ``_``.

    Airflow run ids contain ``:`` and ``+``, which Hadoop paths do not accept.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", version.strip())
    if not safe or set(safe) == {"."}:
        raise TransformInputError(REASON_BAD_VERSION, f"unusable version {version!r}")
    return safe


def model_metadata(
    model: PipelineModel,
    *,
    version: str,
    requested_version: str | None,
    requested_k: int,
    profile: FeatureProfile,
    features_path: str,
    parameters: dict[str, Any],
) -> dict[str, Any]:
    """Everything needed to trust and reuse a fitted model, as JSON-ready values."""
    variance = explained_variance(model)
    cumulative = [sum(variance[: i + 1]) for i in range(len(variance))]
    return {
        "version": version,
        "requested_version": requested_version,
        "k": embedding_dimension(model),
        "requested_k": requested_k,
        "normalized": isinstance(model.stages[-1], Normalizer),
        "input_rows": profile.rows,
        "input_fingerprint": profile.fingerprint,
        "input_path": features_path,
        "explained_variance": variance,
        "cumulative_explained_variance": cumulative,
        "feature_columns": list(FEATURE_NAMES),
        "zero_variance_columns": zero_variance_columns(model),
        "embedding_column": EMBEDDING,
        "parameters": parameters,
    }


def version_dir(model_dir: str | Path, version: str) -> Path:
    """``MODEL_DIR/<version>``."""
    return Path(model_dir) / safe_version(version)


def save_transform_model(model: PipelineModel, metadata: dict[str, Any], model_dir: str | Path) -> Path:
    """Write the model and its metadata under ``MODEL_DIR/<version>``, then point CURRENT at it.

    Overwrites an existing version (a rerun is idempotent). CURRENT is replaced last and
    atomically, so a reader sees either the old complete version or the new one.
    """
    target = version_dir(model_dir, metadata["version"])
    target.mkdir(parents=True, exist_ok=True)
    model.write().overwrite().save(str(target / MODEL_SUBDIR))
    write_text_atomic(target / METADATA_FILE, json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    write_text_atomic(Path(model_dir) / CURRENT_FILE, metadata["version"] + "\n")
    return target


def current_version(model_dir: str | Path) -> str:
    """The version CURRENT names; ``TransformInputError`` if there is none yet."""
    pointer = Path(model_dir) / CURRENT_FILE
    if not pointer.is_file():
        raise TransformInputError(REASON_NO_CURRENT_MODEL, f"no {pointer}: run transform_features first")
    return pointer.read_text().strip()


def load_model(model_dir: str | Path, version: str) -> tuple[PipelineModel, dict[str, Any]]:
    """The fitted model and metadata of one version (needs an active SparkSession)."""
    target = version_dir(model_dir, version)
    if not (target / METADATA_FILE).is_file():
        raise TransformInputError(REASON_NO_CURRENT_MODEL, f"version {version!r} has no {target / METADATA_FILE}")
    metadata = json.loads((target / METADATA_FILE).read_text())
    return PipelineModel.load(str(target / MODEL_SUBDIR)), metadata


def load_current_model(model_dir: str | Path | None = None) -> tuple[PipelineModel, dict[str, Any]]:
    """The model CURRENT points at, and its metadata; default folder from the settings."""
    model_dir = model_dir or default_model_dir(get_settings())
    return load_model(model_dir, current_version(model_dir))


def default_model_dir(settings: Settings) -> Path:
    """``settings.models_dir / "feature_transform"``."""
    return settings.models_dir / "feature_transform"


def with_model_version(embeddings: DataFrame, version: str) -> DataFrame:
    """``embeddings`` with a constant ``model_version`` column, so consumers can tell versions apart."""
    return embeddings.withColumn(MODEL_VERSION, F.lit(version))


def transform_and_save(
    spark: SparkSession,
    *,
    features_path: str,
    out: str,
    model_dir: Path,
    k: int = DEFAULT_K,
    normalize: bool = True,
    version: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Read, validate, fit, embed, write embeddings, save the model; return the metadata.

    Everything ``main`` does except argument parsing and the session's life cycle, so a
    test can run the whole step on a shared session.
    """
    settings = settings or get_settings()
    features = read_track_features(spark, features_path).cache()
    try:
        profile = validate_track_features(features)
        resolved = safe_version(version) if version else default_version(profile, k=k, normalize=normalize)
        model = fit_transform_model(features, k, normalize=normalize, profile=profile)
        embeddings = with_model_version(embed_tracks(model, features), resolved)
        embeddings.write.mode("overwrite").parquet(out)
        parameters = {
            "k": k, "normalize": normalize, "out": out, "model_dir": str(model_dir),
            "spark_master": spark.sparkContext.master, "spark_version": spark.version,
            "spark_shuffle_partitions": settings.spark_shuffle_partitions,
            "spark_driver_memory": settings.spark_driver_memory, "dataset": settings.dataset,
        }
        metadata = model_metadata(
            model, version=resolved, requested_version=version, requested_k=k,
            profile=profile, features_path=features_path, parameters=parameters,
        )
        save_transform_model(model, metadata, model_dir)
    finally:
        features.unpersist()
    return metadata


def summary_line(metadata: dict[str, Any]) -> str:
    """The one JSON line the job prints: version, rows, k, cumulative explained variance."""
    cumulative = metadata["cumulative_explained_variance"]
    return json.dumps({
        "version": metadata["version"],
        "rows": metadata["input_rows"],
        "k": metadata["k"],
        "requested_k": metadata["requested_k"],
        "cumulative_explained_variance": cumulative[-1] if cumulative else 0.0,
    })


def parse_args(argv: list[str] | None, settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True, help="Parquet file, folder or glob of extraction chunks")
    parser.add_argument("--out", required=True, help="embeddings Parquet (track_id, embedding, model_version)")
    parser.add_argument("--model-dir", type=Path, default=default_model_dir(settings))
    parser.add_argument("--version", default=None, help="run id or snapshot id; default: hash of data + params")
    parser.add_argument("--k", type=int, default=DEFAULT_K, help="PCA components (capped by the data)")
    parser.add_argument("--no-normalize", dest="normalize", action="store_false",
                        help="keep PCA coordinates instead of unit-length embeddings")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    args = parse_args(argv, settings)
    spark = spark_session(APP_NAME, settings=settings)
    try:
        metadata = transform_and_save(
            spark, features_path=args.features, out=args.out, model_dir=args.model_dir,
            k=args.k, normalize=args.normalize, version=args.version, settings=settings,
        )
    except TransformInputError as exc:
        print(json.dumps({"error": exc.reason, "detail": exc.detail}), file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(summary_line(metadata), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
