"""Name, describe and publish versions of the fitted transform in the ``feature_transform`` model store.

A version holds ``model/`` (the Spark ``PipelineModel``) and ``metadata.json``; the
store's ``CURRENT`` pointer names the latest, replaced only after the version is
complete. The streaming job watches ``CURRENT`` to reload its track embeddings when a
new transform is published.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pyspark.ml import PipelineModel

from fma_platform.contracts import Pointer
from fma_platform.embeddings import EMBEDDING
from fma_platform.model_store import ModelStore, ModelStoreError
from spark_jobs.features.errors import REASON_BAD_VERSION, TransformInputError
from spark_jobs.features.transform import (
    embedding_dimension,
    explained_variance,
    is_normalized,
    zero_variance_columns,
)
from audio_features.fma_schema import FLAT_FEATURE_NAMES
from spark_jobs.features.validation import FeatureProfile

MODEL_FOLDER = "model"  # the Spark pipeline inside a version folder


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
        "feature_columns": list(FLAT_FEATURE_NAMES),
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


def check_version(store: ModelStore, version: str) -> None:
    """Raise ``TransformInputError`` (bad_version) unless the store accepts ``version`` as a folder name."""
    try:
        store.version_dir(version)
    except ModelStoreError as exc:
        raise TransformInputError(REASON_BAD_VERSION, str(exc)) from exc


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
        "normalized": is_normalized(model),
        "input_rows": profile.rows,
        "input_fingerprint": profile.fingerprint,
        "input_path": features_path,
        "explained_variance": variance,
        "cumulative_explained_variance": cumulative,
        "feature_columns": list(FLAT_FEATURE_NAMES),
        "zero_variance_columns": zero_variance_columns(model),
        "embedding_column": EMBEDDING,
        "parameters": parameters,
    }


def publish_transform_model(store: ModelStore, model: PipelineModel, metadata: dict[str, Any]) -> Path:
    """Write the model and metadata of ``metadata["version"]``, then point ``CURRENT`` at it; returns the folder.

    Overwrites an existing version (a rerun is idempotent).
    """
    version = metadata["version"]
    folder = store.prepare(version)
    model.write().overwrite().save(str(folder / MODEL_FOLDER))
    store.write_metadata(version, metadata)
    store.point(Pointer.CURRENT, version)
    return folder
