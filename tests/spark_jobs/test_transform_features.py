"""The feature transform on synthetic features with a known structure.

The data are 518 columns generated from 3 latent factors plus small noise, so a correct
standardize + PCA finds 3 components that explain nearly all the variance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from fma_platform.settings import PROJECT_ROOT
from infra.services import spark_env
from spark_jobs.transform_features import (
    CURRENT_FILE,
    FEATURE_NAMES,
    METADATA_FILE,
    MODEL_SUBDIR,
    REASON_DUPLICATE_TRACK_IDS,
    REASON_INVALID_VALUES,
    REASON_MISSING_COLUMNS,
    REASON_NON_NUMERIC_COLUMNS,
    REASON_NO_CURRENT_MODEL,
    REASON_TOO_FEW_ROWS,
    TransformInputError,
    default_version,
    embed_tracks,
    embedding_dimension,
    explained_variance,
    fit_transform_model,
    load_current_model,
    load_model,
    profile_track_features,
    read_track_features,
    safe_version,
    save_transform_model,
    transform_and_save,
    zero_variance_columns,
)

N_FACTORS = 3


def latent_features(n_rows: int, *, seed: int = 0, noise: float = 0.01, first_id: int = 2) -> pd.DataFrame:
    """``track_id`` + 518 features = 3 latent factors x random loadings + offsets + noise."""
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((n_rows, N_FACTORS))
    loadings = rng.standard_normal((N_FACTORS, len(FEATURE_NAMES)))
    offsets = rng.uniform(-50, 50, len(FEATURE_NAMES))  # raw scales differ; standardization must cope
    values = factors @ loadings + offsets + noise * rng.standard_normal((n_rows, len(FEATURE_NAMES)))
    frame = pd.DataFrame(values, columns=list(FEATURE_NAMES))
    frame.insert(0, "track_id", np.arange(first_id, first_id + n_rows, dtype="int64"))
    return frame


def with_extras(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the extra columns extraction writes after the features."""
    return frame.assign(duration_seconds=30.0, sample_rate=44100, analysis_sample_rate=22050,
                        tempo_bpm=120.0, extract_seconds=1.0)


def model_layout(model_dir, version: str) -> tuple[list[str], list[str], int]:
    """Versions, a version's entries and the file count (Spark names stages by uid)."""
    files = sum(p.is_file() for p in model_dir.rglob("*"))
    return sorted(p.name for p in model_dir.iterdir()), sorted(p.name for p in (model_dir / version).iterdir()), files


def embeddings_by_track(embeddings) -> dict[int, np.ndarray]:
    return {row["track_id"]: np.array(row["embedding"]) for row in embeddings.collect()}


@pytest.fixture(scope="module")
def latent_df(spark):
    return spark.createDataFrame(latent_features(60)).cache()


@pytest.fixture(scope="module")
def fitted(latent_df):
    return fit_transform_model(latent_df, N_FACTORS, normalize=True)


def test_three_latent_factors_explain_almost_all_variance(fitted):
    variance = explained_variance(fitted)

    assert len(variance) == N_FACTORS
    assert sum(variance) > 0.95
    assert sum(variance) <= 1.0 + 1e-9
    assert variance == sorted(variance, reverse=True)


def test_normalized_embeddings_have_length_k_and_unit_norm(fitted, latent_df):
    embeddings = embed_tracks(fitted, latent_df)

    assert embeddings.schema.simpleString() == "struct<track_id:bigint,embedding:array<float>>"
    by_track = embeddings_by_track(embeddings)
    assert sorted(by_track) == list(range(2, 62))
    assert {len(v) for v in by_track.values()} == {N_FACTORS}
    np.testing.assert_allclose([np.linalg.norm(v) for v in by_track.values()], 1.0, atol=1e-5)


def test_unnormalized_scores_carry_the_explained_variance(latent_df):
    model = fit_transform_model(latent_df, N_FACTORS, normalize=False)
    scores = np.stack(list(embeddings_by_track(embed_tracks(model, latent_df)).values()))

    # Standardized columns have unit sample variance, so the total is 518 and the
    # scores' sample variance is that share of it: a check of scaler, centering and PCA.
    score_variance = (scores ** 2).sum() / (len(scores) - 1)
    assert score_variance == pytest.approx(len(FEATURE_NAMES) * sum(explained_variance(model)), rel=1e-4)
    np.testing.assert_allclose(scores.mean(axis=0), 0.0, atol=1e-3)
    assert np.linalg.norm(scores, axis=1).std() > 1.0  # lengths kept, not normalized


