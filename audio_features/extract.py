"""Chunked, resumable, multi-process extraction of FMA features over many tracks.

A run is a list of chunks (``plan_chunks``). ``extract_chunk`` computes one chunk and
writes ``OUT_DIR/chunks/chunk-NNNNN.parquet`` and ``chunk-NNNNN.failures.csv``
atomically (temp file, then rename; the Parquet file is renamed last and marks the
chunk done). A rerun skips finished chunks, so a killed run resumes where it stopped and
an Airflow task mapped over chunks is idempotent. ``merge_chunks`` writes FMA's
``features.csv`` and ``failures.csv`` from whatever chunks exist.

Every track either yields a row or a failure ``(track_id, reason)``; one bad file never
stops the run, and a crashed worker process only fails the track it was working on.
The chunk is checked before it is written: a track with neither becomes a
``missing_result`` failure, never a silent gap.

Workers share numba's on-disk JIT cache (``NUMBA_CACHE_DIR``). numba writes it
file by file, and a gufunc is cached as two entries (kernel and wrapper) that must
come from the same compilation; two processes compiling at once can leave a wrapper
whose kernel symbol resolves to address 0, and every later process that loads it
segfaults (each new worker then dies in its warm-up, so whole chunks came back as
``worker_crash``). ``warm_worker`` therefore compiles, or loads, under an exclusive
file lock in the cache folder: one writer at a time, across pools and runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from audio_features.fma_schema import (
    EXTRA_FEATURE_COLUMNS,
    EXTRACT_SECONDS_COLUMN,
    FEATURES_HEADER_NAMES,
    FMA_CLIP_SECONDS,
    audio_path,
    feature_columns,
    flat_feature_name,
)
from fma_platform.files import write_atomic

CHUNKS_DIRNAME = "chunks"
FEATURES_CSV = "features.csv"
FAILURES_CSV = "failures.csv"
REASON_WORKER_CRASH = "worker_crash"
REASON_UNEXPECTED = "unexpected_error"
REASON_MISSING_RESULT = "missing_result"
WARM_LOCK_NAME = ".audio_features-warm.lock"
FAILURE_COLUMNS = ("track_id", "reason")


@dataclass(frozen=True)
class TrackJob:
    """One track to extract: where its clip is and how long the catalogue says it is."""

    track_id: int
    path: Path
    expected_seconds: float | None = None


@dataclass(frozen=True)
class ChunkResult:
    """What ``extract_chunk`` did: the chunk file, and counts (skipped: already done)."""

    index: int
    path: Path
    n_extracted: int
    n_failed: int
    skipped: bool


def plan_chunks(track_ids: Iterable[int], *, chunk_size: int = 500) -> list[list[int]]:
    """Split track ids (deduplicated, sorted) into chunks of at most ``chunk_size``.

    Sorting makes the plan, and so each chunk's content, the same on every rerun.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    ids = sorted({int(t) for t in track_ids})
    return [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]


def chunk_path(out_dir: Path, index: int) -> Path:
    """``OUT_DIR/chunks/chunk-00000.parquet``."""
    return Path(out_dir) / CHUNKS_DIRNAME / f"chunk-{index:05d}.parquet"


def chunk_failures_path(out_dir: Path, index: int) -> Path:
    """``OUT_DIR/chunks/chunk-00000.failures.csv``."""
    return Path(out_dir) / CHUNKS_DIRNAME / f"chunk-{index:05d}.failures.csv"


def expected_clip_seconds(track_durations: Mapping[int, float] | None, track_id: int) -> float | None:
    """FMA clips are 30 s excerpts, or the whole track when it is shorter."""
    if not track_durations or track_id not in track_durations:
        return None
    duration = track_durations[track_id]
    if pd.isna(duration) or duration <= 0:
        return None
    return min(float(duration), FMA_CLIP_SECONDS)


