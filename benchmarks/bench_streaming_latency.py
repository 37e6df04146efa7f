"""End-to-end latency of the real-time loop: event produced -> recommendations in MongoDB.

    .venv/bin/python benchmarks/bench_streaming_latency.py [--rate 100] [--duration 60] \\
        [--step-rates 200,400,800] [--step-seconds 20] [--trigger-seconds 0.1] [--tracks 2000] \
        [--execution executors|driver|executors,driver] [--private-stack]

``--execution`` chooses where the job's per-listener work runs (``stream_execution``:
executors or driver; default: the setting); ``executors,driver`` runs both, one after
the other on the same servers, and prints them side by side with the p95 ratio. Runs against the embedded broker and MongoDB named
by the settings (start them first, e.g. ``make up``), in a private database and topic that are removed afterwards. Starts
the job with ``spark-submit --master local[2]`` (``infra.streaming.streaming_spec``),
seeds a synthetic catalogue (clustered unit embeddings), and drives it with simulated
listeners (``simulator.simulate``), their events re-stamped to the moment of sending
and sent in simulated-time order at a fixed rate through ``EventProducer``.

Latency of an event = the ``updated_at`` of the first ``realtime_recommendations``
document of its listener triggered by it or a later event, minus the moment it was
handed to the producer (so producer buffering counts); the job stamps ``updated_at``
just before its write. A poller matches the changed documents every 200 ms (the
latency comes from ``updated_at``, not from the poll). The step-up phase reports, per
rate, the backlog left when the sending stops and how long it takes to drain: a rate
is sustained when the backlog stays under two seconds of events and drains within 5 s.

Player-side reads, timed while events flow, in a separate process (as the Streamlit
server is; in this process the poller and the producer would share the GIL with the
timer): ``dashboards.data.current_recommendations`` (one ``find_one`` by the unique
``user_id`` index, projected to the items) and the whole ``dashboards.data.up_next``
(that read plus the tracks of the items).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import threading
import time
import uuid
from collections import defaultdict, deque
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fma_platform.catalogue import ensure_catalogue_indexes  # noqa: E402
from fma_platform.contracts import Collection  # noqa: E402
from fma_platform.events import validate_event  # noqa: E402
from fma_platform.kafka import admin_client, ensure_topics  # noqa: E402
from fma_platform.mongo import mongo_client  # noqa: E402
from fma_platform.producer import EventProducer  # noqa: E402
from fma_platform.settings import get_settings  # noqa: E402
from fma_platform.stream_status import BATCH_KIND, INPUT_ROWS, KIND, QUERY_NAME  # noqa: E402
from infra import process  # noqa: E402
from infra.streaming import streaming_health, streaming_spec  # noqa: E402
from simulator import simulate  # noqa: E402
from spark_jobs.streaming.job import DEFAULT_TRIGGER_S  # noqa: E402

GENRES = 16
DIMENSIONS = 32
POLL_LOOKBACK = timedelta(seconds=15)


def seed_catalogue(db, *, tracks: int, seed: int = 11) -> pd.DataFrame:
    """``tracks`` synthetic tracks in ``GENRES`` genres; embeddings clustered by genre."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(GENRES, DIMENSIONS))
    genre = rng.integers(0, GENRES, tracks)
    vectors = centres[genre] + rng.normal(0, 0.6, (tracks, DIMENSIONS))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1, tracks + 1)
    listens = rng.pareto(1.2, tracks) * 100
    catalogue = pd.DataFrame({
        "track_id": ids, "title": [f"Bench track {i}" for i in ids], "artist_name": "bench",
        "top_genre_id": genre + 1, "top_genre_title": [f"Genre {g + 1}" for g in genre],
        "listens": listens.astype(int), "favorites": (listens / 20).astype(int), "interest": 0, "duration": 30.0,
    })
    db[Collection.TRACKS].insert_many(catalogue.to_dict("records"))
    db[Collection.TRACK_FEATURES].insert_many(
        [{"track_id": int(i), "embedding": v.tolist(), "model_version": "bench"} for i, v in zip(ids, vectors)]
    )
    return catalogue.assign(embedding=list(vectors))


@contextmanager
def private_stack():
    """Settings of a private SecantusDB and Tansu on free ports, started here and stopped (and
    their state folder removed) on exit: a running stack is never touched."""
    import shutil
    import tempfile

    from infra.process import free_port
    from infra.services import kafka_spec, mongo_spec

    state = Path(tempfile.mkdtemp(prefix="fma-bench-stream-"))
    settings = get_settings().model_copy(update={
        "state_dir": state, "mongo_port": free_port(), "kafka_port": free_port(), "mongo_uri": "",
        "kafka_bootstrap_servers": "",
    })
    services = [mongo_spec(settings), kafka_spec(settings)]
    try:
        for spec in services:
            process.start(spec)
        yield settings
    finally:
        for spec in reversed(services):
            process.stop(spec)
        shutil.rmtree(state, ignore_errors=True)


