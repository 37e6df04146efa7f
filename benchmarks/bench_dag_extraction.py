"""Tracks per second through ``fma_etl``'s extraction stage vs the extractor's own rate.

    .venv/bin/python benchmarks/bench_dag_extraction.py [--sample-tracks 120] [--workers 2]
        [--chunk-size 0] [--repeats 2] [--tile N [--tiled-only]] [--no-corpus]
        [--airflow-overhead | --task-overhead-s S]

On the same clips, side by side:

- **extractor**: one in-process ``audio_features.extract.extract_tracks`` run over all the
  tracks (one pool of ``workers`` processes, started once);
- **DAG stage**: what ``fma_etl``'s extraction costs: ``pipeline.etl.plan_chunks``, then
  ``pipeline.etl.extract_chunk`` for each chunk, one after another (the DAG's
  ``extract_chunk`` has ``max_active_tis_per_dagrun=1``), exactly the calls the DAG's tasks
  make: each chunk runs the extractor's CLI in a fresh interpreter, so every per-chunk cost
  (interpreter, imports, worker start and warm-up, reading tracks.csv, writing the chunk)
  is paid. Airflow's own cost per task instance is added on top: measured with
  ``--airflow-overhead`` (below), else ``--task-overhead-s`` (default: the figure
  ``pipeline.chunking`` assumes). The stage pays it for ``plan_chunks``, ``chunks_of`` and
  each mapped ``extract_chunk``.

Why not ``airflow dags test fma_etl``: the DAG needs MongoDB and Spark and runs acquire,
catalogue, validate, transform and load around the extraction (minutes on this 2-core
machine that say nothing about extraction), and ``dags test`` runs every task inside one
process, so it would not show a real executor's per-task costs either. Those are measured
apart: ``--airflow-overhead`` runs ``airflow dags test`` (a subprocess: benchmarks never
import Airflow) on a throwaway DAG whose mapped no-op tasks stamp the time (the mean gap is
Airflow's in-process cost per mapped task), and times parsing ``dags/fma_etl.py`` in a
process that has Airflow's task runner imported (what a LocalExecutor task process, forked
from an executor worker, does before running its task); their
sum plus ``SCHEDULING_LATENCY_S`` (assumed) is the overhead used.

The default chunk size is ``pipeline.chunking.choose_chunk_size`` (the DAG param
``chunk_size=0``); the goal is a DAG-stage rate >= 80 % of the extractor's. Datasets: the
synthetic sample (``python -m fma_sample``, generated under the state folder's ``bench/``
and reused) and, when present, the real-music corpus
(``Settings().recorded_corpus_dir``); with ``--tile N``, also N copies of the last of them as
one dataset, big enough for the chosen chunk size to show. The projection for fma_large
uses the last dataset's per-track time (real music when the corpus ran), the chunk size
chosen for that many tracks and the measured per-chunk and per-task costs.

Numba's JIT cache (per user, shared by both sides) is warmed before timing by an untimed
one-track run, since every run after a machine's first finds it warm. The two sides run
alternately ``--repeats`` times and medians are compared, so a shared machine's changing
load does not favour one side; the load average is printed.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from audio_features.fma_schema import EXTRACT_SECONDS_COLUMN, FMA_LARGE_TRACKS
from fma_platform.settings import PROJECT_ROOT, Settings, get_settings
from pipeline import chunking
from pipeline.datasets import Dataset, resolve_dataset

GOAL = 0.80


@dataclass(frozen=True)
class Measured:
    """One dataset's numbers: medians over the repeats (seconds; per-track is per worker core)."""

    name: str
    n_tracks: int
    chunk_size: int
    n_chunks: int
    extractor_seconds: float
    stage_seconds: float  # the chunks' subprocess runs, without Airflow's per-task cost
    per_track_s: float  # extraction alone, mean over the DAG side's tracks (extract_seconds)
    extractor_fixed_s: float  # the extractor run's wall minus its tracks' time / workers
    chunk_fixed_s: float  # mean per chunk: wall minus its tracks' time / workers


def sample_dataset(settings: Settings, *, n_tracks: int, seed: int) -> Dataset:
    """The synthetic sample, generated once under the state folder's ``bench/`` and reused."""
    from fma_sample.sample import AUDIO_DIR, METADATA_DIR

    root = settings.state_dir / "bench" / f"sample-{n_tracks}-{seed}"
    subprocess.run([sys.executable, "-m", "fma_sample", "--out", str(root), "--tracks", str(n_tracks),
                    "--seed", str(seed), "--workers", "2"], check=True, cwd=PROJECT_ROOT)
    return Dataset("sample", root / METADATA_DIR, root / AUDIO_DIR, synthetic=True)