def extract_tracks(
    track_ids: Sequence[int],
    *,
    audio_dir: Path,
    out_dir: Path,
    workers: int = 1,
    chunk_size: int = 500,
    track_durations: Mapping[int, float] | None = None,
    progress: bool = True,
) -> list[ChunkResult]:
    """Extract every track, chunk by chunk, with ``workers`` processes; then merge.

    Parameters
    ----------
    track_ids : sequence of int
        Tracks to extract; their clips are at ``audio_path(audio_dir, track_id)``.
    audio_dir, out_dir : Path
        FMA audio folder; output folder (created).
    workers : int
        Worker processes, each warmed once (numba JIT) before its first track.
    chunk_size : int
        Tracks per chunk file: the unit of resumption and of memory use.
    track_durations : mapping or None
        ``track.duration`` from tracks.csv, to flag truncated clips.
    progress : bool
        Show a tqdm bar over tracks.

    Returns
    -------
    list of ChunkResult
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir)
    chunks = plan_chunks(track_ids, chunk_size=chunk_size)
    results = []
    with tqdm(total=sum(map(len, chunks)), unit="track", disable=not progress) as bar:
        pool = _start_pool(workers)
        try:
            for index, chunk in enumerate(chunks):
                jobs = [
                    TrackJob(t, audio_path(audio_dir, t), expected_clip_seconds(track_durations, t))
                    for t in chunk
                ]
                result, pool = _run_chunk(index, jobs, out_dir=out_dir, pool=pool, workers=workers, bar=bar)
                results.append(result)
        finally:
            pool.shutdown(cancel_futures=True)
    merge_chunks(out_dir)
    return results


def extract_chunk(
    index: int,
    jobs: Sequence[TrackJob],
    *,
    out_dir: Path,
    workers: int = 1,
) -> ChunkResult:
    """Extract one chunk (skipped if its file exists) and write it atomically.

    The entry point for one mapped task; ``extract_tracks`` shares one pool instead.
    """
    _prepare_out_dir(Path(out_dir))
    pool = _start_pool(workers)
    try:
        result, pool = _run_chunk(index, jobs, out_dir=Path(out_dir), pool=pool, workers=workers)
    finally:
        pool.shutdown(cancel_futures=True)
    return result


def merge_chunks(out_dir: Path) -> tuple[Path, Path]:
    """Write ``features.csv`` (FMA's 3-level header) and ``failures.csv`` from all chunks."""
    out_dir = Path(out_dir)
    chunk_files = sorted((out_dir / CHUNKS_DIRNAME).glob("chunk-*.parquet"))
    columns = feature_columns()
    flat = [flat_feature_name(c) for c in columns]
    frames = [f for f in map(pd.read_parquet, chunk_files) if not f.empty]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["track_id", *flat])
    features = rows.set_index("track_id")[flat].sort_index()
    features.columns = pd.MultiIndex.from_tuples(columns, names=FEATURES_HEADER_NAMES)
    features.index.name = "track_id"
    features_csv = out_dir / FEATURES_CSV
    write_atomic(features_csv, lambda tmp: features.to_csv(tmp, float_format="%.6e"))

    failure_files = [chunk_failures_path(out_dir, int(p.stem.split("-")[1])) for p in chunk_files]
    failure_frames = [pd.read_csv(p) for p in failure_files if p.exists()]
    failures = (
        pd.concat(failure_frames, ignore_index=True).sort_values("track_id")
        if failure_frames
        else pd.DataFrame(columns=list(FAILURE_COLUMNS))
    )
    failures_csv = out_dir / FAILURES_CSV
    write_atomic(failures_csv, lambda tmp: failures.to_csv(tmp, index=False))
    return features_csv, failures_csv


# -- worker side --------------------------------------------------------------------


def warm_worker() -> None:
    """Pay librosa's numba JIT once per process: one extraction of 2 s of noise.

    Importing librosa and the first extraction are what compile and write numba's
    cache, so both run under ``numba_cache_lock`` (see the module docstring).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # one core per worker: BLAS must not spawn its own threads
    with numba_cache_lock():
        import numpy as np

        from audio_features.features import compute_features

        noise = np.random.default_rng(0).standard_normal(44100 * 2).astype(np.float32) * 0.1
        compute_features(noise, sr=44100)


@contextlib.contextmanager
def numba_cache_lock():
    """Hold an exclusive lock on numba's cache folder (its default place: the temp dir).

    ``flock`` is released by the kernel when the holder exits, even by a crash, so a
    dead worker never leaves the lock behind.
    """
    folder = Path(os.environ.get("NUMBA_CACHE_DIR") or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / WARM_LOCK_NAME, "a+b") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


def extract_one(job: TrackJob) -> tuple[int, dict | None, str | None]:
    """``(track_id, record, None)`` or ``(track_id, None, reason)``; never raises."""
    from audio_features.features import UnusableClipError, extract_features

    started = time.perf_counter()
    try:
        features = extract_features(job.path, expected_seconds=job.expected_seconds)
    except UnusableClipError as exc:
        return job.track_id, None, exc.reason
    except Exception as exc:  # a bug or a library failure on one file: record, go on
        return job.track_id, None, f"{REASON_UNEXPECTED}: {type(exc).__name__}: {exc}"
    record = {"track_id": job.track_id, **features.as_record()}
    record[EXTRACT_SECONDS_COLUMN] = time.perf_counter() - started
    return job.track_id, record, None


# -- driver side --------------------------------------------------------------------


def _prepare_out_dir(out_dir: Path) -> None:
    """Create the chunk folder; workers cache numba's JIT under the output unless told."""
    (out_dir / CHUNKS_DIRNAME).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(out_dir / "numba_cache"))