def test_k_is_capped_by_the_rows_with_a_message(spark, caplog):
    few = spark.createDataFrame(latent_features(5))

    with caplog.at_level("WARNING", logger="spark_jobs.transform_features"):
        model = fit_transform_model(few, 32)

    assert embedding_dimension(model) == 4
    assert "k=32 capped to 4" in caplog.text


def test_constant_columns_are_reported_and_contribute_nothing(spark):
    constant = ["mfcc_mean_01", "zcr_max_01"]
    frame = latent_features(12).assign(**{name: 7.5 for name in constant})
    df = spark.createDataFrame(frame)

    model = fit_transform_model(df, N_FACTORS)

    assert zero_variance_columns(model) == sorted(constant)
    vectors = np.stack(list(embeddings_by_track(embed_tracks(model, df)).values()))
    assert np.isfinite(vectors).all()
    # 516 informative standardized columns: the constant ones add no variance anywhere.
    assert sum(explained_variance(model)) > 0.95


def _drop_columns(frame):
    return frame.drop(columns=["chroma_cqt_kurtosis_01", "tonnetz_std_06"])


def _invalid_values(frame):
    frame = frame.copy()
    frame.loc[[0, 3, 5], "mfcc_mean_01"] = np.nan
    frame.loc[[1], "zcr_max_01"] = np.inf
    return frame


def _one_row(frame):
    return frame.head(1)


def _duplicate_id(frame):
    return frame.assign(track_id=[2, 3, 3, 4, 5, 6])


def _text_column(frame):
    return frame.assign(rmse_mean_01="loud")


@pytest.mark.parametrize(("corrupt", "reason", "mentions"), [
    (_drop_columns, REASON_MISSING_COLUMNS, ["chroma_cqt_kurtosis_01", "tonnetz_std_06", "2 missing"]),
    (_invalid_values, REASON_INVALID_VALUES, ["mfcc_mean_01=3", "zcr_max_01=1", "2 feature column(s)"]),
    (_one_row, REASON_TOO_FEW_ROWS, ["1 row(s)"]),
    (_duplicate_id, REASON_DUPLICATE_TRACK_IDS, ["[3]"]),
    (_text_column, REASON_NON_NUMERIC_COLUMNS, ["rmse_mean_01"]),
])
def test_bad_input_is_rejected_with_a_reason(spark, corrupt, reason, mentions):
    df = spark.createDataFrame(corrupt(latent_features(6)))

    with pytest.raises(TransformInputError) as raised:
        fit_transform_model(df, N_FACTORS)

    assert raised.value.reason == reason
    for text in mentions:
        assert text in str(raised.value)


def test_nulls_are_counted_like_nans(spark):
    frame = latent_features(6).astype({"spectral_rolloff_min_01": "object"})
    frame.loc[[2, 4], "spectral_rolloff_min_01"] = None
    df = spark.createDataFrame(frame.astype({"spectral_rolloff_min_01": "float64"}))

    with pytest.raises(TransformInputError, match="spectral_rolloff_min_01=2"):
        fit_transform_model(df, N_FACTORS)


def test_default_version_depends_on_data_and_params_not_partitioning(spark):
    frame = latent_features(20)
    df = spark.createDataFrame(frame)
    profile = profile_track_features(df)
    reshuffled = profile_track_features(df.repartition(3).orderBy("track_id", ascending=False))
    changed = frame.copy()
    changed.loc[7, "mfcc_max_05"] += 1e-3
    other_data = profile_track_features(spark.createDataFrame(changed))
    version = default_version(profile, k=8, normalize=True)
    assert version == default_version(reshuffled, k=8, normalize=True)
    assert len(version) == 12
    assert version != default_version(other_data, k=8, normalize=True)
    assert version != default_version(profile, k=9, normalize=True)
    assert version != default_version(profile, k=8, normalize=False)


def test_run_ids_become_safe_folder_names():
    assert safe_version("scheduled__2024-01-01T00:00:00+00:00") == "scheduled__2024-01-01T00_00_00_00_00"
    with pytest.raises(TransformInputError):
        safe_version("..")


