"""The executors path of a micro-batch (``spark_jobs.streaming.executors``) on the shared Spark
session and the real MongoDB server: it writes what the driver path writes, a replay changes
nothing, and the models reach the tasks as a broadcast refreshed only when they change."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from kafka import KafkaProducer

from fma_platform.contracts import Collection
from fma_platform.events import encode_event
from fma_platform.kafka import ensure_topics, spark_kafka_options
from fma_platform.stream_status import BATCH_KIND, KIND
from spark_jobs.streaming import executors
from spark_jobs.streaming.batch import RecommendationStream, StreamConfig
from spark_jobs.streaming.kafka_source import KAFKA_SCHEMA_DDL, DriverBatchReader, KafkaOffsetRange, KafkaSourceOptions
from tests.conftest import fresh_database
from tests.spark_jobs.streaming.conftest import T0, UNKNOWN_TRACK, cluster_of, event, record, seed_catalogue
from tests.spark_jobs.streaming.test_stream_batch import publish_als

QUERY = "executors-test"
# What differs between two runs by design: when, and the batch key's query name (same here).
VOLATILE = {"stored_at", "received_at", "updated_at"}


@pytest.fixture()
def other_db(mongo_server):
    """A second fresh database beside ``mongo_db``."""
    yield from fresh_database(mongo_server)


def batch_frame(spark, records):
    """The batch DataFrame the Kafka source gives for ``records`` (its native columns)."""
    rows = [(None, r.value, r.topic, r.partition, r.offset, r.timestamp, 0) for r in records]
    return spark.createDataFrame(rows, KAFKA_SCHEMA_DDL)


def sample_records():
    events = [event("u1", 100, "play", T0), event("u1", 100, "complete", T0 + timedelta(seconds=30)),
              event("u1", 101, "like", T0 + timedelta(seconds=31)),
              event("u2", 200, "complete", T0 + timedelta(seconds=5)),
              event("u2", 201, "skip", T0 + timedelta(seconds=9), listened=2.0),
              event("u3", 305, "like", T0 + timedelta(minutes=7))]
    events.append(events[3])  # a producer's re-send inside the batch
    records = [record(encode_event(e), i, partition=i % 3) for i, e in enumerate(events)]
    records += [record(b"{oops", 20), record(None, 21, partition=1),
                record(encode_event(event("u9", UNKNOWN_TRACK, "play", T0)), 22, partition=2)]
    return events, records


def snapshot(db) -> dict[str, list[dict]]:
    names = (Collection.LISTENING_EVENTS, Collection.DEAD_LETTERS, Collection.TRENDING,
             Collection.REALTIME_RECOMMENDATIONS)
    return {name: [{k: v for k, v in document.items() if k not in VOLATILE and not (k == "_id" and
                                                                                    name == Collection.REALTIME_RECOMMENDATIONS)}
                   for document in db[name].find().sort([("_id", 1)] if name != Collection.REALTIME_RECOMMENDATIONS
                                                         else [("user_id", 1)])]
            for name in names}


def stream_on(db, settings, execution: str, **updates) -> RecommendationStream:
    settings = settings.model_copy(update=updates)
    return RecommendationStream(db, settings, config=StreamConfig(top_k=10), query_name=QUERY, execution=execution)


@pytest.mark.slow
def test_the_executors_write_what_the_driver_writes_and_a_replay_changes_nothing(spark, settings, mongo_db, other_db,
                                                                                  tmp_path):
    events, records = sample_records()
    for db in (mongo_db, other_db):
        seed_catalogue(db)
    on_driver = stream_on(mongo_db, settings, "driver", state_dir=tmp_path)
    on_executors = stream_on(other_db, settings, "executors", state_dir=tmp_path)
    driver_metrics = on_driver.process(records, batch_id=0)
    on_executors(batch_frame(spark, records), 0)
    metrics = on_executors.last_metrics

    counts = lambda m: (m.input_rows, m.valid_events, m.new_events, m.dead_letters, m.users_updated)  # noqa: E731
    assert counts(metrics) == counts(driver_metrics) == (10, 7, 6, 3, 3)
    assert metrics.offsets == driver_metrics.offsets == {"0": 21, "1": 22, "2": 23}
    assert metrics.active_listeners["users"] == driver_metrics.active_listeners["users"] == 1  # u3's window
    assert metrics.model_version == driver_metrics.model_version == "content:unversioned"
    assert set(metrics.step_seconds) >= {"spark_job", "tasks.decode", "tasks.store_events", "tasks.read_histories",
                                         "tasks.rank", "tasks.write_recommendations"}
    written = snapshot(other_db)
    assert written == snapshot(mongo_db)
    recs = {d["user_id"]: d for d in written[Collection.REALTIME_RECOMMENDATIONS]}
    assert recs["u1"]["triggered_by"] == events[2].event_id
    assert all(cluster_of(item["track_id"]) == 0 for item in recs["u1"]["items"][:5])
    assert {d["reason_kind"] for d in written[Collection.DEAD_LETTERS]} == {"malformed_json", "null_payload",
                                                                            "unknown_track"}
    track = other_db[Collection.TRENDING].find_one({"kind": "track", "key": 200})
    assert track["completes"] == 1  # the re-sent event counted once

    on_executors(batch_frame(spark, records), 0)  # Spark replays a batch that did not commit
    replay = on_executors.last_metrics
    assert (replay.valid_events, replay.new_events) == (7, 6)  # the same batch's events, still its own
    assert snapshot(other_db) == written
    assert other_db[Collection.STREAM_METRICS].count_documents({KIND: BATCH_KIND}) == 1
    histogram = other_db[Collection.STREAM_METRICS].find_one({KIND: BATCH_KIND})["latency_histogram"]
    assert sum(histogram["counts"]) == 7


@pytest.mark.slow
def test_models_are_broadcast_once_and_again_when_a_new_champion_or_track_appears(spark, settings, mongo_db,
                                                                                   tmp_path):
    seed_catalogue(mongo_db)
    stream = stream_on(mongo_db, settings, "executors", state_dir=tmp_path)
    broadcast = stream.broadcast(spark)
    first = [record(encode_event(event("u1", 100, "complete", T0)), 0)]
    stream(batch_frame(spark, first), 0)
    stream(batch_frame(spark, [record(encode_event(event("u1", 101, "complete", T0 + timedelta(seconds=40))), 1)]),
           1)
    assert broadcast.broadcasts == 1  # two batches, one broadcast
    assert stream.last_metrics.model_version == "content:unversioned"

    publish_als(tmp_path / "models", "v1", user="u1", favourite=305)
    stream(batch_frame(spark, [record(encode_event(event("u1", 102, "complete", T0 + timedelta(seconds=80))), 2)]),
           2)
    assert broadcast.broadcasts == 2 and stream.last_metrics.model_version == "content:unversioned+als:v1"
    recs = mongo_db[Collection.REALTIME_RECOMMENDATIONS].find_one({"user_id": "u1"})
    assert recs["model_version"] == "content:unversioned+als:v1"
    assert 305 in [item["track_id"] for item in recs["items"]]  # the champion's favourite, from the broadcast

    # A track added to the catalogue after the broadcast: its event is valid at once, and the
    # next batch broadcasts the reloaded catalogue.
    mongo_db[Collection.TRACKS].insert_one({"track_id": 777, "title": "New", "top_genre_id": 10,
                                            "top_genre_title": "Genre 10", "listens": 1})
    stream(batch_frame(spark, [record(encode_event(event("u2", 777, "like", T0 + timedelta(seconds=90))), 3)]), 3)
    assert (stream.last_metrics.valid_events, stream.last_metrics.dead_letters) == (1, 0)
    assert mongo_db[Collection.TRENDING].find_one({"kind": "genre", "key": 10})["likes"] == 1
    stream(batch_frame(spark, [record(encode_event(event("u2", 777, "play", T0 + timedelta(seconds=95))), 4)]), 4)
    assert broadcast.broadcasts == 3 and 777 in broadcast.current()[1].catalogue.known_ids


@pytest.mark.slow
def test_the_counting_sink_counts_and_writes_no_data(spark, settings, mongo_db, tmp_path):
    events, records = sample_records()
    seed_catalogue(mongo_db)
    stream = stream_on(mongo_db, settings, "executors", state_dir=tmp_path, stream_sink="count")
    stream(batch_frame(spark, records), 0)
    metrics = stream.last_metrics
    assert (metrics.valid_events, metrics.new_events, metrics.dead_letters, metrics.users_updated) == (7, 6, 3, 3)
    for name in (Collection.LISTENING_EVENTS, Collection.DEAD_LETTERS, Collection.TRENDING,
                 Collection.REALTIME_RECOMMENDATIONS):
        assert mongo_db[name].count_documents({}) == 0, name
    assert mongo_db[Collection.STREAM_METRICS].count_documents({KIND: BATCH_KIND}) == 1  # metrics still written
    driver = stream_on(mongo_db, settings, "driver", state_dir=tmp_path, stream_sink="count")
    assert driver.process(records, batch_id=1).users_updated == 3
    assert mongo_db[Collection.LISTENING_EVENTS].count_documents({}) == 0


def write_offset_log(checkpoint, batch_id: int, positions: dict[int, int]) -> None:
    """Spark's offset log entry of the Python source for ``batch_id`` (end offsets)."""
    (checkpoint / "offsets").mkdir(parents=True, exist_ok=True)
    (checkpoint / "offsets" / str(batch_id)).write_text(
        "v1\n{}\n" + json.dumps({str(p): n for p, n in sorted(positions.items())}))