def corpus_dataset(settings: Settings) -> Dataset | None:
    from fma_sample.sample import AUDIO_DIR, METADATA_DIR

    root = settings.recorded_corpus_dir
    if not (root / METADATA_DIR / "tracks.csv").is_file():
        return None
    return resolve_dataset("local", settings=settings, metadata_dir=root / METADATA_DIR, audio_dir=root / AUDIO_DIR)


def tiled_dataset(dataset: Dataset, *, copies: int, root: Path) -> Dataset:
    """``copies`` of every track of ``dataset`` under new ids (audio symlinked, metadata
    repeated): enough tracks for the DAG's chosen chunk size to matter, without hours of
    synthesis. Broken files stay broken, missing ones missing."""
    import shutil

    import pandas as pd

    from audio_features.fma_schema import audio_path

    tracks = pd.read_csv(dataset.tracks_csv, index_col=0, header=[0, 1])
    step = 10 ** len(str(int(tracks.index.max())))
    frames = []
    for copy in range(copies):
        frame = tracks.copy()
        frame.index = tracks.index + copy * step
        frames.append(frame)
        for track_id in tracks.index:
            source = audio_path(dataset.audio_dir, int(track_id))
            if source.exists():
                link = audio_path(root / "audio", int(track_id) + copy * step)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(source.resolve())
    metadata = root / "metadata"
    metadata.mkdir(parents=True)
    pd.concat(frames).rename_axis("track_id").to_csv(metadata / "tracks.csv")
    shutil.copy(dataset.genres_csv, metadata / "genres.csv")
    return Dataset("local", metadata, root / "audio", synthetic=dataset.synthetic)


def measure(dataset: Dataset, *, name: str, workers: int, chunk_size: int, repeats: int) -> Measured:
    """Both sides on ``dataset``'s tracks, alternately ``repeats`` times, each run in fresh folders.

    ``chunk_size`` 0: the DAG's default, chosen by ``pipeline.etl.plan_chunks``. Alternating
    keeps a shared machine's changing load from favouring one side.
    """
    from audio_features.cli import read_track_durations
    from audio_features.extract import extract_tracks
    from pipeline import etl
    from pipeline.catalogue import read_catalogue

    track_ids = read_catalogue(dataset).track_ids
    durations = read_track_durations(dataset.tracks_csv)
    runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-dag-") as tmp:
        tmp = Path(tmp)
        # Warm numba's cache (untimed), as every run after a machine's first finds it.
        extract_tracks(track_ids[:1], audio_dir=dataset.audio_dir, out_dir=tmp / "warm", progress=False)
        for repeat in range(repeats):
            started = time.perf_counter()
            extract_tracks(track_ids, audio_dir=dataset.audio_dir, out_dir=tmp / f"extractor-{repeat}",
                           workers=workers, chunk_size=len(track_ids), track_durations=durations, progress=False)
            wall = time.perf_counter() - started
            work = _track_seconds(tmp / f"extractor-{repeat}")
            runs.setdefault("extractor", []).append(wall)
            runs.setdefault("extractor_fixed", []).append(wall - sum(work) / workers)

            settings = Settings(state_dir=tmp / f"state-{repeat}")
            started = time.perf_counter()
            plan = etl.plan_chunks(dataset.to_params(), track_ids, settings=settings, chunk_size=chunk_size,
                                   workers=workers)
            results = [etl.extract_chunk(chunk, settings=settings, run_id="bench", workers=workers)
                       for chunk in plan["chunks"]]
            runs.setdefault("stage", []).append(time.perf_counter() - started)
            chunk_work = [_track_seconds(Path(result["path"])) for result in results]
            runs.setdefault("chunk_fixed", []).append(statistics.mean(
                result["seconds"] - sum(work) / workers for result, work in zip(results, chunk_work)))
            runs.setdefault("per_track", []).append(statistics.mean(t for work in chunk_work for t in work))
    median = {key: statistics.median(values) for key, values in runs.items()}
    print(f"{name}: runs (s) extractor {[round(s, 1) for s in runs['extractor']]}, "
          f"DAG stage {[round(s, 1) for s in runs['stage']]}")
    return Measured(name, len(track_ids), plan["chunk_size"], len(plan["chunks"]), median["extractor"],
                    median["stage"], median["per_track"], median["extractor_fixed"], median["chunk_fixed"])


def _track_seconds(out_dir: Path) -> list[float]:
    """Each extracted track's own time (``extract_seconds``) in an output folder's chunks."""
    import pandas as pd

    frames = [pd.read_parquet(p, columns=[EXTRACT_SECONDS_COLUMN]) for p in out_dir.rglob("chunks/*.parquet")]
    return [float(t) for frame in frames for t in frame[EXTRACT_SECONDS_COLUMN]]


# -- Airflow's per-task cost ------------------------------------------------------------

