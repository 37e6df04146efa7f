"""The quality gate on real recorded music: the corpus's features pass, and still fail when corrupted.

The features come from the real-music corpus (``recorded_corpus``: Debian game soundtracks
cut into FMA-shaped clips, plus planted broken files) through the extractor itself, as
``fma_etl`` would compute them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from audio_features.extract import CHUNKS_DIRNAME, extract_tracks
from audio_features.fma_schema import audio_path
from audio_features.metadata import catalogue_records, load_genres, load_tracks
from pipeline.quality import MAIN_LOBE_HZ, QualityReport, validate_catalogue, validate_features

pytestmark = [pytest.mark.recorded_music, pytest.mark.slow]

RUN_TIME = datetime(2026, 1, 5, tzinfo=UTC)
DOCS_URL = "http://docs.example:8502"


@pytest.fixture(scope="module")
def tracks(recorded_corpus) -> pd.DataFrame:
    return load_tracks(recorded_corpus.tracks_csv).tracks


@pytest.fixture(scope="module")
def recorded_features(recorded_extraction) -> pd.DataFrame:
    """Every track of the corpus through the extractor's command (planted files fail and are
    left out): the session's one extraction of the corpus (``tests/conftest.py``)."""
    assert recorded_extraction.result.returncode == 0, recorded_extraction.result.stderr[-2000:]
    return chunk_features(recorded_extraction.out_dir)


@pytest.fixture(scope="module")
def gx_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gx")


def extracted(audio_dir: Path, out_dir: Path, track_ids: list[int], durations: dict | None = None) -> pd.DataFrame:
    """The extractor's features of ``track_ids`` (failed tracks are left out)."""
    extract_tracks(track_ids, audio_dir=audio_dir, out_dir=out_dir, workers=2, track_durations=durations,
                   progress=False)
    return chunk_features(out_dir)


def chunk_features(out_dir: Path) -> pd.DataFrame:
    """The feature rows of every chunk an extraction wrote under ``out_dir``."""
    chunks = sorted((out_dir / CHUNKS_DIRNAME).glob("chunk-*.parquet"))
    return pd.concat([pd.read_parquet(chunk) for chunk in chunks], ignore_index=True)


def gate(features: pd.DataFrame, recorded_corpus, gx_dir: Path) -> QualityReport:
    return validate_features(features, context_dir=gx_dir, expected_track_ids=recorded_corpus.clip_ids,
                             run_id="recorded", validated_at=RUN_TIME, data_docs_base_url=DOCS_URL)


def test_real_music_passes_the_features_gate_without_warnings(recorded_features, recorded_corpus, gx_dir):
    assert sorted(recorded_features["track_id"]) == recorded_corpus.clip_ids  # the planted files failed
    # Real music sits on its features' bounds: each frame's chroma peaks at exactly 1.0, so in
    # every clip some pitch class has max 1.0, and some chroma max columns are 1.0 on every track.
    for chroma in ("chroma_cqt", "chroma_stft"):
        maxima = recorded_features.filter(regex=rf"^{chroma}_max_")
        assert (maxima.max(axis=1) == 1.0).all()
    assert (recorded_features.filter(regex=r"^chroma_stft_max_") == 1.0).all().any()

    report = gate(recorded_features, recorded_corpus, gx_dir)

    assert report.success, [f.summary for f in report.failures]
    assert report.warnings == [], [w.summary for w in report.warnings]  # distribution checks hold
    assert report.row_count == len(recorded_corpus.clip_ids)


def test_real_music_still_fails_when_corrupted(recorded_features, recorded_corpus, gx_dir):
    features = recorded_features.copy()
    features.loc[0, "tonnetz_max_03"] = 1 + 1e-3
    features.loc[1, "rmse_min_01"] = -1e-3
    track_ids = features["track_id"].tolist()

    report = gate(features, recorded_corpus, gx_dir)

    assert not report.success
    summaries = " | ".join(f.summary for f in report.failures)
    total = len(track_ids)
    assert f"tonnetz_max_03: 1 of {total} values outside [-1, 1] (track_id {track_ids[0]})" in summaries
    assert f"rmse_min_01: 1 of {total} values outside [0, inf] (track_id {track_ids[1]})" in summaries
    assert len(report.failures) == 2


def test_the_corpus_catalogue_passes_with_its_clips(recorded_corpus, tracks, recorded_features, gx_dir):
    catalogue = pd.DataFrame(catalogue_records(tracks, load_genres(recorded_corpus.genres_csv)))

    report = validate_catalogue(catalogue, context_dir=gx_dir, run_id="recorded", validated_at=RUN_TIME,
                                features=recorded_features, data_docs_base_url=DOCS_URL)

    assert report.success, [f.summary for f in report.failures]
    assert report.row_count == len(tracks)
    # Each decoded clip lasts what its metadata promises (short source tracks give short clips).
    assert not [w.summary for w in report.warnings if "clip" in w.summary]


def test_real_music_at_low_sample_rates_passes(recorded_corpus, tmp_path):
    """Not every real MP3 is 44.1 kHz: clips re-encoded at 8, 11.025 and 22.05 kHz pass too."""
    import librosa
    import soundfile as sf

    rates = {1: 8000, 2: 11025, 3: 22050}
    for track_id, rate in rates.items():
        source = audio_path(recorded_corpus.audio_dir, recorded_corpus.clip_ids[track_id * 7])
        music, source_rate = sf.read(source, dtype="float32", always_2d=True)
        target = audio_path(tmp_path / "audio", track_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        resampled = librosa.resample(music.T, orig_sr=source_rate, target_sr=rate).T
        sf.write(target, resampled.clip(-1, 1), rate, format="MP3")
    features = extracted(tmp_path / "audio", tmp_path / "features", sorted(rates))

    report = validate_features(features, context_dir=tmp_path / "gx", expected_track_ids=sorted(rates),
                               validated_at=RUN_TIME, data_docs_base_url=DOCS_URL)

    assert report.success, [f.summary for f in report.failures]
    by_rate = features.set_index("sample_rate")
    assert by_rate.loc[8000, "analysis_sample_rate"] == 22050  # resampled up for the CQT
    # An 8 kHz file holds nothing above 4 kHz, which FMA's 22,050 Hz axis shows as 4 kHz.
    assert by_rate.loc[8000, "spectral_rolloff_max_01"] <= 4000 + MAIN_LOBE_HZ