def simulated_events(catalogue: pd.DataFrame, *, count: int, listeners: int) -> list:
    """``count`` simulator events in simulated-time order (listeners interleave like real ones)."""
    result = simulate(catalogue, n_listeners=listeners, target_events=int(count * 1.1), seed=5,
                      start=datetime(2024, 1, 1, tzinfo=timezone.utc), days=3)
    events = sorted(result.events(), key=lambda e: e.client_ts)
    if len(events) < count:
        raise SystemExit(f"the simulator made {len(events)} events, {count} needed")
    return events[:count]


class LatencyTracker:
    """Sent events per listener, matched to the recommendation documents the job writes."""

    def __init__(self, db) -> None:
        self.collection = db[Collection.REALTIME_RECOMMENDATIONS]
        self.pending: dict[str, deque] = defaultdict(deque)  # user -> (event_id, sent_at, phase)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.answered = defaultdict(int)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.since = datetime.now(timezone.utc)

    def sent(self, user_id: str, event_id: str, sent_at: float, phase: str) -> None:
        with self.lock:
            self.pending[user_id].append((event_id, sent_at, phase))

    def poll_forever(self) -> None:
        while not self.stop.is_set():
            # Parallel tasks stamp ``updated_at`` before their writes land, so a write may become
            # visible after a later stamp was seen: look back POLL_LOOKBACK (answers are
            # idempotent: a trigger no longer pending is ignored).
            since = self.since - POLL_LOOKBACK
            for document in self.collection.find({"updated_at": {"$gte": since}},
                                                  {"_id": 0, "user_id": 1, "triggered_by": 1, "updated_at": 1}):
                self.since = max(self.since, document["updated_at"])
                self._answer(document["user_id"], document["triggered_by"], document["updated_at"].timestamp())
            time.sleep(0.2)

    def _answer(self, user_id: str, trigger: str, written_at: float) -> None:
        with self.lock:
            queue = self.pending.get(user_id)
            if not queue or trigger not in {event_id for event_id, _, _ in queue}:
                return
            while queue:
                event_id, sent_at, phase = queue.popleft()
                self.latencies[phase].append(written_at - sent_at)
                self.answered[phase] += 1
                if event_id == trigger:
                    break

    def unanswered(self) -> int:
        with self.lock:
            return sum(len(queue) for queue in self.pending.values())


def send_at_rate(producer, tracker, events, *, rate: float, phase: str) -> float:
    """Send ``events`` re-stamped to now, ``rate`` per second; the achieved rate."""
    started = time.monotonic()
    for index, event in enumerate(events):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        fresh = validate_event(event.model_copy(update={"client_ts": datetime.now(timezone.utc)}))
        tracker.sent(fresh.user_id, fresh.event_id, time.time(), phase)
        producer.send(fresh)
    return len(events) / (time.monotonic() - started)


def time_reads(settings, user_ids: list[str], *, reads: int, stop_after_s: float) -> dict[str, list[float]]:
    """Seconds per player read of one listener's recommendations, and per whole Up next
    (the app's functions and client factory; reads spread over ``stop_after_s``)."""
    from dashboards.data import current_recommendations, up_next
    from fma_platform.mongo import platform_db

    db = platform_db(settings, timeout_ms=4000)
    rng = np.random.default_rng(3)
    timings: dict[str, list[float]] = {"read": [], "up_next": []}
    pause = stop_after_s / reads
    for _ in range(reads):
        user = user_ids[int(rng.integers(len(user_ids)))]
        started = time.perf_counter()
        current_recommendations(db, user)
        timings["read"].append(time.perf_counter() - started)
        started = time.perf_counter()
        up_next(db, user_id=user, genres=[])
        timings["up_next"].append(time.perf_counter() - started)
        time.sleep(pause)
    return timings


def _time_reads_into(queue, settings, user_ids, reads, stop_after_s) -> None:
    queue.put(time_reads(settings, user_ids, reads=reads, stop_after_s=stop_after_s))


