"""Chunked, resumable, multi-process extraction of FMA features over many tracks.

A run is a list of chunks (``plan_chunks``). ``extract_chunk`` computes one chunk and
writes ``OUT_DIR/chunks/chunk-NNNNN.parquet`` and ``chunk-NNNNN.failures.csv``
atomically (temp file, then rename; the Parquet file is renamed last and marks the
chunk done). A rerun skips finished chunks, so a killed run resumes where it stopped and
an Airflow task mapped over chunks is idempotent. ``merge_chunks`` writes FMA's
``features.csv`` and ``failures.csv`` (``track_id, reason, detail``) from whatever
chunks exist.

Every track either yields a row or a failure (a reason code and a detail); one bad file
never stops the run. Tracks run on an ``ExtractorPool``: ``workers`` processes started
once per run, each warmed once and given one track at a time. A track that takes longer
than ``ExtractionLimits.track_timeout_s`` is a ``timeout`` and one that kills its process
a ``worker_crash``: in both cases only that track fails, its worker is replaced and the
other workers go on. Files over the size cap (``file_too_large``) or decoding to more
than the duration cap (``too_long``) are refused before they can take a worker's memory.
The chunk is checked before it is written: a track with no outcome becomes a
``missing_result`` failure, never a silent gap.

Workers share numba's on-disk JIT cache (``NUMBA_CACHE_DIR``; by default the per-user
``Settings().numba_cache_dir``, so every run after the first loads instead of compiling).
numba writes it file by file, and a gufunc is cached as two entries (kernel and wrapper)
that must come from the same compilation; two processes compiling at once can leave a
wrapper whose kernel symbol resolves to address 0, and every later process that loads it
segfaults (each new worker then dies in its warm-up). ``warm_worker`` therefore
compiles, or loads, under an exclusive file lock in the cache folder: one writer at a
time, across pools and runs. A pool whose workers keep dying in warm-up stops with
``WorkerStartError`` instead of failing every track.

This module imports neither pandas nor librosa at the top: workers import it and need
only librosa, the parent needs only pandas, so each process loads what it uses. Workers
are spawned (each a fresh interpreter that warms up), except in a process that has warmed
up itself (``process_is_warm``: the extraction server's sessions, ``audio_features.server``),
which forks them: they start with librosa and its JIT code loaded, and write no cache.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import signal
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from audio_features.errors import AudioFeaturesError
from audio_features.fma_schema import (
    EXTRA_FEATURE_COLUMNS,
    EXTRACT_SECONDS_COLUMN,
    FEATURES_HEADER_NAMES,
    FMA_CLIP_SECONDS,
    audio_path,
    feature_columns,
    flat_feature_name,
)
from fma_platform.files import exclusive_lock, write_atomic

CHUNKS_DIRNAME = "chunks"
FEATURES_CSV = "features.csv"
FAILURES_CSV = "failures.csv"
REASON_WORKER_CRASH = "worker_crash"
REASON_TIMEOUT = "timeout"
REASON_UNEXPECTED = "unexpected_error"
REASON_MISSING_RESULT = "missing_result"
WARM_LOCK_NAME = ".audio_features-warm.lock"
FAILURE_COLUMNS = ("track_id", "reason", "detail")

# Run limits (each a flag of ``python -m audio_features extract``). FMA's clips are 30 s
# MP3s of at most a few MB, extracted in ~0.15-1.3 s on one core (README "Measured").
# Wall-clock seconds one track may take on a worker, decode included: ~100x a clip's
# cost, so only a hang (or a machine far past overload) reaches it.
TRACK_TIMEOUT_SECONDS = 120.0
# File size refused before decoding: 30 s of 96 kHz 32-bit stereo WAV is 23 MB.
MAX_FILE_BYTES = 128 * 2**20
# Decoded audio refused: 4 clips' worth. Bounds a worker's memory (a few hundred MB at
# 48 kHz) and time whatever the header claims.
MAX_DECODED_SECONDS = 4 * FMA_CLIP_SECONDS
# A worker's warm-up (import librosa, load or compile numba's JIT cache): ~3 s warm,
# ~20-60 s cold on this kind of machine; past this it is taken as hung.
WARM_UP_TIMEOUT_SECONDS = 600.0
# Workers dying in warm-up this many times in a row stop the pool (a broken JIT cache or
# install fails every track the same way: better one clear error than a chunk of crashes).
MAX_WARM_UP_FAILURES = 3


class WorkerStartError(AudioFeaturesError):
    """Extraction workers cannot start (they die or hang in their warm-up)."""


@dataclass(frozen=True)
class ExtractionLimits:
    """Per-track limits of a run: wall-clock timeout, file size and decoded duration."""

    track_timeout_s: float = TRACK_TIMEOUT_SECONDS
    max_file_bytes: int = MAX_FILE_BYTES
    max_seconds: float = MAX_DECODED_SECONDS

    def __post_init__(self) -> None:
        if not (self.track_timeout_s > 0 and self.max_file_bytes > 0 and self.max_seconds > 0):
            raise ValueError(f"extraction limits must be positive: {self}")


@dataclass(frozen=True)
class TrackJob:
    """One track to extract: where its clip is and how long the catalogue says it is."""

    track_id: int
    path: Path
    expected_seconds: float | None = None


@dataclass(frozen=True)
class TrackOutcome:
    """What became of one track: its record (features) or a failure reason and detail."""

    track_id: int
    record: dict | None = None
    reason: str | None = None
    detail: str = ""


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
    if duration is None or math.isnan(duration) or duration <= 0:
        return None
    return min(float(duration), FMA_CLIP_SECONDS)


def default_numba_cache_dir() -> Path:
    """numba's JIT cache of this process and its workers: ``NUMBA_CACHE_DIR`` if set, else
    the per-user ``Settings().numba_cache_dir`` (set into the environment, so workers and
    numba, once imported, use it). Call before numba is imported."""
    if not os.environ.get("NUMBA_CACHE_DIR"):
        from fma_platform.settings import Settings

        os.environ["NUMBA_CACHE_DIR"] = str(Settings().numba_cache_dir)
    return Path(os.environ["NUMBA_CACHE_DIR"])


def extract_tracks(
    track_ids: Sequence[int],
    *,
    audio_dir: Path,
    out_dir: Path,
    workers: int = 1,
    chunk_size: int = 500,
    track_durations: Mapping[int, float] | None = None,
    progress: bool = True,
    limits: ExtractionLimits | None = None,
    pool: ExtractorPool | None = None,
) -> list[ChunkResult]:
    """Extract every track, chunk by chunk, on one pool of ``workers`` processes; then merge.

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
    limits : ExtractionLimits or None
        Per-track timeout and caps (default: the module's constants).
    pool : ExtractorPool or None
        Workers already started (the CLI starts them before reading the metadata, so
        their warm-up overlaps it); its own ``workers`` and ``limits`` then apply. It is
        left open for the caller to close. Without it, a pool is started at the first
        chunk that needs work and closed at the end.

    Returns
    -------
    list of ChunkResult
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    (out_dir / CHUNKS_DIRNAME).mkdir(parents=True, exist_ok=True)
    chunks = plan_chunks(track_ids, chunk_size=chunk_size)
    own_pool = None
    results = []
    with tqdm(total=sum(map(len, chunks)), unit="track", disable=not progress) as bar:
        try:
            for index, chunk in enumerate(chunks):
                jobs = [
                    TrackJob(t, audio_path(audio_dir, t), expected_clip_seconds(track_durations, t))
                    for t in chunk
                ]
                done = _finished_chunk_counts(index, jobs, out_dir=out_dir)
                if done is not None:
                    bar.update(len(jobs))
                    results.append(ChunkResult(index, chunk_path(out_dir, index), *done, skipped=True))
                    continue
                if pool is None and own_pool is None:
                    own_pool = ExtractorPool(workers, limits=limits)
                outcomes = (pool or own_pool).run(jobs, on_outcome=lambda _: bar.update(1))
                results.append(write_chunk_outcomes(index, jobs, outcomes, out_dir=out_dir))
        finally:
            if own_pool is not None:
                own_pool.close()
    merge_chunks(out_dir)
    return results


def extract_chunk(
    index: int,
    jobs: Sequence[TrackJob],
    *,
    out_dir: Path,
    workers: int = 1,
    limits: ExtractionLimits | None = None,
) -> ChunkResult:
    """Extract one chunk (skipped if its file exists) and write it atomically."""
    out_dir = Path(out_dir)
    (out_dir / CHUNKS_DIRNAME).mkdir(parents=True, exist_ok=True)
    done = _finished_chunk_counts(index, jobs, out_dir=out_dir)
    if done is not None:
        return ChunkResult(index, chunk_path(out_dir, index), *done, skipped=True)
    with ExtractorPool(workers, limits=limits) as pool:
        outcomes = pool.run(jobs)
    return write_chunk_outcomes(index, jobs, outcomes, out_dir=out_dir)


def write_chunk_outcomes(index: int, jobs: Sequence[TrackJob], outcomes: Sequence[TrackOutcome], *,
                         out_dir: Path) -> ChunkResult:
    """Check that every track has exactly one outcome, then write the chunk's two files."""
    records = [o.record for o in outcomes if o.record is not None]
    failures = [(o.track_id, o.reason, o.detail) for o in outcomes if o.record is None]
    account_for_every_track(jobs, records, failures)
    _write_chunk(index, records, failures, out_dir=Path(out_dir))
    return ChunkResult(index, chunk_path(out_dir, index), len(records), len(failures), skipped=False)


def merge_chunks(out_dir: Path) -> tuple[Path, Path]:
    """Write ``features.csv`` (FMA's 3-level header) and ``failures.csv`` from all chunks."""
    import pandas as pd

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
    failure_frames = [pd.read_csv(p, dtype={"detail": str}) for p in failure_files if p.exists()]
    failures = (
        pd.concat(failure_frames, ignore_index=True).sort_values("track_id", kind="stable")
        if failure_frames
        else pd.DataFrame(columns=list(FAILURE_COLUMNS))
    )
    failures = failures.reindex(columns=list(FAILURE_COLUMNS))  # chunks written before "detail"
    failures_csv = out_dir / FAILURES_CSV
    write_atomic(failures_csv, lambda tmp: failures.to_csv(tmp, index=False))
    return features_csv, failures_csv


# -- worker side --------------------------------------------------------------------


def warm_worker() -> tuple[float, float]:
    """Pay librosa's numba JIT once per process: one extraction of 2 s of noise.

    Importing librosa's modules (their gufuncs compile at import) and the first
    extraction are what compile and write numba's cache, so both run under
    ``numba_cache_lock`` (see the module docstring). The libraries they stand on never
    touch that cache: they are imported first, outside the lock, so several workers
    starting at once wait for each other only for the cache's part (about a third).
    Returns the seconds spent before the lock and holding it (waits excluded).
    """
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    threadpool_limits(1)  # one core per worker: BLAS must not spawn its own threads
    for library in _CACHE_FREE_IMPORTS:
        importlib.import_module(library)
    unlocked = time.perf_counter() - started
    with numba_cache_lock():
        started = time.perf_counter()
        import numpy as np

        from audio_features.features import compute_features

        noise = np.random.default_rng(0).standard_normal(44100 * 2).astype(np.float32) * 0.1
        compute_features(noise, sr=44100)
        global _warm_here
        _warm_here = True
        return unlocked, time.perf_counter() - started


# Whether this process has run ``warm_worker``: librosa and its JIT code are loaded, so a
# pool started here forks its workers (they inherit both) instead of spawning cold ones.
_warm_here = False


def process_is_warm() -> bool:
    """True once ``warm_worker`` has run in this process (the extraction server does)."""
    return _warm_here


# What librosa imports that compiles nothing into numba's cache (numba's own modules
# included: only decorated functions are cached): ~2/3 of a worker's start-up.
_CACHE_FREE_IMPORTS = ("numpy", "scipy.fft", "scipy.signal", "scipy.sparse", "scipy.stats", "soundfile",
                       "numba", "joblib", "soxr")


def numba_cache_lock():
    """An exclusive lock on numba's cache folder (numba's default: the temp dir)."""
    folder = Path(os.environ.get("NUMBA_CACHE_DIR") or tempfile.gettempdir())
    return exclusive_lock(folder / WARM_LOCK_NAME)


def extract_one(job: TrackJob, limits: ExtractionLimits | None = None) -> TrackOutcome:
    """The features of one track, or its failure reason and detail; never raises."""
    from audio_features.features import UnusableClipError, extract_features

    limits = limits or ExtractionLimits()
    started = time.perf_counter()
    try:
        features = extract_features(job.path, expected_seconds=job.expected_seconds,
                                    max_bytes=limits.max_file_bytes, max_seconds=limits.max_seconds)
    except UnusableClipError as exc:
        return TrackOutcome(job.track_id, reason=exc.reason, detail=exc.detail)
    except Exception as exc:  # a bug or a library failure on one file: record, go on
        return TrackOutcome(job.track_id, reason=REASON_UNEXPECTED, detail=f"{type(exc).__name__}: {exc}")
    record = {"track_id": job.track_id, **features.as_record()}
    record[EXTRACT_SECONDS_COLUMN] = time.perf_counter() - started
    return TrackOutcome(job.track_id, record=record)


def _serve(conn, limits: ExtractionLimits, inherited: Sequence = ()) -> None:
    """A worker's life: warm up, say so, then extract one job per message until told to stop.

    The parent's end closing (it exited or was killed) ends the worker too. A worker forked
    from a warm process is warm already; it first closes the pipe ends it inherited
    (``inherited``: the pool's ends, its own included), so that a dead parent still means EOF.
    """
    if inherited:
        for parent_end in inherited:
            parent_end.close()
    else:
        warm_worker()
    conn.send(_READY)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        conn.send(extract_one(job, limits))


_READY = "ready"


# -- driver side --------------------------------------------------------------------


@dataclass
class _Worker:
    process: object
    conn: object
    started: float  # when it was started (warm-up) or given its current job
    ready: bool = False
    job: TrackJob | None = None


class ExtractorPool:
    """``workers`` warm extraction processes, each given one track at a time.

    Started in the constructor (their warm-up begins at once, in the background);
    ``run`` extracts a list of tracks and can be called for chunk after chunk; ``close``
    (or leaving the ``with`` block) stops them. A worker whose track passes the timeout
    is killed, and one that dies is replaced: only the track it held fails.
    """

    def __init__(self, workers: int = 1, *, limits: ExtractionLimits | None = None) -> None:
        import multiprocessing

        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.limits = limits or ExtractionLimits()
        default_numba_cache_dir()  # inherited by the workers
        # spawn: a fresh interpreter that warms up (imports librosa, loads the JIT cache) on
        # its own. fork only from a process that is warm already (the extraction server's
        # session, ``audio_features.server``): its workers start warm at no cost.
        self.start_method = "fork" if process_is_warm() else "spawn"
        self._context = multiprocessing.get_context(self.start_method)
        self._warm_up_failures = 0
        self._pool: list[_Worker] = []
        for _ in range(workers):
            self._pool.append(self._start_worker())

    def __enter__(self) -> ExtractorPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def run(self, jobs: Sequence[TrackJob],
            on_outcome: Callable[[TrackOutcome], None] | None = None) -> list[TrackOutcome]:
        """Extract ``jobs``; one outcome per job, in the order they finished."""
        from multiprocessing.connection import wait

        queue, outcomes = deque(jobs), []

        def record(outcome: TrackOutcome) -> None:
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

        while queue or any(w.job is not None for w in self._pool):
            for worker in self._pool:
                if worker.ready and worker.job is None and queue:
                    job = queue.popleft()
                    try:
                        worker.conn.send(job)
                    except OSError:  # it died idle: the job waits for its replacement
                        queue.appendleft(job)
                    else:
                        worker.job, worker.started = job, time.monotonic()
            waitables = [w.conn for w in self._pool] + [w.process.sentinel for w in self._pool]
            wait(waitables, timeout=self._seconds_to_next_deadline())
            for slot, worker in enumerate(self._pool):
                self._pool[slot] = self._attend(worker, record)
        return outcomes

    def close(self) -> None:
        """Stop every worker. One still warming up is told to stop and let finish (killing
        it while it writes numba's cache could leave the cache corrupt); a warm one, busy or
        idle, writes nothing and is killed (an interpreter with librosa loaded takes ~0.5 s
        to exit politely)."""
        for worker in self._pool:
            if worker.ready:
                worker.process.kill()
            else:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
        for worker in self._pool:
            worker.process.join(WARM_UP_TIMEOUT_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._pool = []

    def _start_worker(self) -> _Worker:
        parent_end, child_end = self._context.Pipe()
        inherited = [parent_end, *(w.conn for w in self._pool)] if self.start_method == "fork" else []
        process = self._context.Process(target=_serve, args=(child_end, self.limits, inherited), daemon=True,
                                        name="audio_features-worker")
        process.start()
        child_end.close()
        return _Worker(process, parent_end, started=time.monotonic())

    def _seconds_to_next_deadline(self) -> float:
        now = time.monotonic()
        deadlines = [w.started + self._limit_of(w) - now for w in self._pool if w.job is not None or not w.ready]
        return max(0.0, min(deadlines, default=1.0))

    def _limit_of(self, worker: _Worker) -> float:
        return self.limits.track_timeout_s if worker.ready else WARM_UP_TIMEOUT_SECONDS

    def _attend(self, worker: _Worker, record: Callable[[TrackOutcome], None]) -> _Worker:
        """Take the worker's messages; replace it if it died or ran out of time.

        A track in flight on a replaced worker is recorded as ``timeout`` or
        ``worker_crash``; a worker lost in its warm-up counts towards ``WorkerStartError``.
        """
        pipe_open = self._take_messages(worker, record)
        if pipe_open and worker.process.is_alive():
            if not self._overdue(worker):
                return worker
            worker.process.kill()
            worker.process.join()
            reason = REASON_TIMEOUT
            detail = (f"no result after {self.limits.track_timeout_s:g} s (limit --track-timeout), worker killed"
                      if worker.ready else f"warm-up took over {WARM_UP_TIMEOUT_SECONDS:g} s")
        else:
            reason, detail = REASON_WORKER_CRASH, _exit_detail(worker.process)
        worker.conn.close()
        if worker.job is not None:
            record(TrackOutcome(worker.job.track_id, reason=reason, detail=detail))
        elif not worker.ready:
            self._warm_up_failed(detail)
        return self._start_worker()

    def _take_messages(self, worker: _Worker, record: Callable[[TrackOutcome], None]) -> bool:
        """Handle what the worker sent; False once its end of the pipe is closed (it exited)."""
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                if message == _READY:
                    worker.ready, self._warm_up_failures = True, 0
                else:
                    record(message)
                    worker.job = None
        except (EOFError, OSError):
            return False
        return True

    def _overdue(self, worker: _Worker) -> bool:
        busy = worker.job is not None or not worker.ready
        return busy and time.monotonic() - worker.started > self._limit_of(worker)

    def _warm_up_failed(self, detail: str) -> None:
        self._warm_up_failures += 1
        if self._warm_up_failures >= MAX_WARM_UP_FAILURES:
            self.close()
            raise WorkerStartError(
                f"{self._warm_up_failures} extraction workers in a row died or hung in their warm-up "
                f"(last: {detail}); if numba's JIT cache is corrupt, delete "
                f"{os.environ.get('NUMBA_CACHE_DIR', 'NUMBA_CACHE_DIR')} and rerun"
            )


def _exit_detail(process) -> str:
    """How a worker ended, for a failure record (one that closed its pipe but lingers is killed)."""
    process.join(5)
    if process.is_alive():
        process.kill()
        process.join()
        return "worker process closed its pipe and did not exit; killed"
    code = process.exitcode
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"worker process killed by {signal.Signals(-code).name}"
    return f"worker process exited with code {code}"


def _finished_chunk_counts(index, jobs, *, out_dir):
    """``(n_extracted, n_failed)`` of a finished chunk for exactly ``jobs``, else None.

    A chunk file for other tracks (the plan changed) or with a track missing is not
    finished: it is recomputed, so a rerun never keeps a gap.
    """
    import pandas as pd

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

    ``failures`` holds ``(track_id, reason, detail)``. A track with neither a record nor
    a failure gets a ``missing_result`` failure. A track with two outcomes, or an outcome
    for a track not in ``jobs``, is a runner bug and raises ``RuntimeError`` before
    anything is written.
    """
    expected = [job.track_id for job in jobs]
    outcomes = [r["track_id"] for r in records] + [failure[0] for failure in failures]
    seen = set(outcomes)
    if len(seen) != len(outcomes) or not seen <= set(expected):
        raise RuntimeError(f"chunk outcomes {sorted(outcomes)} do not match its tracks {sorted(expected)}")
    for track_id in expected:
        if track_id not in seen:
            failures.append((track_id, REASON_MISSING_RESULT, "no record and no failure came back"))


def _write_chunk(index, records, failures, *, out_dir):
    import pandas as pd

    flat = [flat_feature_name(c) for c in feature_columns()]
    columns = ["track_id", *flat, *EXTRA_FEATURE_COLUMNS, EXTRACT_SECONDS_COLUMN]
    table = pd.DataFrame.from_records(sorted(records, key=lambda r: r["track_id"]), columns=columns)
    table = table.astype({"track_id": "int64", "sample_rate": "int64", "analysis_sample_rate": "int64"})
    failure_table = pd.DataFrame(sorted(failures), columns=list(FAILURE_COLUMNS)).astype({"track_id": "int64"})
    chunk_path(out_dir, index).parent.mkdir(parents=True, exist_ok=True)
    # Failures first: the Parquet file's presence is what marks the chunk finished.
    write_atomic(chunk_failures_path(out_dir, index), lambda tmp: failure_table.to_csv(tmp, index=False))
    write_atomic(chunk_path(out_dir, index), lambda tmp: table.to_parquet(tmp, index=False))
