"""The transform job: reading extraction chunks, versions in the model store, the run, and spark-submit by path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from pyspark.ml import PipelineModel

from fma_platform.contracts import Pointer
from fma_platform.model_store import ModelStore
from fma_platform.settings import PROJECT_ROOT
from infra.services import spark_env
from spark_jobs.features.errors import REASON_BAD_VERSION, TransformInputError
from spark_jobs.features.job import run
from spark_jobs.features.reading import read_track_features
from spark_jobs.features.transform import embed_tracks, fit_transform_model
from audio_features.fma_schema import FLAT_FEATURE_NAMES
from spark_jobs.features.versions import MODEL_FOLDER, publish_transform_model, safe_version
from tests.spark_jobs.features.latent import N_FACTORS, embeddings_by_track, latent_features, write_extraction_chunks


def model_layout(store: ModelStore, version: str) -> tuple[list[str], list[str], int]:
    """Versions, a version's entries and the file count (Spark names stages by uid)."""
    files = sum(p.is_file() for p in store.root.rglob("*"))
    entries = sorted(p.name for p in store.version_dir(version).iterdir())
    return sorted(p.name for p in store.root.iterdir()), entries, files


def test_reads_extraction_chunks_by_folder_or_glob(spark, tmp_path):
    write_extraction_chunks(tmp_path, latent_features(10))

    for path in (tmp_path / "chunks", tmp_path / "chunks" / "chunk-*.parquet"):
        features = read_track_features(spark, path)
        assert features.columns == ["track_id", *FLAT_FEATURE_NAMES]
        assert features.count() == 10
    with pytest.raises(TransformInputError, match="no Parquet files"):
        read_track_features(spark, tmp_path / "nowhere")


def test_run_ids_become_safe_folder_names():
    assert safe_version("scheduled__2024-01-01T00:00:00+00:00") == "scheduled__2024-01-01T00_00_00_00_00"
    with pytest.raises(TransformInputError):
        safe_version("..")


def test_a_version_the_store_refuses_stops_the_run_before_fitting(spark, tmp_path):
    write_extraction_chunks(tmp_path, latent_features(8))
    with pytest.raises(TransformInputError) as refused:
        run(spark, features_path=str(tmp_path / "chunks"), out=str(tmp_path / "emb.parquet"),
            model_dir=tmp_path / "models", k=N_FACTORS, version="_hidden")
    assert refused.value.reason == REASON_BAD_VERSION
    assert not (tmp_path / "emb.parquet").exists() and not (tmp_path / "models").exists()


def test_published_model_reloads_identically_and_current_follows_the_latest(spark, tmp_path):
    store = ModelStore(tmp_path / "models")
    assert store.read_pointer(Pointer.CURRENT) is None
    older = fit_transform_model(spark.createDataFrame(latent_features(12, seed=4)), N_FACTORS)
    publish_transform_model(store, older, {"version": "older"})
    assert store.read_pointer(Pointer.CURRENT) == "older"
    write_extraction_chunks(tmp_path, latent_features(40, seed=1))
    job = dict(features_path=str(tmp_path / "chunks"), out=str(tmp_path / "embeddings.parquet"),
               model_dir=store.root, k=N_FACTORS, version="manual__2024-05-01T00:00:00+00:00")

    metadata = run(spark, **job)

    version = "manual__2024-05-01T00_00_00_00_00"
    assert store.read_pointer(Pointer.CURRENT) == version and store.versions() == ["older", version]
    assert metadata["version"] == version and metadata["input_rows"] == 40 and metadata["k"] == N_FACTORS
    assert metadata["feature_columns"] == list(FLAT_FEATURE_NAMES)
    assert metadata["cumulative_explained_variance"][-1] == pytest.approx(sum(metadata["explained_variance"]))
    assert store.metadata(version) == metadata
    written = spark.read.parquet(job["out"])
    assert sorted(written.columns) == ["embedding", "model_version", "track_id"]
    assert {r["model_version"] for r in written.select("model_version").distinct().collect()} == {version}

    model = PipelineModel.load(str(store.version_dir(version) / MODEL_FOLDER))
    reloaded = embeddings_by_track(embed_tracks(model, read_track_features(spark, job["features_path"])))
    saved = embeddings_by_track(written)
    assert reloaded.keys() == saved.keys()
    for track_id, vector in saved.items():
        np.testing.assert_array_equal(reloaded[track_id], vector)

    layout_before = model_layout(store, version)
    assert run(spark, **job) == metadata  # a rerun of the same version
    assert model_layout(store, version) == layout_before  # overwritten in place, nothing added
    assert store.read_pointer(Pointer.CURRENT) == version


@pytest.mark.slow
def test_spark_submit_writes_embeddings_model_and_summary(settings, tmp_path):
    write_extraction_chunks(tmp_path, latent_features(30, seed=2))
    store, out = ModelStore(tmp_path / "models"), tmp_path / "embeddings.parquet"
    command = [
        os.path.join(os.path.dirname(sys.executable), "spark-submit"), "--master", "local[1]",
        str(PROJECT_ROOT / "spark_jobs" / "transform_features.py"),
        "--features", str(tmp_path / "chunks" / "chunk-*.parquet"), "--out", str(out),
        "--model-dir", str(store.root), "--k", "40",
    ]

    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True,
                            env={**os.environ, **spark_env(settings)}, timeout=600)
    elapsed = time.perf_counter() - started

    assert result.returncode == 0, result.stderr[-3000:]
    # spark-submit merges the Python process's stderr (log lines) into its stdout.
    json_lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert json_lines, result.stdout[-3000:]
    summary = json.loads(json_lines[-1])
    assert summary["rows"] == 30 and summary["k"] == 29 and summary["requested_k"] == 40
    assert summary["cumulative_explained_variance"] == pytest.approx(1.0, abs=1e-6)
    version = store.require_pointer(Pointer.CURRENT)
    assert version == summary["version"] and len(version) == 12
    assert (store.version_dir(version) / MODEL_FOLDER).is_dir()
    embeddings = pd.read_parquet(out)
    assert len(embeddings) == 30 and set(embeddings["model_version"]) == {version}
    assert {len(v) for v in embeddings["embedding"]} == {29}
    print(f"spark-submit transform_features: {elapsed:.1f} s")
