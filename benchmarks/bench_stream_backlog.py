"""A backlog after an outage: the streaming job's driver memory and drain time, per batch bound.

    .venv/bin/python benchmarks/bench_stream_backlog.py [--events 50000] [--limits 5000,2000,0] \\
        [--listeners 300] [--tracks 2000]

Starts its own SecantusDB and Tansu on free ports with a private state folder (a running
stack is never touched), seeds a synthetic catalogue, and produces ``--events`` valid
events (``--listeners`` listeners over the last hour) to a fresh topic before any job
runs: the backlog an outage leaves. Then, for each bound in ``--limits`` (records per
micro-batch, ``FMA_STREAM_MAX_RECORDS_PER_BATCH``; 0 = no bound, the job's behaviour
before the bound existed), it runs the real job (``spark-submit --master local[2]``,
``infra.streaming.streaming_spec``) from the beginning of the topic into a fresh database
until every event is stored, and samples every 0.2 s the resident memory (RSS, psutil)
of the job's process tree: the JVM (the driver, and the executors in local mode), the
Python driver (the batch handler) and the Python workers. Peaks are per process kind;
the tree's peak is the largest sum at one sample (shared pages of forked workers count
once per process).

Prints one row per bound: batches, largest batch (records, from the job's own
``stream_metrics``), seconds to drain, events/s, peak RSS, and the ratio of each
bounded run's driver peaks to the unbounded run's.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_streaming_latency import private_stack, seed_catalogue  # noqa: E402  (the latency benchmark's)
from fma_platform.contracts import Collection  # noqa: E402
from fma_platform.events import new_event  # noqa: E402
from fma_platform.kafka import ensure_topics  # noqa: E402
from fma_platform.mongo import mongo_client  # noqa: E402
from fma_platform.producer import EventProducer  # noqa: E402
from fma_platform.stream_status import BATCH_KIND, INPUT_ROWS, KIND  # noqa: E402
from infra import process  # noqa: E402
from infra.streaming import streaming_spec  # noqa: E402

MIB = 1024 * 1024
SAMPLE_S = 0.2
KINDS = ("jvm", "python_driver", "python_workers")


def backlog(track_ids: np.ndarray, *, count: int, listeners: int, seed: int = 3) -> list:
    """``count`` valid events of ``listeners`` listeners spread over the last hour."""
    rng = np.random.default_rng(seed)
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    kinds = rng.choice(["play", "complete", "skip", "like", "progress"], count, p=[0.35, 0.3, 0.2, 0.05, 0.1])
    users = rng.integers(0, listeners, count)
    tracks = rng.choice(track_ids, count)
    listened = rng.uniform(1, 30, count)
    return [
        new_event(user_id=f"listener-{users[n]}", track_id=int(tracks[n]), type=str(kinds[n]),
                  position_s=float(listened[n]), listened_s=float(listened[n]), track_duration_s=30.0,
                  client_ts=start + timedelta(seconds=3600 * n / count), session_id=f"s-{users[n]}",
                  source="simulator")
        for n in range(count)
    ]


def produce(settings, topic: str, events: list) -> float:
    """Send ``events`` to ``topic`` and wait for every acknowledgement; seconds taken."""
    started = time.monotonic()
    with EventProducer(settings, topic=topic, max_buffered=len(events)) as producer:
        for item in events:
            producer.send(item)
        if not producer.flush(300):
            raise SystemExit(f"the broker took {producer.status().sent} of {len(events)} events")
    return time.monotonic() - started


def process_kind(proc: psutil.Process) -> str | None:
    """Which part of the job ``proc`` is (None for the launcher shells)."""
    try:
        command = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    if "java" in Path(proc.cmdline()[0]).name:
        return "jvm"
    if "streaming_recommendations.py" in command:
        return "python_driver"
    if "pyspark" in command:
        return "python_workers"
    return None


@dataclass
class RssPeaks:
    """Peak RSS (bytes) per process kind, and of the whole tree at one sample."""

    by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    tree: int = 0
    samples: int = 0

    def sample(self, root: psutil.Process) -> None:
        totals = dict.fromkeys(KINDS, 0)
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in processes:
            kind = process_kind(proc)
            if kind is None:
                continue
            try:
                totals[kind] += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        for kind, rss in totals.items():
            self.by_kind[kind] = max(self.by_kind[kind], rss)
        self.tree = max(self.tree, sum(totals.values()))
        self.samples += 1


def sample_until(root: psutil.Process, peaks: RssPeaks, stop: threading.Event) -> None:
    while not stop.is_set():
        peaks.sample(root)
        stop.wait(SAMPLE_S)


@dataclass
class DrainRun:
    limit: int
    seconds: float
    batches: list[int]  # records per batch
    peaks: RssPeaks
    batch_seconds: list[float]  # reading + processing, per batch
    step_seconds: dict[str, float]  # the batch steps' summed seconds (stream_metrics.step_seconds)
    startup_seconds: float  # spark-submit to the first batch's start


def batch_documents(db) -> list[dict]:
    """The job's ``stream_metrics`` documents of batches with records, in order."""
    return list(db[Collection.STREAM_METRICS].find({KIND: BATCH_KIND, INPUT_ROWS: {"$gt": 0}}).sort("batch_id", 1))


def batch_sizes(db) -> list[int]:
    """Records of each finished batch, in order."""
    return [batch[INPUT_ROWS] for batch in batch_documents(db)]