def _start_pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    # spawn: no fork of a parent that may hold threads (BLAS, tqdm) or big arrays.
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=warm_worker)


def _run_chunk(index, jobs, *, out_dir, pool, workers, bar=None):
    """Run one chunk on ``pool``; returns its result and the (possibly restarted) pool."""
    target = chunk_path(out_dir, index)
    done = _finished_chunk_counts(index, jobs, out_dir=out_dir)
    if done is not None:
        if bar is not None:
            bar.update(len(jobs))
        return ChunkResult(index, target, *done, skipped=True), pool
    records, failures = [], []
    pool = _run_jobs(jobs, pool, workers, records, failures, bar)
    account_for_every_track(jobs, records, failures)
    _write_chunk(index, records, failures, out_dir=out_dir)
    return ChunkResult(index, target, len(records), len(failures), skipped=False), pool


def _finished_chunk_counts(index, jobs, *, out_dir):
    """``(n_extracted, n_failed)`` of a finished chunk for exactly ``jobs``, else None.

    A chunk file for other tracks (the plan changed) or with a track missing is not
    finished: it is recomputed, so a rerun never keeps a gap.
    """
    target, failures_csv = chunk_path(out_dir, index), chunk_failures_path(out_dir, index)
    if not (target.exists() and failures_csv.exists()):
        return None
    extracted = pd.read_parquet(target, columns=["track_id"]).track_id.tolist()
    failed = pd.read_csv(failures_csv).track_id.tolist()
    if sorted(extracted + failed) != sorted(job.track_id for job in jobs):
        return None
    return len(extracted), len(failed)


def account_for_every_track(jobs, records, failures) -> None:
    """Enforce "rows + failures == tracks of the chunk", in place.

    A track with neither a record nor a failure gets a ``missing_result`` failure.
    A track with two outcomes, or an outcome for a track not in ``jobs``, is a runner
    bug and raises ``RuntimeError`` before anything is written.
    """
    expected = [job.track_id for job in jobs]
    outcomes = [r["track_id"] for r in records] + [track_id for track_id, _ in failures]
    seen = set(outcomes)
    if len(seen) != len(outcomes) or not seen <= set(expected):
        raise RuntimeError(f"chunk outcomes {sorted(outcomes)} do not match its tracks {sorted(expected)}")
    for track_id in expected:
        if track_id not in seen:
            failures.append((track_id, REASON_MISSING_RESULT))


def _run_jobs(jobs, pool, workers, records, failures, bar):
    """Run ``jobs`` on ``pool``; returns a usable pool (a new one after a worker crash).

    A crash breaks the whole pool and fails every unfinished future, so those tracks are
    rerun one per fresh process: only a track that crashes on its own is recorded as
    ``worker_crash``, and every other track still gets its features.
    """
    submitted = [(pool.submit(extract_one, job), job) for job in jobs]
    unfinished = []
    for future, job in submitted:
        try:
            _collect(*future.result(), records, failures, bar)
        except BrokenProcessPool:
            unfinished.append(job)
    if not unfinished:
        return pool
    pool.shutdown(cancel_futures=True)
    for job in unfinished:
        solo = _start_pool(1)
        try:
            _collect(*solo.submit(extract_one, job).result(), records, failures, bar)
        except BrokenProcessPool:
            _collect(job.track_id, None, REASON_WORKER_CRASH, records, failures, bar)
        finally:
            solo.shutdown(cancel_futures=True)
    return _start_pool(workers)


def _collect(track_id, record, reason, records, failures, bar):
    if record is not None:
        records.append(record)
    else:
        failures.append((track_id, reason))
    if bar is not None:
        bar.update(1)


def _write_chunk(index, records, failures, *, out_dir):
    flat = [flat_feature_name(c) for c in feature_columns()]
    columns = ["track_id", *flat, *EXTRA_FEATURE_COLUMNS, EXTRACT_SECONDS_COLUMN]
    table = pd.DataFrame.from_records(records, columns=columns)
    table = table.astype({"track_id": "int64", "sample_rate": "int64", "analysis_sample_rate": "int64"})
    failure_table = pd.DataFrame(failures, columns=list(FAILURE_COLUMNS)).astype({"track_id": "int64"})
    # Failures first: the Parquet file's presence is what marks the chunk finished.
    write_atomic(chunk_failures_path(out_dir, index), lambda tmp: failure_table.to_csv(tmp, index=False))
    write_atomic(chunk_path(out_dir, index), lambda tmp: table.to_parquet(tmp, index=False))