OVERHEAD_DAG = '''
from airflow.sdk import dag, task

@dag(dag_id="bench_mapped_overhead", schedule=None, catchup=False, params={"n": 1, "stamps": ""})
def bench_mapped_overhead():
    @task
    def items(params=None):
        return list(range(int(params["n"])))

    @task
    def noop(item, params=None):
        import time

        with open(params["stamps"], "a") as stamps:
            stamps.write(f"{time.time()}\\n")
        return item

    noop.expand(item=items())

bench_mapped_overhead()
'''
# A LocalExecutor task runs in a process forked from an executor worker that has Airflow's
# task runner imported already; the task process then parses its DAG file. Timed so:
PARSE_SCRIPT = """
import runpy, time
import airflow.sdk.execution_time.task_runner
started = time.perf_counter()
runpy.run_path("dags/fma_etl.py")
print(time.perf_counter() - started)
"""
# What a task instance costs under a real scheduler and LocalExecutor beyond the two
# measured parts (the scheduler noticing the task is ready, queueing it, the executor
# starting its supervisor): assumed, not measured here (`dags test --use-executor`
# needs a running API server).
SCHEDULING_LATENCY_S = 1.0


def airflow_task_overhead(*, mapped: int = 12) -> float:
    """Seconds one more task instance adds to a run; see the module docstring.

    The throwaway DAG's mapped no-op tasks write a timestamp each: the mean gap between
    consecutive ones is the in-process cost of one mapped task instance (no start-up noise).
    """
    import json

    from infra.services import VENV_BIN, airflow_env

    with tempfile.TemporaryDirectory(prefix="bench-airflow-") as tmp:
        settings = Settings(state_dir=Path(tmp) / "state")
        dags = Path(tmp) / "dags"
        dags.mkdir()
        (dags / "bench_mapped_overhead.py").write_text(textwrap.dedent(OVERHEAD_DAG))
        env = {**os.environ, **airflow_env(settings), "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
        airflow = str(VENV_BIN / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        stamps = Path(tmp) / "stamps.txt"
        subprocess.run([airflow, "dags", "test", "bench_mapped_overhead", "--conf",
                        json.dumps({"n": mapped, "stamps": str(stamps)})], env=env, check=True, capture_output=True)
        times = sorted(float(line) for line in stamps.read_text().split())
        per_mapped_task = (times[-1] - times[0]) / (len(times) - 1)
        parsed = subprocess.run([sys.executable, "-c", PARSE_SCRIPT], env=env, cwd=PROJECT_ROOT, check=True,
                                capture_output=True, text=True)
        parse = float(parsed.stdout.split()[-1])
    total = per_mapped_task + parse + SCHEDULING_LATENCY_S
    print(f"airflow: one mapped task instance in `dags test` {per_mapped_task:.2f} s (mean gap over {len(times)}); "
          f"parsing dags/fma_etl.py in a task process {parse:.2f} s; + {SCHEDULING_LATENCY_S:g} s scheduling "
          f"(assumed) = {total:.2f} s per task")
    return total


WARM_UP_SCRIPT = """
from audio_features.extract import warm_worker
print(*warm_worker())
"""


def worker_warm_up() -> tuple[float, float]:
    """A fresh worker's warm-up, warm cache: seconds before the JIT-cache lock and holding it."""
    done = subprocess.run([sys.executable, "-c", WARM_UP_SCRIPT], cwd=PROJECT_ROOT, check=True,
                          capture_output=True, text=True)
    unlocked, locked = map(float, done.stdout.split()[-2:])
    return unlocked, locked


# -- report ---------------------------------------------------------------------------


def report(m: Measured, *, workers: int, task_overhead_s: float) -> float:
    tasks = 2 + m.n_chunks  # plan_chunks, chunks_of, the mapped extract_chunk tasks
    with_airflow = m.stage_seconds + tasks * task_overhead_s
    ours, stage, dag = (m.n_tracks / s for s in (m.extractor_seconds, m.stage_seconds, with_airflow))
    print(f"\n{m.name}: {m.n_tracks} tracks, {workers} workers, chunk size {m.chunk_size} -> {m.n_chunks} chunk(s)")
    print(f"  extractor, one extract_tracks run : {m.extractor_seconds:7.1f} s  {ours:6.2f} tracks/s")
    print(f"  DAG stage, chunk subprocesses     : {m.stage_seconds:7.1f} s  {stage:6.2f} tracks/s  "
          f"({stage / ours:.0%} of the extractor)")
    print(f"  DAG stage + Airflow, {tasks} tasks x {task_overhead_s:.1f} s: {with_airflow:7.1f} s  {dag:6.2f} tracks/s  "
          f"({dag / ours:.0%} of the extractor; goal {GOAL:.0%})")
    print(f"  per track {m.per_track_s * 1000:.0f} ms/core; fixed cost: extractor run {m.extractor_fixed_s:.1f} s, "
          f"each chunk (CLI) {m.chunk_fixed_s:.1f} s")
    return dag / ours


def project(m: Measured, *, workers: int, task_overhead_s: float, locked_warm_up_s: float) -> None:
    """fma_large's extraction stage on 2 and 16 cores (workers = cores, chunks in sequence).

    A task's fixed cost is the measured one, plus the wait of more workers for the
    JIT-cache lock: worker k starts k locked warm-ups late, so W workers lose
    ``locked * (W - 1) / 2`` of wall time against the measured ``workers``.
    """
    print(f"\nfma_large projection ({FMA_LARGE_TRACKS:,} tracks) from '{m.name}': {m.per_track_s * 1000:.0f} ms/track/core, "
          f"{m.chunk_fixed_s:.1f} s per chunk with {workers} workers (+{locked_warm_up_s:.1f} s locked warm-up per "
          f"extra worker / 2) + {task_overhead_s:.1f} s per Airflow task")
    for cores in (2, 16):
        fixed = m.chunk_fixed_s + locked_warm_up_s * max(0, cores - workers) / 2 + task_overhead_s
        size = chunking.choose_chunk_size(FMA_LARGE_TRACKS, workers=cores, fixed_cost_s=fixed,
                                          per_track_s=m.per_track_s)
        n_chunks = math.ceil(FMA_LARGE_TRACKS / size)
        work = FMA_LARGE_TRACKS * m.per_track_s / cores
        total = work + n_chunks * fixed + 2 * task_overhead_s
        timeout = chunking.chunk_timeout_s(size, workers=cores, fixed_cost_s=fixed, per_track_s=m.per_track_s)
        print(f"  {cores:2d} cores: chunk size {size} -> {n_chunks} chunks of {fixed:.1f} s fixed; {total / 3600:5.2f} h "
              f"({work / 3600:.2f} h extracting + {(total - work) / 3600:.2f} h per-chunk/task costs, "
              f"{work / total:.0%} useful); {FMA_LARGE_TRACKS / total:.1f} tracks/s; "
              f"execution_timeout per chunk {timeout / 60:.0f} min")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-tracks", type=int, default=120, help="synthetic sample size (default 120)")
    parser.add_argument("--seed", type=int, default=7, help="synthetic sample seed (default 7)")
    parser.add_argument("--workers", type=int, default=get_settings().extract_workers,
                        help="processes per extraction task (default: the setting, as the DAG)")
    parser.add_argument("--chunk-size", type=int, default=0, help="tracks per chunk (0: chosen, as the DAG)")
    parser.add_argument("--no-corpus", action="store_true", help="skip the real-music corpus even if present")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of both sides (default 2)")
    parser.add_argument("--tile", type=int, default=0, metavar="N",
                        help="also measure N copies of the corpus (or sample) as one dataset (default: no)")
    parser.add_argument("--tiled-only", action="store_true", help="with --tile: measure only the tiled dataset")
    overhead = parser.add_mutually_exclusive_group()
    overhead.add_argument("--airflow-overhead", action="store_true", help="measure Airflow's per-task cost")
    overhead.add_argument("--task-overhead-s", type=float, default=chunking.AIRFLOW_TASK_OVERHEAD_S,
                          help=f"Airflow's per-task cost to assume (default {chunking.AIRFLOW_TASK_OVERHEAD_S:g})")
    args = parser.parse_args(argv)

    settings = get_settings()
    task_overhead_s = airflow_task_overhead() if args.airflow_overhead else args.task_overhead_s
    datasets = [("synthetic sample", sample_dataset(settings, n_tracks=args.sample_tracks, seed=args.seed))]
    corpus = None if args.no_corpus else corpus_dataset(settings)
    if corpus is not None:
        datasets.append(("recorded corpus", corpus))
    else:
        print(f"(no real-music corpus at {settings.recorded_corpus_dir}: build it with `python -m fma_sample recorded`)")
    print(f"load average {os.getloadavg()[0]:.2f}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-tiled-") as tiles:
        if args.tile:
            name, dataset = datasets[-1]
            datasets.append((f"{name} x {args.tile}", tiled_dataset(dataset, copies=args.tile, root=Path(tiles))))
            if args.tiled_only:
                datasets = datasets[-1:]
        for name, dataset in datasets:
            measured = measure(dataset, name=name, workers=args.workers, chunk_size=args.chunk_size,
                               repeats=args.repeats)
            results.append(measured)
            report(measured, workers=args.workers, task_overhead_s=task_overhead_s)
    unlocked, locked = worker_warm_up()
    print(f"\nworker warm-up, warm cache: {unlocked:.2f} s of imports outside the JIT-cache lock, {locked:.2f} s "
          f"holding it")
    project(results[-1], workers=args.workers, task_overhead_s=task_overhead_s, locked_warm_up_s=locked)
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