@pytest.mark.slow
def test_tasks_read_their_kafka_partitions_and_a_listener_split_over_two_tasks_is_ranked_again(
        spark, settings, kafka_broker, mongo_db, other_db, tmp_path, monkeypatch):
    """The direct path: a batch whose offsets Spark logged runs as one stage whose tasks read
    whole Kafka partitions themselves. Records keyed otherwise than by listener split u1 and
    u2 over both tasks; the driver ranks them again, so the writes equal the driver path's."""
    topic = f"executors-direct-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_broker, {topic: 3})
    events, records = sample_records()
    producer = KafkaProducer(bootstrap_servers=kafka_broker.kafka_bootstrap, acks="all", linger_ms=0)
    try:
        acks = [producer.send(topic, key=b"not-the-listener", value=r.value, partition=r.partition)
                for r in records]
        producer.flush(timeout=30)
        acked = [future.get(timeout=30) for future in acks]
    finally:
        producer.close(timeout=5)
    checkpoint = tmp_path / "checkpoint"
    write_offset_log(checkpoint, 0, {p: min(a.offset for a in acked if a.partition == p) for p in range(3)})
    write_offset_log(checkpoint, 1, {p: max(a.offset for a in acked if a.partition == p) + 1 for p in range(3)})
    for db in (mongo_db, other_db):
        seed_catalogue(db)
    options = KafkaSourceOptions.from_options({**spark_kafka_options(kafka_broker), "subscribe": topic})

    def stream(db, execution):
        return RecommendationStream(db, settings.model_copy(update={"state_dir": tmp_path}),
                                    config=StreamConfig(top_k=10), query_name=QUERY, execution=execution,
                                    checkpoint=checkpoint, batch_reader=DriverBatchReader(options, checkpoint))

    on_driver, on_executors = stream(mongo_db, "driver"), stream(other_db, "executors")
    monkeypatch.setattr(executors, "SINGLE_TASK_RECORDS", 0)  # this small batch in two tasks
    unused = spark.range(0)  # the batch DataFrame is not read on either path
    on_driver(unused, 1)
    on_executors(unused, 1)
    metrics, driver_metrics = on_executors.last_metrics, on_driver.last_metrics

    counts = lambda m: (m.input_rows, m.valid_events, m.new_events, m.dead_letters, m.users_updated)  # noqa: E731
    assert counts(metrics) == counts(driver_metrics) == (10, 7, 6, 3, 3)
    assert metrics.offsets == driver_metrics.offsets
    assert {"tasks.read_kafka", "rerank_split"} <= set(metrics.step_seconds)
    written = snapshot(other_db)
    assert written == snapshot(mongo_db)
    recs = {d["user_id"]: d for d in written[Collection.REALTIME_RECOMMENDATIONS]}
    assert recs["u1"]["triggered_by"] == events[2].event_id  # u1's newest event, read by the other task
    assert other_db[Collection.TRENDING].find_one({"kind": "track", "key": 200})["completes"] == 1

    on_executors(unused, 1)  # a replay of the uncommitted batch changes nothing
    assert snapshot(other_db) == written
    assert counts(on_executors.last_metrics)[:2] == (10, 7)


def test_groups_hold_whole_partitions_of_about_equal_records():
    ranges = [KafkaOffsetRange("t", p, 0, size) for p, size in enumerate([50, 400, 300, 120])]
    assert [[r.partition for r in g] for g in executors.group_ranges(ranges, tasks=2)] == [[0, 1], [2, 3]]
    assert [[r.partition for r in g] for g in executors.group_ranges(ranges, tasks=8)] == [[1], [2], [3], [0]]
    small = [KafkaOffsetRange("t", p, 10, 10 + size) for p, size in enumerate([50, 0, 60])]
    assert [[r.partition for r in g] for g in executors.group_ranges(small, tasks=2)] == [[0, 2]]  # one task
    assert executors.group_ranges([KafkaOffsetRange("t", 0, 5, 5)], tasks=2) == []
