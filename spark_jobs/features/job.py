"""Run the feature transform once: read and validate the chunks, fit, write the embeddings Parquet, publish the model.

The embeddings Parquet (``track_id, embedding, model_version``) is what the ETL's load
step reads into ``track_features``; the model goes to the ``feature_transform`` model
store (``spark_jobs.features.versions``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fma_platform.contracts import ModelFamily
from fma_platform.embeddings import MODEL_VERSION
from fma_platform.model_store import ModelStore
from fma_platform.settings import Settings, get_settings
from spark_jobs.features.reading import read_track_features
from spark_jobs.features.transform import DEFAULT_K, embed_tracks, fit_transform_model
from spark_jobs.features.validation import validate_track_features
from spark_jobs.features.versions import (
    check_version,
    default_version,
    model_metadata,
    publish_transform_model,
    safe_version,
)


def default_model_dir(settings: Settings) -> Path:
    """The ``feature_transform`` store's folder under the settings' ``models_dir``."""
    return ModelStore.of(settings.models_dir, ModelFamily.FEATURE_TRANSFORM).root


def with_model_version(embeddings: DataFrame, version: str) -> DataFrame:
    """``embeddings`` with a constant ``model_version`` column, so consumers can tell versions apart."""
    return embeddings.withColumn(MODEL_VERSION, F.lit(version))


def run(
    spark: SparkSession,
    *,
    features_path: str,
    out: str,
    model_dir: Path | None = None,
    k: int = DEFAULT_K,
    normalize: bool = True,
    version: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Read, validate, fit, embed, write embeddings, publish the model; return the model's metadata.

    ``model_dir``: the store's folder (default: ``default_model_dir``). ``version``: a
    run or snapshot id (made folder-safe); default a hash of the data and parameters.
    """
    settings = settings or get_settings()
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir(settings)
    store = ModelStore(model_dir)
    features = read_track_features(spark, features_path).cache()
    try:
        profile = validate_track_features(features)
        resolved = safe_version(version) if version else default_version(profile, k=k, normalize=normalize)
        check_version(store, resolved)
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
        publish_transform_model(store, model, metadata)
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