def start_read_timer(settings, user_ids: list[str], *, reads: int, stop_after_s: float):
    """``time_reads`` in a fresh process; call the returned function for its result."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_time_reads_into, args=(queue, settings, user_ids, reads, stop_after_s))
    child.start()

    def result() -> dict[str, list[float]]:
        timings = queue.get(timeout=stop_after_s + 120)
        child.join(10)
        return timings

    return result


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (float("nan"),) * 3
    return tuple(float(np.percentile(values, q)) for q in (50, 95, 99))


def wait_drained(tracker: LatencyTracker, *, timeout_s: float) -> float:
    started = time.monotonic()
    while tracker.unanswered() and time.monotonic() - started < timeout_s:
        time.sleep(0.1)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="events per second of the main phase")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the main phase")
    parser.add_argument("--step-rates", default="200,400,800", help="rates of the step-up phase ('' to skip)")
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument("--trigger-seconds", type=float, default=DEFAULT_TRIGGER_S)
    parser.add_argument("--tracks", type=int, default=2000)
    parser.add_argument("--listeners", type=int, default=300)
    parser.add_argument("--reads", type=int, default=500, help="player-side reads timed during the main phase")
    parser.add_argument("--private-stack", action="store_true",
                        help="start a private MongoDB and Kafka on free ports instead of using the running stack")
    parser.add_argument("--execution", default=None,
                        help="where the per-listener work runs: executors, driver, or both in one run "
                             "('executors,driver': one after the other on the same servers; default: the "
                             "setting stream_execution)")
    args = parser.parse_args(argv)
    executions = [e.strip() for e in (args.execution or "").split(",") if e.strip()] or [None]
    if any(e not in (None, "executors", "driver") for e in executions):
        parser.error(f"--execution: executors and/or driver, got {args.execution!r}")
    results = {}
    with private_stack() if args.private_stack else nullcontext(get_settings()) as base:
        for execution in executions:
            results[execution or "default"] = run(argparse.Namespace(**{**vars(args), "execution": execution}), base)
    if len(results) > 1:
        print(f"\nside by side (same servers, one after the other), load average {os.getloadavg()}")
        for name, rows in results.items():
            _, achieved, _, p50, p95, p99, backlog, drain = rows[0]
            print(f"{name:>10}: main phase {achieved:.0f} ev/s, p50 {p50:.3f} s, p95 {p95:.3f} s, p99 {p99:.3f} s, "
                  f"backlog {backlog}, drain {drain:.1f} s")
        if {"executors", "driver"} <= results.keys():
            print(f"p95 executors / driver: {results['executors'][0][4] / results['driver'][0][4]:.2f}")
    return 0


def run(args, base) -> list[tuple]:
    """The benchmark of one execution against the servers of ``base`` (the module doc); its rows."""
    step_rates = [float(r) for r in args.step_rates.split(",") if r.strip()]
    tag = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={"mongo_db": f"bench_streaming_{tag}",
                                       "state_dir": base.state_dir / "bench" / tag,
                                       "stream_execution": args.execution or base.stream_execution})
    topic = f"bench-streaming-{tag}"
    ensure_topics(settings, {topic: settings.kafka_events_partitions})
    client = mongo_client(settings)
    db = client[settings.mongo_db]
    spec = streaming_spec(settings, trigger_seconds=args.trigger_seconds, name=f"bench-streaming-{tag}",
                          extra_args=["--topic", topic, "--checkpoint", str(settings.state_dir / "checkpoint")])
    total = int(args.rate * args.duration) + sum(int(r * args.step_seconds) for r in step_rates) + 200
    print(f"seeding {args.tracks} tracks; simulating {total} events ...", flush=True)
    catalogue = seed_catalogue(db, tracks=args.tracks)
    ensure_catalogue_indexes(db)  # as the ETL leaves them: the player joins items with tracks by track_id
    events = simulated_events(catalogue, count=total, listeners=args.listeners)
    producer = EventProducer(settings, topic=topic, max_buffered=50_000)
    tracker = LatencyTracker(db)
    poller = threading.Thread(target=tracker.poll_forever, daemon=True)
    rows = []
    try:
        started = time.monotonic()
        process.start(spec)
        print(f"job healthy after {time.monotonic() - started:.1f} s (spark-submit, log {spec.log_path})", flush=True)
        poller.start()
        cursor = 200
        send_at_rate(producer, tracker, events[:cursor], rate=50, phase="warmup")
        print(f"warm-up drained in {wait_drained(tracker, timeout_s=120):.1f} s", flush=True)

        main_events = events[cursor:cursor + int(args.rate * args.duration)]
        cursor += len(main_events)
        readers = sorted(db[Collection.REALTIME_RECOMMENDATIONS].distinct("user_id"))
        read_result = start_read_timer(settings, readers, reads=args.reads, stop_after_s=args.duration * 0.9)
        achieved = send_at_rate(producer, tracker, main_events, rate=args.rate, phase="main")
        backlog = tracker.unanswered()
        drain = wait_drained(tracker, timeout_s=120)
        reads = read_result()
        p50, p95, p99 = percentiles(tracker.latencies["main"])
        rows.append((f"{args.rate:g} (main)", achieved, len(main_events), p50, p95, p99, backlog, drain))

        for rate in step_rates:
            step = events[cursor:cursor + int(rate * args.step_seconds)]
            cursor += len(step)
            achieved = send_at_rate(producer, tracker, step, rate=rate, phase=f"step{rate:g}")
            backlog = tracker.unanswered()
            drain = wait_drained(tracker, timeout_s=180)
            p50, p95, p99 = percentiles(tracker.latencies[f"step{rate:g}"])
            rows.append((f"{rate:g}", achieved, len(step), p50, p95, p99, backlog, drain))
        idle_reads = start_read_timer(settings, readers, reads=200, stop_after_s=2.0)()
        time.sleep(2 * args.trigger_seconds + 2)  # the supervisor records the last batches' progress
        health = streaming_health(db, max_lag=10**9, max_staleness_s=60, query_name=QUERY_NAME)
        batches = list(db[Collection.STREAM_METRICS].find({KIND: BATCH_KIND, INPUT_ROWS: {"$gt": 0}}))
    finally:
        tracker.stop.set()
        producer.close()
        stopped = process.stop(spec)
        print(f"job stopped: {stopped}; last log lines:\n{process.log_tail(spec.log_path, 3)}", flush=True)

    print_report(args, rows, reads, idle_reads, batches, health)
    client.drop_database(settings.mongo_db)
    admin = admin_client(settings)
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()
    return rows


def print_report(args, rows, reads, idle_reads, batches, health) -> None:
    print()
    print(f"trigger {args.trigger_seconds:g} s, execution {args.execution or 'default'}, "
          f"load average {os.getloadavg()}")
    print(f"{'rate ev/s':>12} {'achieved':>9} {'events':>7} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7} "
          f"{'backlog':>8} {'drain s':>8}  sustained")
    for label, achieved, count, p50, p95, p99, backlog, drain in rows:
        sustained = backlog <= 2 * achieved and drain < 5
        print(f"{label:>12} {achieved:9.1f} {count:7d} {p50:7.3f} {p95:7.3f} {p99:7.3f} {backlog:8d} {drain:8.1f}  "
              f"{'yes' if sustained else 'no'}")
    print()
    for label, timings in (("during the main phase", reads), ("with the stream idle", idle_reads)):
        for name, what in (("read", "player read of current recommendations (find_one by user_id)"),
                           ("up_next", "whole Up next (read + tracks join)")):
            r50, r95, r99 = percentiles(timings[name])
            print(f"{what}, {len(timings[name])} reads {label}: "
                  f"p50 {r50 * 1000:.2f} ms, p95 {r95 * 1000:.2f} ms, p99 {r99 * 1000:.2f} ms")
    durations = pd.DataFrame([b["spark_duration_ms"] for b in batches if b.get("spark_duration_ms")])
    if not durations.empty:
        print(f"Spark micro-batch phases ({len(durations)} batches), median ms: " + ", ".join(
            f"{name} {durations[name].median():.0f}" for name in durations.columns))
    steps = pd.DataFrame([b["step_seconds"] for b in batches if b.get("step_seconds")])
    if not steps.empty:
        print("our batch function steps, median ms: " + ", ".join(
            f"{name} {steps[name].median() * 1000:.0f}" for name in steps.columns))
    processing = [b["processing_seconds"] for b in batches]
    sizes = [b["input_rows"] for b in batches]
    if processing:
        print(f"job batches: {len(batches)}; rows/batch median {np.median(sizes):.0f}, max {max(sizes)}; "
              f"our batch function (after collect) seconds median {np.median(processing):.3f}, p95 {np.percentile(processing, 95):.3f}, "
              f"max {max(processing):.3f}")
        collect = [b["collect_seconds"] for b in batches if b.get("collect_seconds") is not None]
        if collect:
            print(f"reading a batch from Kafka (collect) seconds median {np.median(collect):.3f}, "
                  f"p95 {np.percentile(collect, 95):.3f}")
        job_p95 = [b["latency_seconds"]["p95"] for b in batches if b["latency_seconds"]["p95"] is not None]
        print(f"job-side latency (Kafka timestamp -> written), per-batch p95: median {np.median(job_p95):.3f} s, "
              f"max {max(job_p95):.3f} s")
    print(f"health at the end: {health['status']}, total lag {health['total_lag']}")


if __name__ == "__main__":
    sys.exit(main())