def drain(settings, *, topic: str, events: int, limit: int, tracks: int, timeout_s: float) -> DrainRun:
    """Run the job with ``limit`` records per batch until ``events`` are stored; what it took."""
    tag = uuid.uuid4().hex[:8]
    run_settings = settings.model_copy(update={"mongo_db": f"bench_backlog_{tag}",
                                               "stream_max_records_per_batch": limit})
    db = mongo_client(run_settings)[run_settings.mongo_db]
    seed_catalogue(db, tracks=tracks)
    spec = streaming_spec(run_settings, trigger_seconds=0.1, name=f"bench-backlog-{tag}",
                          extra_args=["--topic", topic, "--checkpoint", str(settings.state_dir / f"checkpoint-{tag}")])
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    peaks, stop = RssPeaks(), threading.Event()
    started, started_at = time.monotonic(), time.time()
    with spec.log_path.open("ab") as log:
        job = subprocess.Popen(spec.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               cwd=spec.cwd, env={**os.environ, **spec.env}, start_new_session=True)
    sampler = threading.Thread(target=sample_until, args=(psutil.Process(job.pid), peaks, stop), daemon=True)
    sampler.start()
    try:
        while sum(batch_sizes(db)) < events:  # each batch's document is its last write
            if job.poll() is not None:
                raise SystemExit(f"the job exited with {job.returncode}: {process.log_tail(spec.log_path)}")
            if time.monotonic() - started > timeout_s:
                raise SystemExit(f"not drained in {timeout_s:.0f} s: {process.log_tail(spec.log_path)}")
            time.sleep(0.5)
        seconds = time.monotonic() - started
    finally:
        stop.set()
        sampler.join(5)
        os.killpg(job.pid, signal.SIGTERM)
        try:
            job.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(10)
    documents = batch_documents(db)
    batches = [batch[INPUT_ROWS] for batch in documents]
    first_batch_at = min(batch["batch_time"] for batch in documents).timestamp()
    stored = db[Collection.LISTENING_EVENTS].count_documents({})
    mongo_client(run_settings).drop_database(run_settings.mongo_db)
    if stored != events or sum(batches) != events:
        raise SystemExit(f"bound {limit}: {stored} events stored, batches summed {sum(batches)}, {events} sent")
    return DrainRun(limit=limit, seconds=seconds, batches=batches, peaks=peaks,
                    batch_seconds=[(batch.get("collect_seconds") or 0) + batch["processing_seconds"]
                                   for batch in documents],
                    startup_seconds=first_batch_at - started_at,
                    step_seconds={step: round(sum(batch["step_seconds"].get(step, 0.0) for batch in documents), 1)
                                  for step in documents[0]["step_seconds"]})



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--limits", default="5000,2000,0", help="records per batch to compare (0: no bound)")
    parser.add_argument("--listeners", type=int, default=300)
    parser.add_argument("--tracks", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds one drain may take")
    args = parser.parse_args(argv)
    limits = [int(value) for value in args.limits.split(",")]

    runs = []
    with private_stack() as settings:
        topic = f"bench-backlog-{uuid.uuid4().hex[:8]}"
        ensure_topics(settings, {topic: settings.kafka_events_partitions})
        events = backlog(np.arange(1, args.tracks + 1), count=args.events, listeners=args.listeners)
        print(f"backlog: {len(events)} events of {args.listeners} listeners produced in "
              f"{produce(settings, topic, events):.1f} s to {topic} ({settings.kafka_events_partitions} partitions)",
              flush=True)
        for limit in limits:
            run = drain(settings, topic=topic, events=len(events), limit=limit, tracks=args.tracks,
                        timeout_s=args.timeout)
            runs.append(run)
            print(f"bound {limit or 'none'}: drained in {run.seconds:.1f} s ({run.startup_seconds:.1f} s to the "
                  f"first batch), {len(run.batches)} batches, largest {max(run.batches)}, seconds per batch "
                  f"{[round(seconds, 1) for seconds in run.batch_seconds]}", flush=True)
    print_report(runs, events=args.events)
    return 0


def print_report(runs: list[DrainRun], *, events: int) -> None:
    unbounded = next((run for run in runs if run.limit == 0), None)
    print()
    print(f"{events} events waiting when the job starts; peak RSS in MiB (sampled every {SAMPLE_S} s)")
    print(f"{'bound':>8} {'batches':>8} {'largest':>8} {'drain s':>8} {'batch s':>8} {'events/s':>9} {'JVM':>7} "
          f"{'py driver':>10} {'py workers':>11} {'tree':>7}  driver vs no bound")
    for run in runs:
        peaks = run.peaks.by_kind
        ratio = ""
        if unbounded is not None and run is not unbounded:
            ratio = (f"JVM x{peaks['jvm'] / unbounded.peaks.by_kind['jvm']:.2f}, "
                     f"py driver x{peaks['python_driver'] / unbounded.peaks.by_kind['python_driver']:.2f}, "
                     f"tree x{run.peaks.tree / unbounded.peaks.tree:.2f}")
        print(f"{run.limit or 'none':>8} {len(run.batches):8d} {max(run.batches):8d} {run.seconds:8.1f} "
              f"{max(run.batch_seconds):8.1f} {events / sum(run.batch_seconds):9.0f} {peaks['jvm'] / MIB:7.0f} {peaks['python_driver'] / MIB:10.0f} "
              f"{peaks['python_workers'] / MIB:11.0f} {run.peaks.tree / MIB:7.0f}  {ratio}")
    for run in runs:
        print(f"bound {run.limit or 'none'}: seconds per step over all batches {run.step_seconds}")
    print("drain s: from spark-submit to the last batch's end, Spark's start-up included; batch s: the longest "
          "batch (reading + processing); events/s: events over the batches' summed time")


if __name__ == "__main__":
    sys.exit(main())
