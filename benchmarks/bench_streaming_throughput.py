"""Sustained throughput of the real-time loop, driver-side vs executor-side processing.

    .venv/bin/python benchmarks/bench_streaming_throughput.py [--configs driver:mongo,executors:mongo,...] \\
        [--rates 200,400,800,1200,1600,2400,3200] [--step-seconds 15] [--listeners 5000] [--tracks 2000] \\
        [--master local[2]] [--cluster-workers 1,2]

Starts its own SecantusDB and Tansu on free ports with a private state folder (a running
stack is never touched). For each configuration ``EXECUTION:SINK`` (``stream_execution``
driver|executors, ``stream_sink`` mongo|count: the counting sink writes no data, so its
runs show the job's own ceiling apart from the embedded MongoDB) it seeds a synthetic
catalogue into a fresh database, starts the real job with ``spark-submit`` (trigger 0.1 s,
the default batch bound) on a fresh topic, warms it up, then sends events of
``--listeners`` distinct listeners at each rate of ``--rates`` in turn for
``--step-seconds`` through ``EventProducer``, waiting after each step until every record is
processed. It stops stepping at the first rate that is not sustained.

Latency of an event = when the job wrote its listener's recommendations (or, with the
counting sink, when it would have) minus the event's Kafka timestamp (the producer's send
time): the job's ``stream_metrics`` batch documents carry a histogram of them
(``latency_histogram``, 50 ms buckets), summed here over a step's batches. A rate is
sustained when the step's p95 is <= ``--max-p95`` (1 s) and the records left when the
sending stops are processed within 3 s.

``--cluster-workers 1,2`` runs every configuration on a Spark standalone cluster of that
many workers with one core each (``infra.spark_cluster.standalone_cluster``) instead of
``--master``, and prints the ratio of the highest sustained rates.

The machine is shared: the load average (1 min) is printed at the start and end of every step.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_streaming_latency import private_stack, seed_catalogue  # noqa: E402  (the latency benchmark's)
from fma_platform.contracts import Collection  # noqa: E402
from fma_platform.events import new_event  # noqa: E402
from fma_platform.kafka import ensure_topics  # noqa: E402
from fma_platform.mongo import mongo_client  # noqa: E402
from fma_platform.producer import EventProducer  # noqa: E402
from fma_platform.stream_status import BATCH_KIND, INPUT_ROWS, KIND  # noqa: E402
from infra import process  # noqa: E402
from infra.process import ServiceSpec  # noqa: E402
from infra.streaming import streaming_command, streaming_spec  # noqa: E402

KINDS = ("play", "complete", "skip", "like", "progress")
KIND_P = (0.35, 0.3, 0.2, 0.05, 0.1)
DRAIN_LIMIT_S = 3.0
WARMUP_EVENTS = 600


@dataclass
class Step:
    rate: float
    achieved: float
    events: int
    backlog: int  # records not yet processed when the sending stopped
    drain_s: float
    p50: float
    p95: float
    batches: int
    rows_per_batch: float
    step_ms: dict[str, float]  # median ms per batch of each step the job times
    load: tuple[float, float]  # 1-min load average at the start and end
    max_p95: float

    @property
    def sustained(self) -> bool:
        return self.p95 <= self.max_p95 and self.drain_s <= DRAIN_LIMIT_S


@dataclass
class ConfigRun:
    label: str
    steps: list[Step] = field(default_factory=list)
    startup_s: float = 0.0

    @property
    def best(self) -> Step | None:
        sustained = [step for step in self.steps if step.sustained]
        return max(sustained, key=lambda step: step.achieved) if sustained else None


def make_events(track_ids: np.ndarray, *, count: int, listeners: int, rng) -> list:
    """``count`` valid events of listeners drawn uniformly from ``listeners`` (client time: now)."""
    now = datetime.now(timezone.utc)
    users = rng.integers(0, listeners, count)
    tracks = rng.choice(track_ids, count)
    kinds = rng.choice(KINDS, count, p=KIND_P)
    listened = rng.uniform(1, 30, count)
    return [new_event(user_id=f"listener-{users[n]}", track_id=int(tracks[n]), type=str(kinds[n]),
                      position_s=float(listened[n]), listened_s=float(listened[n]), track_duration_s=30.0,
                      client_ts=now, session_id=f"s-{users[n]}", source="simulator") for n in range(count)]


def send_at_rate(producer: EventProducer, events: list, *, rate: float) -> float:
    """Send ``events`` at ``rate`` per second (in bursts of 10 ms); the achieved rate."""
    started = time.monotonic()
    for index, item in enumerate(events):
        if index % max(int(rate / 100), 1) == 0:
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        producer.send(item)
    return len(events) / (time.monotonic() - started)


def batch_documents(db, since: datetime | None = None) -> list[dict]:
    query = {KIND: BATCH_KIND, INPUT_ROWS: {"$gt": 0}}
    if since is not None:
        query["batch_time"] = {"$gte": since}
    return list(db[Collection.STREAM_METRICS].find(query).sort("batch_id", 1))


def processed(db) -> int:
    """Records the job finished (a batch's metrics document is its last write)."""
    result = list(db[Collection.STREAM_METRICS].aggregate([
        {"$match": {KIND: BATCH_KIND}}, {"$group": {"_id": None, "rows": {"$sum": f"${INPUT_ROWS}"}}}]))
    return int(result[0]["rows"]) if result else 0


def wait_processed(db, total: int, *, timeout_s: float) -> float:
    started = time.monotonic()
    while processed(db) < total:
        if time.monotonic() - started > timeout_s:
            return float("inf")
        time.sleep(0.1)
    return time.monotonic() - started


def histogram_percentiles(documents: list[dict]) -> tuple[float, float]:
    """p50 and p95 (upper bucket edges) of the latencies summed over the batches' histograms."""
    counts: dict[int, int] = {}
    bucket_s = 0.05
    for document in documents:
        histogram = document.get("latency_histogram") or {}
        bucket_s = histogram.get("bucket_s", bucket_s)
        for bucket, count in zip(histogram.get("buckets", []), histogram.get("counts", [])):
            counts[bucket] = counts.get(bucket, 0) + count
    if not counts:
        return float("nan"), float("nan")
    buckets = np.array(sorted(counts))
    cumulative = np.cumsum([counts[b] for b in buckets]) / sum(counts.values())
    return tuple(float((buckets[np.searchsorted(cumulative, q)] + 1) * bucket_s) for q in (0.5, 0.95))


def step_medians(documents: list[dict]) -> dict[str, float]:
    steps = pd.DataFrame([document.get("step_seconds") or {} for document in documents])
    return {name: round(float(steps[name].median()) * 1000, 1) for name in steps.columns}


def job_spec(settings, *, name: str, topic: str, checkpoint: Path, master: str | None) -> ServiceSpec:
    spec = streaming_spec(settings, trigger_seconds=0.1, name=name,
                          extra_args=["--topic", topic, "--checkpoint", str(checkpoint)])
    if master is None:
        return spec
    return replace(spec, command=streaming_command(settings, trigger_seconds=0.1, master=master,
                                                   extra_args=["--topic", topic, "--checkpoint", str(checkpoint)]))


def run_config(settings, label: str, *, rates: list[float], args, master: str | None) -> ConfigRun:
    execution, sink = label.split(":")
    tag = uuid.uuid4().hex[:8]
    run_settings = settings.model_copy(update={"mongo_db": f"bench_throughput_{tag}", "stream_execution": execution,
                                               "stream_sink": sink})
    db = mongo_client(run_settings)[run_settings.mongo_db]
    catalogue = seed_catalogue(db, tracks=args.tracks)
    topic = f"bench-throughput-{tag}"
    ensure_topics(run_settings, {topic: run_settings.kafka_events_partitions})
    spec = job_spec(run_settings, name=f"bench-throughput-{tag}", topic=topic,
                    checkpoint=settings.state_dir / f"checkpoint-{tag}", master=master)
    rng = np.random.default_rng(7)
    track_ids = catalogue["track_id"].to_numpy()
    run = ConfigRun(label=label if master is None else f"{label} @ {master}")
    producer = EventProducer(run_settings, topic=topic, max_buffered=200_000)
    sent = 0
    try:
        started = time.monotonic()
        process.start(spec)
        run.startup_s = time.monotonic() - started
        warmup = make_events(track_ids, count=WARMUP_EVENTS, listeners=args.listeners, rng=rng)
        send_at_rate(producer, warmup, rate=200)
        producer.flush(60)
        sent += len(warmup)
        wait_processed(db, sent, timeout_s=180)
        for rate in rates:
            events = make_events(track_ids, count=int(rate * args.step_seconds), listeners=args.listeners, rng=rng)
            load_start = os.getloadavg()[0]
            since = datetime.now(timezone.utc)
            achieved = send_at_rate(producer, events, rate=rate)
            producer.flush(60)
            sent += len(events)
            backlog = sent - processed(db)
            drain = wait_processed(db, sent, timeout_s=max(60.0, 4 * args.step_seconds))
            documents = batch_documents(db, since)
            p50, p95 = histogram_percentiles(documents)
            step = Step(rate=rate, achieved=achieved, events=len(events), backlog=backlog, drain_s=drain, p50=p50,
                        p95=p95, batches=len(documents),
                        rows_per_batch=float(np.mean([d[INPUT_ROWS] for d in documents])) if documents else 0.0,
                        step_ms=step_medians(documents), load=(load_start, os.getloadavg()[0]), max_p95=args.max_p95)
            run.steps.append(step)
            print(f"  {run.label} {rate:g}/s: achieved {achieved:.0f}, p50 {p50:.2f} s, p95 {p95:.2f} s, backlog "
                  f"{backlog}, drain {drain:.1f} s, {step.batches} batches of {step.rows_per_batch:.0f} rows, load "
                  f"{step.load[0]:.1f}->{step.load[1]:.1f} {'ok' if step.sustained else 'NOT sustained'}", flush=True)
            if not step.sustained or drain == float("inf"):
                break
    finally:
        producer.close()
        process.stop(spec)
        mongo_client(run_settings).drop_database(run_settings.mongo_db)
    return run


def print_report(runs: list[ConfigRun], args) -> None:
    print()
    print(f"{args.listeners} distinct listeners, {args.tracks} tracks, {args.step_seconds:g} s per rate, "
          f"sustained: p95 <= {args.max_p95:g} s and drained within {DRAIN_LIMIT_S:g} s")
    print(f"{'configuration':>34} {'rate':>6} {'achieved':>9} {'p50 s':>6} {'p95 s':>6} {'backlog':>8} "
          f"{'drain s':>8} {'rows/batch':>10} {'load':>10}  sustained")
    for run in runs:
        for step in run.steps:
            print(f"{run.label:>34} {step.rate:6g} {step.achieved:9.0f} {step.p50:6.2f} {step.p95:6.2f} "
                  f"{step.backlog:8d} {step.drain_s:8.1f} {step.rows_per_batch:10.0f} "
                  f"{step.load[0]:4.1f}->{step.load[1]:4.1f}  {'yes' if step.sustained else 'no'}")
    print()
    for run in runs:
        best = run.best
        print(f"{run.label}: highest sustained rate "
              f"{'none' if best is None else f'{best.achieved:.0f} events/s (p95 {best.p95:.2f} s)'}; "
              f"job start {run.startup_s:.0f} s")
        if best is not None:
            print(f"    median ms per batch at that rate: {best.step_ms}")
        elif run.steps:
            print(f"    median ms per batch at {run.steps[0].rate:g}/s: {run.steps[0].step_ms}")


def cluster_ratio(runs: list[ConfigRun], workers: list[int]) -> None:
    """Highest sustained rate of each configuration on N workers relative to 1 worker."""
    by_label: dict[str, dict[int, float]] = {}
    for run in runs:
        label, _, n = run.label.rpartition(" @ workers=")
        best = run.best
        by_label.setdefault(label, {})[int(n)] = 0.0 if best is None else best.achieved
    print()
    for label, rates in by_label.items():
        base = rates.get(1)
        ratios = ", ".join(f"{n} workers {rate:.0f}/s (x{rate / base:.2f})" for n, rate in sorted(rates.items())
                           if base)
        print(f"{label}: {ratios or rates}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="driver:mongo,executors:mongo,driver:count,executors:count")
    parser.add_argument("--rates", default="200,400,800,1200,1600,2400,3200")
    parser.add_argument("--step-seconds", type=float, default=15.0)
    parser.add_argument("--listeners", type=int, default=5000)
    parser.add_argument("--tracks", type=int, default=2000)
    parser.add_argument("--max-p95", type=float, default=1.0)
    parser.add_argument("--master", default=None, help="Spark master of the job (default local[2])")
    parser.add_argument("--cluster-workers", default="", help="e.g. 1,2: a standalone cluster per count, one core each")
    args = parser.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    workers = [int(n) for n in args.cluster_workers.split(",") if n.strip()]

    runs: list[ConfigRun] = []
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with private_stack() as settings:
        state = settings.state_dir
        for count in workers or [None]:
            if count is None:
                context = nullcontext(None)
            else:
                from infra.spark_cluster import standalone_cluster  # issue 13's cluster helper

                context = standalone_cluster(workers=count, cores_per_worker=1, memory="1g",
                                             state_dir=state / f"cluster-{count}")
            with context as cluster:
                master = args.master if cluster is None else cluster.master_url
                for label in configs:
                    run = run_config(settings, label, rates=rates, args=args, master=master)
                    if cluster is not None:
                        run.label = f"{label} @ workers={count}"
                    runs.append(run)
    print(f"load average at the end: {os.getloadavg()}")
    print_report(runs, args)
    if workers:
        cluster_ratio(runs, workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
