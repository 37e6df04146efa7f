"""The chunked runner: outputs in FMA's format, one failure record per bad file, resume,
and the limits that keep one hostile file from stalling a chunk (timeout, caps).

Clips are 2 s and pools few: the cost of these tests is process start-up and warm-up,
not extraction. Workers use the per-user numba cache (``Settings().numba_cache_dir``)
unless ``NUMBA_CACHE_DIR`` says otherwise, as every run does.
"""

from __future__ import annotations

import os
import time
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


class HangingPath(CrashingPath):
    """A clip path whose use never returns, as a decoder stuck in a loop would."""

    def __fspath__(self) -> str:
        time.sleep(3600)
        return str(self.path)


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
    assert failures.to_dict("records") == [
        {"track_id": 99, "reason": "worker_crash", "detail": "worker process exited with code 3"}]
    assert sorted(pd.read_parquet(result.path).track_id) == [2, 3]


@pytest.mark.slow
def test_a_track_past_the_timeout_fails_alone_and_its_worker_is_replaced(audio_dir, tmp_path):
    limits = X.ExtractionLimits(track_timeout_s=8.0)
    jobs = [X.TrackJob(2, audio_path(audio_dir, 2)), X.TrackJob(98, HangingPath(audio_dir / "hang.mp3")),
            *(X.TrackJob(t, audio_path(audio_dir, t)) for t in (3, 5, 10))]
    started = time.monotonic()
    with X.ExtractorPool(1, limits=limits) as pool:  # one worker: the rest must wait for a new one
        outcomes = pool.run(jobs)
        assert pool.run([X.TrackJob(11, audio_path(audio_dir, 11))])[0].record is not None
    assert time.monotonic() - started < 300
    by_track = {o.track_id: o for o in outcomes}
    assert sorted(by_track) == [2, 3, 5, 10, 98]
    assert by_track[98].reason == X.REASON_TIMEOUT
    assert "8 s" in by_track[98].detail and "--track-timeout" in by_track[98].detail
    assert all(by_track[t].record is not None for t in (2, 3, 5, 10))


def test_caps_become_failure_reasons_with_details(audio_dir):
    clip = audio_path(audio_dir, 2)
    size = clip.stat().st_size
    too_large = X.extract_one(X.TrackJob(2, clip), X.ExtractionLimits(max_file_bytes=size - 1))
    assert (too_large.reason, too_large.record) == ("file_too_large", None)
    assert f"{size:,} bytes" in too_large.detail
    too_long = X.extract_one(X.TrackJob(2, clip), X.ExtractionLimits(max_seconds=1.5))
    assert too_long.reason == "too_long" and "limit 1.5 s" in too_long.detail
    fits = X.extract_one(X.TrackJob(2, clip), X.ExtractionLimits(max_seconds=CLIP_SECONDS + 0.5))
    assert fits.record is not None and fits.record["duration_seconds"] == pytest.approx(CLIP_SECONDS, abs=0.1)


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        X.ExtractionLimits(track_timeout_s=0)
    with pytest.raises(ValueError):
        X.ExtractionLimits(max_seconds=-1)


@pytest.mark.slow
def test_workers_that_cannot_warm_up_stop_the_pool_with_one_clear_error(audio_dir, tmp_path, monkeypatch):
    not_a_folder = tmp_path / "numba-cache"
    not_a_folder.write_text("a file where the JIT cache folder should be")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(not_a_folder))
    with pytest.raises(X.WorkerStartError, match="in a row died or hung in their warm-up"):
        with X.ExtractorPool(1) as pool:
            pool.run([X.TrackJob(2, audio_path(audio_dir, 2))])


def _fake_record(track_id: int) -> dict:
    from audio_features.features import FLAT_FEATURE_NAMES

    return {"track_id": track_id, **dict.fromkeys(FLAT_FEATURE_NAMES, 0.5), "duration_seconds": 2.0,
            "sample_rate": 22050, "analysis_sample_rate": 22050, "tempo_bpm": 120.0, EXTRACT_SECONDS_COLUMN: 0.1}


def test_a_track_with_no_outcome_becomes_a_failure_record(tmp_path):
    jobs = [X.TrackJob(t, tmp_path / f"{t}.mp3") for t in (7, 8, 9)]
    outcomes = [X.TrackOutcome(7, record=_fake_record(7)), X.TrackOutcome(9, reason="not_audio", detail="html")]
    result = X.write_chunk_outcomes(0, jobs, outcomes, out_dir=tmp_path)
    assert (result.n_extracted, result.n_failed) == (1, 2)
    assert pd.read_parquet(result.path).track_id.tolist() == [7]
    failures = pd.read_csv(X.chunk_failures_path(tmp_path, 0))
    assert failures.track_id.tolist() == [8, 9]  # sorted: a rerun writes the same file
    assert dict(zip(failures.track_id, failures.reason)) == {9: "not_audio", 8: X.REASON_MISSING_RESULT}


def test_a_duplicate_or_foreign_outcome_is_a_runner_bug():
    jobs = [X.TrackJob(1, Path("1.mp3")), X.TrackJob(2, Path("2.mp3"))]
    with pytest.raises(RuntimeError):
        X.account_for_every_track(jobs, [_fake_record(1)], [(1, "silent", "")])
    with pytest.raises(RuntimeError):
        X.account_for_every_track(jobs, [_fake_record(3)], [])


def test_a_chunk_file_for_other_tracks_is_not_taken_as_done(tmp_path):
    (tmp_path / X.CHUNKS_DIRNAME).mkdir()
    X._write_chunk(0, [_fake_record(1)], [(2, "silent", "peak below -80 dBFS")], out_dir=tmp_path)
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
