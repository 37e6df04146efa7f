"""The whole query on the shared Spark session, the real broker and real MongoDB, and the
spark-submit entry's arguments."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from kafka import KafkaProducer

from fma_platform.contracts import Collection
from fma_platform.events import MAX_EVENT_BYTES, encode_event
from fma_platform.producer import EventProducer
from fma_platform.stream_status import BATCH_KIND, KIND
from spark_jobs.streaming.batch import RecommendationStream, StreamConfig
from spark_jobs.streaming.job import DEFAULT_TRIGGER_S, start_stream
from spark_jobs.streaming.kafka_source import close_read_consumers
from spark_jobs.streaming.progress import Supervisor, progress_lag
from spark_jobs.streaming_recommendations import parse_args
from tests.spark_jobs.streaming.conftest import UNKNOWN_TRACK, cluster_of, event, seed_catalogue

QUERY_TIMEOUT_S = 90


def test_entry_arguments_default_to_the_settings_and_the_job(settings, tmp_path):
    args = parse_args([], settings)
    assert (args.trigger_seconds, args.checkpoint, args.starting_offsets, args.run_for, args.topic) == (
        DEFAULT_TRIGGER_S, settings.streaming_checkpoint_dir, "earliest", None, None)
    args = parse_args(["--trigger-seconds", "2", "--checkpoint", str(tmp_path), "--run-for", "5"], settings)
    assert (args.trigger_seconds, args.checkpoint, args.run_for) == (2.0, tmp_path, 5.0)


def wait_for(predicate, *, query, what: str, timeout_s: float = QUERY_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if query.exception() is not None:
            raise AssertionError(f"query failed while waiting for {what}: {query.exception()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {timeout_s} s")
        time.sleep(0.2)


def recs_after(db, user: str, event_id: str):
    document = db[Collection.REALTIME_RECOMMENDATIONS].find_one({"user_id": user})
    return document if document is not None and document["triggered_by"] == event_id else None


class CrashAfterWrites:
    """Processes a batch fully, then fails it once: Spark must replay it on restart."""

    def __init__(self, stream: RecommendationStream) -> None:
        self.stream = stream
        self.crashed = False

    def __call__(self, batch_df, batch_id):
        self.stream(batch_df, batch_id)
        if not self.crashed and self.stream.last_metrics.input_rows:
            self.crashed = True
            raise RuntimeError("injected crash after the batch's writes")


@pytest.mark.slow
def test_events_to_recommendations_exactly_once_across_restarts(spark, settings, mongo_db, unique_topic, tmp_path):
    seed_catalogue(mongo_db)
    checkpoint = tmp_path / "checkpoint"
    config = StreamConfig(top_k=20)
    producer = EventProducer(settings, topic=unique_topic)
    raw = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    produced: list = []

    def send(*events):
        for item in events:
            producer.send(item)
            produced.append(item)
        assert producer.flush(30)
        return events[-1]

    def run(wrap=None):
        return start_stream(spark, settings, db=mongo_db, checkpoint=checkpoint, topic=unique_topic,
                            trigger_seconds=0.5, config=config, query_name="e2e", wrap_handler=wrap)

    now = datetime.now(timezone.utc) - timedelta(minutes=2)
    at = lambda seconds: now + timedelta(seconds=seconds)  # noqa: E731
    query, stream = run()
    try:
        # A listener who liked cluster 0 gets cluster 0, with reasons.
        last = send(event("fan", 100, "play", at(0)), event("fan", 100, "complete", at(30)),
                    event("fan", 101, "like", at(31)))
        recs = wait_for(lambda: recs_after(mongo_db, "fan", last.event_id), query=query, what="fan's recommendations")
        ids = [item["track_id"] for item in recs["items"]]
        assert ids and not {100, 101} & set(ids) and all(cluster_of(t) == 0 for t in ids[:5])
        assert all(item["reason"] for item in recs["items"])
        assert recs["items"][0]["reason"].startswith("because you")
        assert abs(recs["event_time"] - last.client_ts) < timedelta(milliseconds=1)  # MongoDB keeps ms
        assert recs["updated_at"] >= recs["event_time"]

        # Skips change the next recommendations: the skipped tracks and their neighbours drop.
        last = send(event("mixed", 100, "complete", at(0)), event("mixed", 200, "complete", at(31)))
        before = [i["track_id"] for i in wait_for(lambda: recs_after(mongo_db, "mixed", last.event_id),
                                                   query=query, what="mixed's recommendations")["items"]]
        last = send(event("mixed", 201, "play", at(62)), event("mixed", 201, "skip", at(64), listened=2.0),
                    event("mixed", 202, "play", at(66)), event("mixed", 202, "skip", at(68), listened=2.0))
        after = [i["track_id"] for i in wait_for(lambda: recs_after(mongo_db, "mixed", last.event_id),
                                                  query=query, what="recommendations after the skips")["items"]]
        cluster1 = lambda tracks: sum(cluster_of(t) == 1 for t in tracks)  # noqa: E731
        assert 201 not in after and 202 not in after
        assert cluster1(before) >= 5 and cluster1(after) == 0  # below every other cluster now

        # Malformed payloads become dead letters; the stream goes on.
        bad = [b"{oops", json.dumps({"schema_version": 1, "nope": True}).encode(), b"x" * (MAX_EVENT_BYTES + 1),
               encode_event(event("fan", UNKNOWN_TRACK, "play", at(90)))]
        for payload in bad:
            raw.send(unique_topic, key=b"bad", value=payload)
        raw.flush(30)
        wait_for(lambda: mongo_db[Collection.DEAD_LETTERS].count_documents({}) == len(bad), query=query,
                 what="dead letters")
        kinds = sorted(d["reason_kind"] for d in mongo_db[Collection.DEAD_LETTERS].find())
        assert kinds == sorted(["malformed_json", "unknown_field", "oversized", "unknown_track"])
        # The heartbeat: the query is alive and has read everything.
        heartbeat = Supervisor(mongo_db, query, query_name=stream.query_name).record_progress()
        assert heartbeat.is_active and heartbeat.total_lag == 0 and heartbeat.query_id == stream.query_id
        stored = mongo_db[Collection.STREAM_METRICS].find_one({"_id": "heartbeat/e2e"})
        assert stored["is_active"] and stored["total_lag"] == 0
    finally:
        query.stop()
        producer.flush(30)

    # Events produced while the job is down, then a crash right after a batch's writes.
    send(*[event(f"late{i % 3}", 300 + i % 12, "complete", at(100 + i)) for i in range(30)])
    query, stream = run(wrap=CrashAfterWrites)
    try:
        with pytest.raises(Exception, match="injected crash"):
            query.awaitTermination(QUERY_TIMEOUT_S)
    finally:
        query.stop()
    send(*[event(f"later{i % 4}", 200 + i % 12, "like", at(200 + i)) for i in range(20)])
    query, stream = run()
    try:
        wait_for(lambda: mongo_db[Collection.LISTENING_EVENTS].count_documents({}) >= len(produced), query=query,
                 what="all produced events")
        time.sleep(2)  # a few more triggers: nothing more may arrive
        assert mongo_db[Collection.LISTENING_EVENTS].count_documents({}) == len(produced)
        assert set(mongo_db[Collection.LISTENING_EVENTS].distinct("_id")) == {e.event_id for e in produced}
        assert mongo_db[Collection.DEAD_LETTERS].count_documents({}) == len(bad)
        batches = list(mongo_db[Collection.STREAM_METRICS].find({KIND: BATCH_KIND}))
        assert sum(b["valid_events"] for b in batches) == len(produced)  # the replayed batch counted once
        assert sum(b["new_events"] for b in batches) == len(produced)
        plays = sum(d["completes"] + d["likes"] for d in mongo_db[Collection.TRENDING].find({"kind": "track"}))
        assert plays == sum(e.type.value in ("complete", "like") for e in produced)
        assert all(b["latency_seconds"]["p95"] is None or b["latency_seconds"]["p95"] < 60 for b in batches)
        end, lag = progress_lag(query.recentProgress[-1])
        assert sum(lag.values()) == 0 and sum(end.values()) == len(produced) + len(bad)
    finally:
        query.stop()
        close_read_consumers()  # the driver-side batch reads of this process
        producer.close()
        raw.close()
