"""The Great Expectations gate: real-valued edge cases pass, each kind of corruption fails by name.

The clean table is what the extractor would write: each track's statistics are
``audio_features.features.summarize`` of random per-frame feature matrices drawn inside
each feature's range, so min, max, mean, median, std, skew and kurtosis agree with each
other as they do on real music.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audio_features.features import summarize
from audio_features.fma_schema import FLAT_FEATURE_NAMES, TOP_LEVEL_GENRES
from fma_platform.contracts import Collection
from pipeline.quality import (
    CATALOGUE_SUITE,
    FEATURE_COLUMNS_SUITE,
    FEATURE_VALUES_SUITE,
    FEATURES_SUITE,
    FLOAT_TOLERANCE,
    QualityGateError,
    QualityReport,
    catalogue_checks_frame,
    data_docs_site_dir,
    feature_column_profile,
    feature_rows,
    quality_context,
    record_quality,
    require_success,
    validate_catalogue,
    validate_features,
)

N_TRACKS = 30
N_FRAMES = 64
RUN_TIME = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
DOCS_URL = "http://docs.example:8502"
# Rows of the clean table with special sample rates (row i holds track 2 + 3 i).
ROW_22050, ROW_8000, ROW_11025 = 10, 11, 12


def _frame_matrices(rng: np.random.Generator, *, low_rate: bool) -> dict[str, np.ndarray]:
    """Per-frame matrices of one clip, each feature inside its range (as librosa makes them)."""
    shape = (1, N_FRAMES)
    chroma = rng.uniform(0.0, 1.0, (12, N_FRAMES))
    cens = rng.uniform(0.0, 1.0, (12, N_FRAMES))
    top = 3800.0 if low_rate else 9000.0  # an 8 kHz file holds nothing above 4 kHz
    mfcc = rng.normal(0.0, 15.0, (20, N_FRAMES)) + rng.normal(0.0, 10.0, (20, 1))
    mfcc[0] -= rng.uniform(150.0, 300.0)
    mfcc[1] += rng.uniform(60.0, 160.0)
    return {
        "chroma_stft": chroma / chroma.max(axis=0),
        "chroma_cqt": rng.uniform(0.0, 1.0, (12, N_FRAMES)) ** 2,
        "chroma_cens": cens / np.linalg.norm(cens, axis=0),
        "tonnetz": rng.uniform(-0.3, 0.3, (6, N_FRAMES)) * np.array([[1], [1], [1], [1], [0.5], [0.5]]),
        "mfcc": mfcc,
        "rmse": rng.uniform(0.01, 0.3, shape),
        "zcr": rng.uniform(0.01, 0.2, shape),
        "spectral_centroid": rng.uniform(400.0, top * 0.6, shape),
        "spectral_bandwidth": rng.uniform(400.0, 3000.0, shape),
        "spectral_contrast": rng.uniform(5.0, 50.0, (7, N_FRAMES)),
        "spectral_rolloff": rng.uniform(800.0, top, shape),
    }


def realistic_features(n_tracks: int = N_TRACKS, *, seed: int = 3) -> pd.DataFrame:
    """What the extractor writes for ``n_tracks`` clips: ids, 518 features, extras, timing.

    Real-valued edge cases are in: statistics sitting exactly on their bounds (tonnetz
    1.0 and -1.0, chroma 0 and 1, zcr and rmse 0, a two-valued row with kurtosis -2),
    float32 rounding just past a bound, and clips at 22,050, 8,000 (analysed at 22,050)
    and 11,025 Hz (rolloff at the axis' top, 11,025 Hz).
    """
    rng = np.random.default_rng(seed)
    rates = np.full(n_tracks, 44100, dtype=np.int64)
    analysis = rates.copy()
    if n_tracks > ROW_11025:
        rates[[ROW_22050, ROW_8000, ROW_11025]] = analysis[[ROW_22050, ROW_8000, ROW_11025]] = 22050, 8000, 11025
        analysis[ROW_8000] = 22050
    rows = []
    for i in range(n_tracks):
        matrices = _frame_matrices(rng, low_rate=rates[i] == 8000)
        if i == 0:
            matrices["tonnetz"][2, :2] = 1.0, -1.0  # a pure minor third, both ways
            matrices["chroma_cqt"][:, 0] = 0.0
            matrices["zcr"][0, 0] = matrices["rmse"][0, 0] = 0.0  # digital silence in one frame
            matrices["rmse"][0] = np.resize([0.05, 0.25], N_FRAMES)  # two values: kurtosis -2
        if i == 1:
            matrices["tonnetz"][0, 0] = np.float32(1.0) + np.finfo(np.float32).eps  # float32 rounding
        if i == ROW_11025 and n_tracks > ROW_11025:
            matrices["spectral_rolloff"][0, 0] = 11025.0
        rows.append(summarize(matrices))
    frame = pd.DataFrame(np.array(rows), columns=list(FLAT_FEATURE_NAMES))
    frame.insert(0, "track_id", np.arange(2, 2 + 3 * n_tracks, 3, dtype=np.int64))
    frame["duration_seconds"] = rng.uniform(29.9, 30.0, n_tracks)
    frame["sample_rate"] = rates
    frame["analysis_sample_rate"] = analysis
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
                             run_id="test-run", validated_at=RUN_TIME, data_docs_base_url=DOCS_URL)


def failure_text(report: QualityReport) -> str:
    assert not report.success
    with pytest.raises(QualityGateError) as raised:
        require_success(report)
    return str(raised.value)


# Clean data and real-valued edge cases ------------------------------------------------------


def test_clean_table_holds_the_edge_cases_it_claims(clean_features):
    first = clean_features.iloc[0]
    assert (first["tonnetz_max_03"], first["tonnetz_min_03"]) == (1.0, -1.0)
    assert first["chroma_cqt_min_01"] == first["zcr_min_01"] == 0.0
    assert first["rmse_kurtosis_01"] == pytest.approx(-2.0)
    assert 1.0 < clean_features.loc[1, "tonnetz_max_01"] < 1.0 + FLOAT_TOLERANCE
    assert clean_features.loc[ROW_11025, "spectral_rolloff_max_01"] == 11025.0
    assert clean_features.loc[ROW_8000, ["sample_rate", "analysis_sample_rate"]].tolist() == [8000, 22050]
    assert (clean_features["chroma_stft_max_01"] == 1.0).all()  # constant over the run, legitimately


@pytest.mark.slow
def test_clean_features_pass_and_publish_data_docs_over_http(clean_features, gx_dir):
    report = check(clean_features, gx_dir)

    assert report.success, [f.summary for f in report.failures]
    assert report.warnings == []
    assert report.suite == FEATURES_SUITE
    assert report.row_count == N_TRACKS
    assert report.evaluated_expectations == report.successful_expectations >= 30
    require_success(report)  # does not raise
    site = data_docs_site_dir(gx_dir)
    assert (site / "index.html").is_file()
    assert report.data_docs_url == f"{DOCS_URL}/index.html"
    assert len(report.data_docs_pages) == 3
    for suite, page in zip((FEATURES_SUITE, FEATURE_VALUES_SUITE, FEATURE_COLUMNS_SUITE), report.data_docs_pages):
        assert page.startswith(f"{DOCS_URL}/validations/{suite}/test-run/")
        assert (site / page.removeprefix(f"{DOCS_URL}/")).is_file()


@pytest.mark.slow
def test_rerun_is_idempotent(clean_features, gx_dir):
    first = check(clean_features, gx_dir)
    second = check(clean_features, gx_dir)

    assert first.success and second.success
    assert first.evaluated_expectations == second.evaluated_expectations
    context = quality_context(gx_dir)
    suites = sorted(suite.name for suite in context.suites.all())
    definitions = sorted(d.name for d in context.validation_definitions.all())
    for name in (FEATURES_SUITE, FEATURE_VALUES_SUITE, FEATURE_COLUMNS_SUITE):
        assert suites.count(name) == definitions.count(name) == 1


@pytest.mark.slow
def test_small_runs_are_not_judged_on_their_distribution(gx_dir):
    features = realistic_features(5, seed=11)
    features["mfcc_std_05"] = 3.0  # constant over 5 tracks: not evidence of a fault

    report = validate_features(features, context_dir=gx_dir, expected_count=5, validated_at=RUN_TIME,
                               data_docs_base_url=DOCS_URL)

    assert report.success, [f.summary for f in report.failures]
    profile = feature_column_profile(features)
    assert profile["spread_across_tracks"].isna().all() and profile["mean_across_tracks"].isna().all()


@pytest.mark.slow
def test_distribution_faults_that_are_not_corruption_only_warn(clean_features, gx_dir):
    features = clean_features.copy()
    features.loc[[3, 6, 9, 12], "tempo_bpm"] = 0.0  # 13 % of tracks without onsets
    rmse = [c for c in features.columns if c.startswith("rmse_") and "_skew_" not in c and "_kurtosis_" not in c]
    features[rmse] *= 10  # int16-scale audio: every rmse statistic 10 times too large

    report = check(features, gx_dir)

    assert report.success, [f.summary for f in report.failures]
    warnings = " | ".join(w.summary for w in report.warnings)
    assert {w.severity for w in report.warnings} == {"warning"}
    assert ("tempo_bpm: 4 of 30 values 0 BPM (no onsets found) (allowed: up to 10% of tracks) "
            "(track_ids 11, 20, 29, 38)") in warnings
    assert "rmse_mean_01: mean over the run outside the plausible [0.005, 0.5]" in warnings


# Corruptions ---------------------------------------------------------------------------------


def set_rows(column: str, rows: list[int], value):
    """A corruption: ``column`` takes ``value`` at the positional ``rows``."""
    def corrupt(frame: pd.DataFrame) -> None:
        frame[column] = frame[column].where(~frame.index.isin(rows), value)
    return corrupt


def set_column(column: str, value):
    def corrupt(frame: pd.DataFrame) -> None:
        frame[column] = value
    return corrupt


def drop_column(column: str):
    def corrupt(frame: pd.DataFrame) -> None:
        frame.drop(columns=[column], inplace=True)
    return corrupt


def as_type(column: str, dtype):
    def corrupt(frame: pd.DataFrame) -> None:
        frame[column] = frame[column].astype(dtype)
    return corrupt


# Track ids are 2, 5, 8, ...: row i holds track 2 + 3 i.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        pytest.param(set_rows("mfcc_mean_05", [3], np.nan),
                     ["mfcc_mean_05: 1 of 30 values NaN (track_id 11)"], id="nan"),
        pytest.param(set_rows("spectral_contrast_kurtosis_02", [0], -np.inf),
                     ["spectral_contrast_kurtosis_02: 1 of 30 values infinite (track_id 2)"], id="inf"),
        pytest.param(set_rows("tonnetz_max_03", [2], 1 + 1e-3),
                     ["tonnetz_max_03: 1 of 30 values outside [-1, 1] (track_id 8)"], id="tonnetz-past-tolerance"),
        pytest.param(set_rows("tonnetz_min_05", [4], -0.5 - 1e-4),
                     ["tonnetz_min_05: 1 of 30 values outside [-0.5, 0.5] (track_id 14)"], id="major-third-radius"),
        pytest.param(set_rows("chroma_cens_max_09", [5], 1.01),
                     ["chroma_cens_max_09: 1 of 30 values outside [0, 1] (track_id 17)"], id="chroma-above-1"),
        pytest.param(set_rows("rmse_min_01", [6], -0.01),
                     ["rmse_min_01: 1 of 30 values outside [0, inf] (track_id 20)"], id="negative-rmse"),
        pytest.param(set_rows("spectral_contrast_min_04", [7], -0.5),
                     ["spectral_contrast_min_04: 1 of 30 values outside [0, inf] (track_id 23)"],
                     id="negative-contrast"),
        pytest.param(set_rows("spectral_centroid_max_01", [2], 12000.0),
                     ["spectral_centroid_max_01: 1 of 30 values outside [0, 11025] (track_id 8)",
                      "spectral_centroid_max_01: 1 of 30 values above the file's content limit"],
                     id="centroid-above-nyquist"),
        pytest.param(set_rows("spectral_rolloff_max_01", [ROW_8000], 6000.0),
                     ["spectral_rolloff_max_01: 1 of 30 values above the file's content limit "
                      "(sample_rate / 2 on FMA's 22,050 Hz axis) (track_id 35)"],
                     id="8khz-file-rolloff-above-its-content"),
        pytest.param(set_rows("spectral_bandwidth_max_01", [8], 6000.0),
                     ["spectral_bandwidth_max_01: 1 of 30 values outside [0, 5512.5] (track_id 26)"],
                     id="bandwidth-above-half-range"),
        pytest.param(set_rows("chroma_stft_std_07", [5], -0.1),
                     ["chroma_stft_std_07: 1 of 30 values negative (track_id 17)"], id="negative-std"),
        pytest.param(set_rows("mfcc_std_03", [9], 1e4),
                     ["mfcc_std_03: 1 of 30 values above (max - min) / 2 (Popoviciu) (track_id 29)"],
                     id="std-above-half-range"),
        pytest.param(set_rows("zcr_kurtosis_01", [4], -2.5),
                     ["zcr_kurtosis_01: 1 of 30 values below skew ** 2 - 2 (Pearson) (track_id 14)"],
                     id="kurtosis-below-pearson"),
        pytest.param(set_rows("zcr_mean_01", [1, 4, 9], 0.9),
                     ["zcr_mean_01: 3 of 30 values outside the row's [min, max] (track_ids 5, 14, 29)"],
                     id="mean-above-max"),
        pytest.param(set_rows("track_id", [7], 2),
                     ["track_id: 2 of 30 values duplicated (track_ids 2, 2)"], id="duplicate-id"),
        pytest.param(drop_column("tonnetz_max_03"), ["missing columns: tonnetz_max_03"], id="missing-column"),
        pytest.param(set_column("mfcc_mean_21", np.linspace(-5.0, 5.0, N_TRACKS)),
                     ["mfcc_mean_21: not one of FMA's 518 feature columns"], id="519-feature-columns"),
        pytest.param(as_type("mfcc_min_02", str), ["mfcc_min_02: not float (dtype object)"], id="text-column"),
        pytest.param(as_type("track_id", float), ["track_id: not integer (dtype float64)"], id="float-ids"),
        pytest.param(as_type("sample_rate", float), ["sample_rate: not integer (dtype float64)"],
                     id="float-sample-rate"),
        pytest.param(set_rows("duration_seconds", [6], 45.0),
                     ["duration_seconds: 1 of 30 values outside [1, 30.5] (track_id 20)"], id="long-clip"),
        pytest.param(set_rows("tempo_bpm", [8], 400.0),
                     ["tempo_bpm: 1 of 30 values outside [0, 320] (track_id 26)"], id="tempo"),
        pytest.param(set_rows("analysis_sample_rate", [3], 22050),
                     ["analysis_sample_rate: 1 of 30 values below sample_rate"], id="analysed-below-own-rate"),
        pytest.param(set_column("mfcc_std_05", 3.0),
                     ["mfcc_std_05: constant across every track of the run (30 tracks)"], id="constant-column"),
    ],
)
def test_corrupted_features_fail_naming_the_column(clean_features, gx_dir, corrupt, expected):
    features = clean_features.copy()
    corrupt(features)

    report = check(features, gx_dir)
    message = failure_text(report)

    for text in expected:
        assert text in message
    assert len(report.failures) == len(expected), [f.summary for f in report.failures]
    assert report.warnings == []


@pytest.mark.slow
def test_wrong_row_count_names_missing_tracks(clean_features, gx_dir):
    features = clean_features.iloc[:-2]
    expected_ids = set(clean_features["track_id"].tolist())

    report = validate_features(features, context_dir=gx_dir, expected_track_ids=expected_ids,
                               validated_at=RUN_TIME, data_docs_base_url=DOCS_URL)

    message = failure_text(report)
    assert "row count 28, expected 30 (missing track_ids 86, 89)" in message
    assert [f.expectation_type for f in report.failures] == ["expect_table_row_count_to_equal"]


@pytest.mark.slow
def test_a_run_with_no_features_at_all_fails_instead_of_crashing(gx_dir):
    report = validate_features(pd.DataFrame(), context_dir=gx_dir, expected_count=4,
                               validated_at=RUN_TIME, data_docs_base_url=DOCS_URL)

    message = failure_text(report)
    missing, row_count = report.failures
    assert len(missing.columns) == 1 + 518 + 4 and "track_id" in missing.columns
    assert missing.summary.startswith("missing columns: analysis_sample_rate, chroma_cens_kurtosis_01")
    assert row_count.summary == "row count 0, expected 4"
    assert "could not be evaluated" not in message  # explained by the missing columns


def test_expected_count_is_required(clean_features, gx_dir):
    with pytest.raises(ValueError, match="expected_count or expected_track_ids"):
        validate_features(clean_features, context_dir=gx_dir)


# The frames the suites read -----------------------------------------------------------------


def test_feature_rows_hold_each_rows_statistics_and_margins(clean_features):
    rows = feature_rows(clean_features.iloc[:2])

    assert len(rows) == 2 * 74
    row = rows[(rows["track_id"] == 2) & (rows["feature"] == "tonnetz") & (rows["number"] == "03")].iloc[0]
    assert (row["min"], row["max"]) == (-1.0, 1.0)
    assert row["mean"] == clean_features.loc[0, "tonnetz_mean_03"]
    assert row["popoviciu_margin"] == pytest.approx(1.0 - row["std"])  # ((1 - -1) / 2 - std) / max(1, 1)
    skew_squared, kurtosis = row["skew"] ** 2, row["kurtosis"]
    assert row["pearson_margin"] == pytest.approx((kurtosis + 2 - skew_squared) / max(1, skew_squared, abs(kurtosis)))
    assert (rows[["order_margin", "popoviciu_margin", "pearson_margin"]] >= -FLOAT_TOLERANCE).all().all()


def test_margins_are_left_empty_where_a_statistic_is_not_finite(clean_features):
    features = clean_features.iloc[:1].copy()
    features["zcr_skew_01"] = np.inf
    features["zcr_max_01"] = np.nan

    row = feature_rows(features).query("feature == 'zcr'").iloc[0]

    assert np.isnan(row["order_margin"]) and np.isnan(row["popoviciu_margin"]) and np.isnan(row["pearson_margin"])


def test_column_profile_counts_every_feature_like_column(clean_features):
    features = clean_features.assign(mfcc_mean_21=1.0, comment="not a feature")

    profile = feature_column_profile(features)

    assert len(profile) == 519 and "comment" not in set(profile["column"])
    extra = profile[profile["column"] == "mfcc_mean_21"].iloc[0]
    assert (extra["feature"], extra["statistic"], extra["number"], extra["spread_across_tracks"]) == \
        ("mfcc", "mean", "21", 0.0)


def test_catalogue_checks_frame_reads_clip_lengths_from_the_features(clean_features):
    catalogue = catalogue_frame(clean_features).iloc[:3].copy()
    catalogue.loc[1, "duration"] = 12
    catalogue.at[2, "genre_ids"] = []
    features = clean_features.iloc[:2].assign(duration_seconds=[30.0, 25.0])

    frame = catalogue_checks_frame(catalogue, features)

    assert frame["clip_seconds"].tolist()[:2] == [30.0, 25.0] and np.isnan(frame.loc[2, "clip_seconds"])
    assert frame["clip_minus_expected_seconds"].tolist()[:2] == [0.0, 13.0]  # min(120, 30) - 30; 25 - 12
    assert frame["genre_count"].tolist() == [1, 1, 0]


# Catalogue ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_catalogue_suite_fails_on_broken_records(clean_features, gx_dir):
    catalogue = catalogue_frame(clean_features)
    assert validate_catalogue(catalogue, context_dir=gx_dir, validated_at=RUN_TIME,
                              features=clean_features, data_docs_base_url=DOCS_URL).success

    catalogue.loc[4, "top_genre_id"] = 999
    catalogue.loc[6, "listens"] = -1
    catalogue.loc[8, "track_id"] = catalogue.loc[9, "track_id"]
    report = validate_catalogue(catalogue, context_dir=gx_dir, validated_at=RUN_TIME,
                                data_docs_base_url=DOCS_URL)

    message = failure_text(report)
    assert report.suite == CATALOGUE_SUITE
    assert "top_genre_id: 1 of 30 values not one of FMA's 16 top-level genre ids (track_id 14)" in message
    assert "listens: 1 of 30 values negative (track_id 20)" in message
    assert "track_id: 2 of 30 values duplicated (track_ids 29, 29)" in message
    assert len(report.failures) == 3
    assert report.data_docs_pages[0].startswith(f"{DOCS_URL}/validations/{CATALOGUE_SUITE}/")


@pytest.mark.slow
def test_fma_metadata_defects_are_flagged_not_fatal(clean_features, gx_dir):
    catalogue = catalogue_frame(clean_features)
    catalogue.loc[5, "title"] = None
    catalogue.at[6, "genre_ids"] = []  # FMA has tracks without any genre
    catalogue.loc[7, "duration"] = 0
    catalogue.loc[8, "duration"] = 600  # says 600 s ...
    catalogue.loc[9, "duration"] = 10  # says 10 s ...
    features = clean_features.copy()
    features.loc[8, "duration_seconds"] = 4.2  # ... but only 4.2 s decode: a truncated clip
    features.loc[9, "duration_seconds"] = 30.0  # ... but a full 30 s clip decodes: a wrong duration

    report = validate_catalogue(catalogue, context_dir=gx_dir, validated_at=RUN_TIME, features=features,
                                data_docs_base_url=DOCS_URL)

    assert report.success and report.failures == []
    warnings = " | ".join(w.summary for w in report.warnings)
    assert "title: 1 of 30 values missing (track_id 17)" in warnings
    assert "genre_count: 1 of 30 values no genre (track_id 20)" in warnings
    assert "duration: 1 of 30 values no usable duration (missing or not > 0) (track_id 23)" in warnings
    assert "duration: 1 of 30 values clip shorter than min(duration, 30 s) promises (a truncated clip) " \
           "(track_id 26)" in warnings
    assert "duration: 1 of 30 values clip longer than the metadata's duration (a wrong duration) " \
           "(track_id 29)" in warnings
    assert len(report.warnings) == 5


# Records --------------------------------------------------------------------------------------


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
    assert document["failures"][0]["severity"] == "critical"
    assert document["warnings"] == []
    assert document["data_docs_url"] == f"{DOCS_URL}/index.html"
    assert all(page.startswith(f"{DOCS_URL}/validations/") for page in document["data_docs_pages"])
