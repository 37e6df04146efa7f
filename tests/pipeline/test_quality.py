"""The Great Expectations gate: clean data passes, each kind of corruption fails by name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audio_features.fma_schema import TOP_LEVEL_GENRES, feature_columns, flat_feature_name
from fma_platform.contracts import Collection
from pipeline.quality import (
    CATALOGUE_SUITE,
    FEATURE_VALUES_SUITE,
    FEATURES_SUITE,
    QualityGateError,
    QualityReport,
    feature_values,
    quality_context,
    record_quality,
    require_success,
    validate_catalogue,
    validate_features,
)

N_TRACKS = 30
RUN_TIME = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)

# Plausible (low, high) of each feature's location statistics on real music.
_LOCATION_RANGES = {
    "chroma_cens": (0.0, 0.6), "chroma_cqt": (0.0, 1.0), "chroma_stft": (0.0, 1.0),
    "tonnetz": (-0.3, 0.3), "mfcc": (-300.0, 200.0), "rmse": (0.0, 0.4), "zcr": (0.0, 0.3),
    "spectral_centroid": (300.0, 5000.0), "spectral_bandwidth": (300.0, 4000.0),
    "spectral_rolloff": (500.0, 10000.0), "spectral_contrast": (5.0, 60.0),
}


def realistic_features(n_tracks: int = N_TRACKS, *, seed: int = 3) -> pd.DataFrame:
    """What the extractor writes for ``n_tracks`` clips: ids, 518 features, extras, timing."""
    rng = np.random.default_rng(seed)
    columns = {"track_id": np.arange(2, 2 + 3 * n_tracks, 3, dtype=np.int64)}
    for feature, statistic, number in feature_columns():
        low, high = _LOCATION_RANGES[feature]
        if statistic == "std":
            values = rng.uniform(0.0, (high - low) / 4, n_tracks)
        elif statistic in ("skew", "kurtosis"):
            values = rng.normal(0.0, 2.0, n_tracks)
        else:
            values = rng.uniform(low, high, n_tracks)
        columns[flat_feature_name((feature, statistic, number))] = values
    frame = pd.DataFrame(columns)
    frame["duration_seconds"] = rng.uniform(29.9, 30.0, n_tracks)
    frame["sample_rate"] = np.full(n_tracks, 44100, dtype=np.int64)
    frame["analysis_sample_rate"] = np.full(n_tracks, 44100, dtype=np.int64)
    frame["tempo_bpm"] = rng.uniform(60.0, 180.0, n_tracks)
    frame["extract_seconds"] = rng.uniform(0.8, 1.5, n_tracks)
    return frame


def catalogue_frame(features: pd.DataFrame) -> pd.DataFrame:
    """Catalogue records (as ``catalogue_records`` gives them) of the same tracks."""
    top = list(TOP_LEVEL_GENRES.items())
    records = []
    for i, track_id in enumerate(features["track_id"]):
        genre_id, genre_title = top[i % len(top)]
        records.append({
            "track_id": int(track_id), "title": f"Track {track_id}", "artist_name": "Artist",
            "album_title": "Album", "genre_ids": [genre_id], "top_genre_id": genre_id,
            "top_genre_title": genre_title, "duration": 120 + i, "license": "CC BY",
            "listens": 10 * i, "favorites": i, "interest": 100 + i, "subset": "small",
            "split": "training",
        })
    records[0]["top_genre_id"] = records[0]["top_genre_title"] = None  # several roots
    return pd.DataFrame(records)


@pytest.fixture(scope="module")
def gx_dir(tmp_path_factory) -> Path:
    """One GX project for the module: the context is created once and reused."""
    return tmp_path_factory.mktemp("gx")


@pytest.fixture(scope="module")
def clean_features() -> pd.DataFrame:
    return realistic_features()


def check(features: pd.DataFrame, gx_dir: Path, *, expected_count: int = N_TRACKS) -> QualityReport:
    return validate_features(features, context_dir=gx_dir, expected_count=expected_count,
                             run_id="test-run", validated_at=RUN_TIME)


def failure_text(report: QualityReport) -> str:
    assert not report.success
    with pytest.raises(QualityGateError) as raised:
        require_success(report)
    return str(raised.value)


@pytest.mark.slow
def test_clean_features_pass_and_build_data_docs(clean_features, gx_dir):
    report = check(clean_features, gx_dir)

    assert report.success, [f.summary for f in report.failures]
    assert report.suite == FEATURES_SUITE
    assert report.row_count == N_TRACKS
    assert report.evaluated_expectations >= 20
    require_success(report)  # does not raise
    index = gx_dir / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert index.is_file()
    assert report.data_docs_url == index.as_uri()


@pytest.mark.slow
def test_rerun_is_idempotent(clean_features, gx_dir):
    first = check(clean_features, gx_dir)
    second = check(clean_features, gx_dir)

    assert first.success and second.success
    assert first.evaluated_expectations == second.evaluated_expectations
    context = quality_context(gx_dir)
    suites = sorted(suite.name for suite in context.suites.all())
    checkpoints = sorted(checkpoint.name for checkpoint in context.checkpoints.all())
    assert suites.count(FEATURES_SUITE) == checkpoints.count(FEATURES_SUITE) == 1
    assert suites.count(FEATURE_VALUES_SUITE) == checkpoints.count(FEATURE_VALUES_SUITE) == 1


def set_rows(column: str, rows: list[int], value: float):
    """A corruption: ``column`` takes ``value`` at the positional ``rows``."""
    def corrupt(frame: pd.DataFrame) -> None:
        frame[column] = frame[column].where(~frame.index.isin(rows), value)
    return corrupt


def drop_column(column: str):
    def corrupt(frame: pd.DataFrame) -> None:
        frame.drop(columns=[column], inplace=True)
    return corrupt


def as_text(column: str):
    def corrupt(frame: pd.DataFrame) -> None:
        frame[column] = frame[column].astype(str)
    return corrupt


# Track ids are 2, 5, 8, ...: row i holds track 2 + 3 i.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        pytest.param(set_rows("mfcc_mean_05", [3], np.nan),
                     ["mfcc_mean_05: 1 of 30 values NaN (track_id 11)"], id="nan"),
        pytest.param(set_rows("spectral_contrast_kurtosis_02", [0], -np.inf),
                     ["spectral_contrast_kurtosis_02: 1 of 30 values infinite (track_id 2)"],
                     id="inf"),
        pytest.param(set_rows("zcr_mean_01", [1, 4, 9], 1.2),
                     ["zcr_mean_01: 3 of 30 values outside [0, 1] (track_ids 5, 14, 29)"],
                     id="zcr-above-1"),
        pytest.param(set_rows("spectral_centroid_mean_01", [2], 12000.0),
                     ["spectral_centroid_mean_01: 1 of 30 values outside [0, 11025] (track_id 8)"],
                     id="centroid-above-nyquist"),
        pytest.param(set_rows("chroma_stft_std_07", [5], -0.1),
                     ["chroma_stft_std_07: 1 of 30 values outside [0, inf] (track_id 17)"],
                     id="negative-std"),
        pytest.param(set_rows("track_id", [7], 2),
                     ["track_id: 2 of 30 values duplicated (track_ids 2, 2)"], id="duplicate-id"),
        pytest.param(drop_column("tonnetz_max_03"),
                     ["missing columns: tonnetz_max_03"], id="missing-column"),
        pytest.param(as_text("mfcc_min_02"),
                     ["mfcc_min_02: at least 20 of 30 values not float (dtype object)"],
                     id="text-column"),
        pytest.param(set_rows("duration_seconds", [6], 45.0),
                     ["duration_seconds: 1 of 30 values outside [1, 30.5] (track_id 20)"],
                     id="long-clip"),
        pytest.param(set_rows("tempo_bpm", [8], 400.0),
                     ["tempo_bpm: 1 of 30 values outside [0, 320] (track_id 26)"], id="tempo"),
    ],
)
def test_corrupted_features_fail_naming_the_column(clean_features, gx_dir, corrupt, expected):
    features = clean_features.copy()
    corrupt(features)

    report = check(features, gx_dir)
    message = failure_text(report)

    for text in expected:
        assert text in message
    assert len(report.failures) == len(expected)


@pytest.mark.slow
def test_wrong_row_count_names_missing_tracks(clean_features, gx_dir):
    features = clean_features.iloc[:-2]
    expected_ids = set(clean_features["track_id"].tolist())

    report = validate_features(features, context_dir=gx_dir, expected_track_ids=expected_ids,
                               validated_at=RUN_TIME)

    message = failure_text(report)
    assert "row count 28, expected 30 (missing track_ids 86, 89)" in message
    assert [f.expectation_type for f in report.failures] == ["expect_table_row_count_to_equal"]


def test_expected_count_is_required(clean_features, gx_dir):
    with pytest.raises(ValueError, match="expected_count or expected_track_ids"):
        validate_features(clean_features, context_dir=gx_dir)


def test_feature_values_long_form(clean_features):
    long = feature_values(clean_features.iloc[:2])

    assert len(long) == 2 * 518
    first = long.iloc[0]
    assert (first["track_id"], first["column"]) == (2, flat_feature_name(feature_columns()[0]))
    row = long[(long["track_id"] == 5) & (long["column"] == "zcr_mean_01")].iloc[0]
    assert row["value"] == clean_features.loc[1, "zcr_mean_01"]
    assert (row["feature"], row["statistic"], row["dtype"]) == ("zcr", "mean", "float64")


@pytest.mark.slow
def test_catalogue_suite_passes_and_fails(clean_features, gx_dir):
    catalogue = catalogue_frame(clean_features)
    assert validate_catalogue(catalogue, context_dir=gx_dir, validated_at=RUN_TIME).success

    catalogue.loc[4, "top_genre_id"] = 999
    catalogue.loc[5, "title"] = None
    catalogue.loc[6, "listens"] = -1
    catalogue.loc[7, "duration"] = 0
    report = validate_catalogue(catalogue, context_dir=gx_dir, validated_at=RUN_TIME)

    message = failure_text(report)
    assert report.suite == CATALOGUE_SUITE
    assert "top_genre_id: 1 of 30 values not one of FMA's 16 top-level genre ids (track_id 14)" in message
    assert "title: 1 of 30 values missing (track_id 17)" in message
    assert "listens: 1 of 30 values negative (track_id 20)" in message
    assert "duration: 1 of 30 values not > 0 (track_id 23)" in message
    assert len(report.failures) == 4


@pytest.mark.slow
def test_record_quality_upserts_one_document_per_run_and_suite(clean_features, gx_dir, mongo_db):
    features = clean_features.copy()
    features.loc[0, "zcr_max_01"] = 2.0
    report = check(features, gx_dir)
    logical_date = datetime(2024, 5, 2, tzinfo=UTC)

    record_quality(mongo_db, report, run_id="etl-1", validated_at=logical_date)
    record_quality(mongo_db, report, run_id="etl-1", validated_at=logical_date)

    documents = list(mongo_db[Collection.DATA_QUALITY].find({}, {"_id": 0}))
    assert len(documents) == 1
    (document,) = documents
    assert (document["run_id"], document["suite"], document["success"]) == ("etl-1", FEATURES_SUITE, False)
    assert document["validated_at"] == logical_date
    assert document["failures"][0]["columns"] == ["zcr_max_01"]
    assert document["failures"][0]["track_ids"] == [2]
    assert document["data_docs_url"].endswith("index.html")

