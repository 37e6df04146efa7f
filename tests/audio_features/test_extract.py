"""The chunked runner: outputs in FMA's format, one failure record per bad file, resume.

Clips are 2 s and pools few: the cost of these tests is process start-up and warm-up,
not extraction.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audio_features import extract as X
from audio_features.fma_schema import (
    EXTRA_FEATURE_COLUMNS,
    EXTRACT_SECONDS_COLUMN,
    audio_path,
    feature_columns,
    flat_feature_name,
)
from tests.audio_features.test_features import write_clip

GOOD = (2, 3, 5)  # 2 s music clips
CLIP_SECONDS = 2.0
ODD = {10: (8000, 1, "MP3"), 11: (22050, 3, "WAV")}  # odd rate, 3 channels: must work
BAD = {
    20: "missing_file",
    21: "empty_file",
    22: "not_audio",
    23: "truncated",
    24: "silent",
}
ALL_IDS = [*GOOD, *ODD, *BAD]


@pytest.fixture(scope="module", autouse=True)
def shared_numba_cache(tmp_path_factory):
    """One JIT cache for every pool in this module, so only the first pays the compile."""
    previous = os.environ.get("NUMBA_CACHE_DIR")
    os.environ["NUMBA_CACHE_DIR"] = str(tmp_path_factory.mktemp("numba"))
    yield
    if previous is None:
        os.environ.pop("NUMBA_CACHE_DIR")
    else:
        os.environ["NUMBA_CACHE_DIR"] = previous


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("audio")
    for seed, track_id in enumerate(GOOD):
        write_clip(audio_path(root, track_id), "music", seconds=CLIP_SECONDS, seed=seed)
    for track_id, (sr, channels, fmt) in ODD.items():
        write_clip(audio_path(root, track_id), "music", seconds=CLIP_SECONDS, sr=sr, channels=channels, fmt=fmt)
    audio_path(root, 21).write_bytes(b"")
    audio_path(root, 22).write_text("<html>not found</html>\n" * 50)
    full = write_clip(root / "full.mp3", "music", seconds=8.0).read_bytes()
    audio_path(root, 23).write_bytes(full[: len(full) // 4])
    write_clip(audio_path(root, 24), "silence", seconds=CLIP_SECONDS)
    return root


DURATIONS = {t: CLIP_SECONDS for t in GOOD} | {10: CLIP_SECONDS, 11: CLIP_SECONDS, 20: 30.0, 21: 30.0,
                                                22: 30.0, 23: 8.0, 24: CLIP_SECONDS}


def test_plan_chunks_is_sorted_deduplicated_and_bounded():
    assert X.plan_chunks([5, 3, 3, 9, 1], chunk_size=2) == [[1, 3], [5, 9]]
    with pytest.raises(ValueError):
        X.plan_chunks([1], chunk_size=0)


@pytest.mark.slow
def test_run_writes_fma_features_failures_and_resumes(audio_dir, tmp_path):
    out = tmp_path / "out"
    results = X.extract_tracks(ALL_IDS, audio_dir=audio_dir, out_dir=out, workers=2,
                               chunk_size=4, track_durations=DURATIONS, progress=False)
    assert [r.skipped for r in results] == [False, False, False]

    features = pd.read_csv(out / "features.csv", index_col=0, header=[0, 1, 2])
    assert list(features.columns) == feature_columns()
    assert features.index.name == "track_id"
    assert sorted(features.index) == sorted([*GOOD, *ODD])
    assert np.isfinite(features.to_numpy()).all()
    assert (features["mfcc", "std"] > 0).all().all()

    failures = pd.read_csv(out / "failures.csv")
    assert dict(zip(failures.track_id, failures.reason)) == BAD

    chunk = pd.read_parquet(X.chunk_path(out, 0))
    assert list(chunk.columns) == ["track_id", *map(flat_feature_name, feature_columns()),
                                   *EXTRA_FEATURE_COLUMNS, EXTRACT_SECONDS_COLUMN]
    assert (chunk[EXTRACT_SECONDS_COLUMN] > 0).all()
    chunks = [pd.read_parquet(p) for p in sorted((out / "chunks").glob("*.parquet"))]
    odd = pd.concat([c for c in chunks if not c.empty]).set_index("track_id")
    assert odd.loc[10, "sample_rate"] == 8000 and odd.loc[11, "sample_rate"] == 22050
    assert odd.loc[2, "duration_seconds"] == pytest.approx(CLIP_SECONDS, abs=0.1)

    # Resume: finished chunks are skipped and left untouched; a lost chunk is redone.
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "chunks").glob("chunk-*")}
    X.chunk_path(out, 1).unlink()
    rerun = X.extract_tracks(ALL_IDS, audio_dir=audio_dir, out_dir=out, workers=1,
                             chunk_size=4, track_durations=DURATIONS, progress=False)
    assert [r.skipped for r in rerun] == [True, False, True]
    for p, mtime in mtimes.items():
        if p.name.startswith(("chunk-00000", "chunk-00002")):
            assert p.stat().st_mtime_ns == mtime
    again = pd.read_csv(out / "features.csv", index_col=0, header=[0, 1, 2])
    pd.testing.assert_frame_equal(again, features)
    failures_again = pd.read_csv(out / "failures.csv")
    assert dict(zip(failures_again.track_id, failures_again.reason)) == BAD


class CrashingPath:
    """A clip path whose use kills the worker process, as a decoder segfault would."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __fspath__(self) -> str:
        os._exit(3)