def write_extraction_chunks(out_dir, frame: pd.DataFrame) -> None:
    """Chunk files as extraction writes them, including an all-failed (empty, untyped) chunk."""
    chunks = out_dir / "chunks"
    chunks.mkdir(parents=True)
    empty = pd.DataFrame.from_records([], columns=list(with_extras(frame.head(0)).columns))
    empty.astype({"track_id": "int64"}).to_parquet(chunks / "chunk-00000.parquet", index=False)
    half = len(frame) // 2
    with_extras(frame.iloc[:half]).to_parquet(chunks / "chunk-00001.parquet", index=False)
    with_extras(frame.iloc[half:]).to_parquet(chunks / "chunk-00002.parquet", index=False)
    for index in range(3):
        (chunks / f"chunk-{index:05d}.failures.csv").write_text("track_id,reason\n")


def test_reads_extraction_chunks_by_folder_or_glob(spark, tmp_path):
    write_extraction_chunks(tmp_path, latent_features(10))

    for path in (tmp_path / "chunks", tmp_path / "chunks" / "chunk-*.parquet"):
        features = read_track_features(spark, path)
        assert features.columns == ["track_id", *FEATURE_NAMES]
        assert features.count() == 10
    with pytest.raises(TransformInputError, match="no Parquet files"):
        read_track_features(spark, tmp_path / "nowhere")


def test_saved_model_reloads_identically_and_current_follows_the_latest(spark, fitted, tmp_path):
    model_dir = tmp_path / "models"
    with pytest.raises(TransformInputError) as no_model:
        load_current_model(model_dir)
    assert no_model.value.reason == REASON_NO_CURRENT_MODEL
    save_transform_model(fitted, {"version": "older"}, model_dir)
    write_extraction_chunks(tmp_path, latent_features(40, seed=1))
    run = dict(features_path=str(tmp_path / "chunks"), out=str(tmp_path / "embeddings.parquet"),
               model_dir=model_dir, k=N_FACTORS, version="manual__2024-05-01T00:00:00+00:00")

    metadata = transform_and_save(spark, **run)

    version = "manual__2024-05-01T00_00_00_00_00"
    assert (model_dir / CURRENT_FILE).read_text().strip() == version
    assert metadata["version"] == version and metadata["input_rows"] == 40
    assert metadata["feature_columns"] == list(FEATURE_NAMES)
    assert metadata["cumulative_explained_variance"][-1] == pytest.approx(sum(metadata["explained_variance"]))
    assert json.loads((model_dir / version / METADATA_FILE).read_text()) == metadata
    written = spark.read.parquet(run["out"])
    assert sorted(written.columns) == ["embedding", "model_version", "track_id"]
    assert {r["model_version"] for r in written.select("model_version").distinct().collect()} == {version}

    model, loaded_metadata = load_current_model(model_dir)
    assert loaded_metadata == metadata
    reloaded = embeddings_by_track(embed_tracks(model, read_track_features(spark, run["features_path"])))
    saved = embeddings_by_track(written)
    assert reloaded.keys() == saved.keys()
    for track_id, vector in saved.items():
        np.testing.assert_array_equal(reloaded[track_id], vector)
    assert load_model(model_dir, "older")[0].stages[-1].getOutputCol() == fitted.stages[-1].getOutputCol()

    layout_before = model_layout(model_dir, version)
    assert transform_and_save(spark, **run) == metadata  # a rerun of the same version
    assert model_layout(model_dir, version) == layout_before  # overwritten in place, nothing added
    assert (model_dir / CURRENT_FILE).read_text().strip() == version


@pytest.mark.slow
def test_spark_submit_writes_embeddings_model_and_summary(settings, tmp_path):
    write_extraction_chunks(tmp_path, latent_features(30, seed=2))
    model_dir, out = tmp_path / "models", tmp_path / "embeddings.parquet"
    command = [
        os.path.join(os.path.dirname(sys.executable), "spark-submit"), "--master", "local[1]",
        str(PROJECT_ROOT / "spark_jobs" / "transform_features.py"),
        "--features", str(tmp_path / "chunks" / "chunk-*.parquet"), "--out", str(out),
        "--model-dir", str(model_dir), "--k", "40",
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
    version = (model_dir / CURRENT_FILE).read_text().strip()
    assert version == summary["version"] and len(version) == 12
    assert (model_dir / version / MODEL_SUBDIR).is_dir()
    embeddings = pd.read_parquet(out)
    assert len(embeddings) == 30 and set(embeddings["model_version"]) == {version}
    assert {len(v) for v in embeddings["embedding"]} == {29}
    print(f"spark-submit transform_features: {elapsed:.1f} s")