@pytest.mark.slow
def test_a_worker_crash_fails_only_its_track(audio_dir, tmp_path):
    jobs = [
        X.TrackJob(2, audio_path(audio_dir, 2)),
        X.TrackJob(99, CrashingPath(audio_dir / "crash.mp3")),
        X.TrackJob(3, audio_path(audio_dir, 3)),
    ]
    result = X.extract_chunk(0, jobs, out_dir=tmp_path, workers=2)
    assert (result.n_extracted, result.n_failed) == (2, 1)
    failures = pd.read_csv(X.chunk_failures_path(tmp_path, 0))
    assert failures.to_dict("records") == [{"track_id": 99, "reason": "worker_crash"}]
    assert sorted(pd.read_parquet(result.path).track_id) == [2, 3]


def _fake_record(track_id: int) -> dict:
    from audio_features.features import FLAT_FEATURE_NAMES

    return {"track_id": track_id, **dict.fromkeys(FLAT_FEATURE_NAMES, 0.5), "duration_seconds": 2.0,
            "sample_rate": 22050, "analysis_sample_rate": 22050, "tempo_bpm": 120.0, EXTRACT_SECONDS_COLUMN: 0.1}


def test_a_track_with_no_outcome_becomes_a_failure_record(tmp_path, monkeypatch):
    jobs = [X.TrackJob(t, tmp_path / f"{t}.mp3") for t in (7, 8, 9)]

    def lose_track_8(jobs, pool, workers, records, failures, bar):
        records.append(_fake_record(7))
        failures.append((9, "not_audio"))
        return pool

    monkeypatch.setattr(X, "_run_jobs", lose_track_8)
    X._prepare_out_dir(tmp_path)
    result, _ = X._run_chunk(0, jobs, out_dir=tmp_path, pool=None, workers=1)
    assert (result.n_extracted, result.n_failed) == (1, 2)
    assert pd.read_parquet(result.path).track_id.tolist() == [7]
    failures = pd.read_csv(X.chunk_failures_path(tmp_path, 0))
    assert dict(zip(failures.track_id, failures.reason)) == {9: "not_audio", 8: X.REASON_MISSING_RESULT}


def test_a_duplicate_or_foreign_outcome_is_a_runner_bug():
    jobs = [X.TrackJob(1, Path("1.mp3")), X.TrackJob(2, Path("2.mp3"))]
    with pytest.raises(RuntimeError):
        X.account_for_every_track(jobs, [_fake_record(1)], [(1, "silent")])
    with pytest.raises(RuntimeError):
        X.account_for_every_track(jobs, [_fake_record(3)], [])


def test_a_chunk_file_for_other_tracks_is_not_taken_as_done(tmp_path):
    X._prepare_out_dir(tmp_path)
    X._write_chunk(0, [_fake_record(1)], [(2, "silent")], out_dir=tmp_path)
    jobs = [X.TrackJob(t, Path(f"{t}.mp3")) for t in (1, 2)]
    assert X._finished_chunk_counts(0, jobs, out_dir=tmp_path) == (1, 1)
    assert X._finished_chunk_counts(0, [*jobs, X.TrackJob(3, Path("3.mp3"))], out_dir=tmp_path) is None


def test_warm_up_holds_an_exclusive_lock_on_the_numba_cache(tmp_path, monkeypatch):
    import fcntl

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    with X.numba_cache_lock(), open(tmp_path / X.WARM_LOCK_NAME, "a+b") as other:
        with pytest.raises(BlockingIOError):  # a second warm-up (another worker) waits
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(tmp_path / X.WARM_LOCK_NAME, "a+b") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # released on exit
