"""The Kafka streaming source against the real embedded broker and the shared Spark session.

Every streaming test compares what the query delivered, as ``(partition, offset, key,
value)``, with what the broker acknowledged for the records the test produced.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer

from fma_platform.kafka import ensure_topics
from spark_jobs.streaming.kafka_source import (
    KAFKA_COLUMNS,
    DriverBatchReader,
    KafkaOffsetRange,
    KafkaSourceError,
    KafkaSourceOptions,
    cap_offsets,
    choose_kafka_source,
    close_read_consumers,
    driver_batch_reader,
    native_kafka_available,
    plan_read_tasks,
    read_kafka_stream,
    read_offset_range,
)

PARTITIONS = 3
QUERY_TIMEOUT_S = 60


# --- helpers -----------------------------------------------------------------------------
@pytest.fixture()
def produce(kafka_broker):
    """``produce(topic, n, tag)``: n records spread over the 3 partitions; returns the acks."""
    producer = KafkaProducer(bootstrap_servers=kafka_broker.kafka_bootstrap, acks="all", linger_ms=0)

    def _produce(topic: str, count: int, tag: str) -> list[tuple[int, int, bytes, bytes]]:
        futures = []
        for index in range(count):
            key, value = f"{tag}-key-{index}".encode(), f"{tag}-value-{index}".encode()
            future = producer.send(topic, key=key, value=value, partition=index % PARTITIONS)
            futures.append((future, key, value))
        producer.flush(timeout=30)
        acked = []
        for future, key, value in futures:
            metadata = future.get(timeout=30)
            acked.append((metadata.partition, metadata.offset, key, value))
        return acked

    yield _produce
    producer.close(timeout=5)


class Collector:
    """A ``foreachBatch`` sink keeping every delivered row (and when each batch arrived)."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int, bytes, bytes]]] = []
        self.arrivals: list[tuple[float, list[tuple[int, int, bytes, bytes]]]] = []
        self._lock = threading.Lock()

    def __call__(self, batch_df, batch_id: int) -> None:
        rows = [
            (row.partition, row.offset, bytes(row.key), bytes(row.value))
            for row in batch_df.select("partition", "offset", "key", "value").collect()
        ]
        with self._lock:
            self.batches.append(rows)
            self.arrivals.append((time.monotonic(), rows))

    @property
    def rows(self) -> list[tuple[int, int, bytes, bytes]]:
        with self._lock:
            return sorted(row for batch in self.batches for row in batch)

    def wait_for(self, predicate, *, timeout_s: float = QUERY_TIMEOUT_S, query=None) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(self.rows):
            if query is not None and query.exception() is not None:
                raise AssertionError(f"query failed: {query.exception()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"rows not delivered within {timeout_s} s; have {len(self.rows)}")
            time.sleep(0.1)


def start_query(df, collector: Collector, checkpoint, *, available_now: bool = False, trigger_s: float = 1.0):
    writer = df.writeStream.foreachBatch(collector).option("checkpointLocation", str(checkpoint))
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(processingTime=f"{trigger_s} seconds")
    return writer.start()


def run_available_now(df, checkpoint) -> Collector:
    """Run the stream once to the end offsets seen at its start; return what it delivered."""
    collector = Collector()
    query = start_query(df, collector, checkpoint, available_now=True)
    try:
        assert query.awaitTermination(QUERY_TIMEOUT_S), "availableNow query did not finish"
    finally:
        query.stop()
    return collector


def wait_until_started(query, timeout_s: float = QUERY_TIMEOUT_S) -> None:
    """Until the first trigger ran (so the initial offsets are fixed)."""
    deadline = time.monotonic() + timeout_s
    while query.lastProgress is None:
        if query.exception() is not None:
            raise AssertionError(f"query failed: {query.exception()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"query made no progress within {timeout_s} s: {query.status}")
        time.sleep(0.1)


# --- pure parts ----------------------------------------------------------------------------
def test_cap_offsets_shares_the_bound_by_lag():
    start = {0: 10, 1: 0, 2: 5}
    available = {0: 40, 1: 10, 2: 5}  # lags 30, 10, 0
    assert cap_offsets(start, available, None) == available
    assert cap_offsets(start, available, 100) == available
    capped = cap_offsets(start, available, 8)
    assert capped == {0: 16, 1: 2, 2: 5}  # 6 + 2 records
    # a bound smaller than the number of lagging partitions still moves forward
    assert sum(cap_offsets({0: 0, 1: 0, 2: 0}, {0: 5, 1: 5, 2: 5}, 1).values()) == 1


@pytest.mark.parametrize("options, message", [
    ({"subscribe": "t"}, "kafka.bootstrap.servers"),
    ({"kafka.bootstrap.servers": "h:1", "subscribe": "a,b"}, "exactly one topic"),
    ({"kafka.bootstrap.servers": "h:1", "subscribe": "t", "startingOffsets": "{}"}, "startingOffsets"),
    ({"kafka.bootstrap.servers": "h:1", "subscribe": "t", "maxOffsetsPerTrigger": "0"}, "maxOffsetsPerTrigger"),
    ({"kafka.bootstrap.servers": "h:1", "subscribe": "t", "kafka.ssl.keystore.location": "/client.jks"}, "not supported"),
    ({"kafka.bootstrap.servers": "h:1", "subscribe": "t", "recordsPerTask": "0"}, "recordspertask"),
])
def test_bad_options_are_rejected_with_a_reason(options, message):
    with pytest.raises(KafkaSourceError, match=message):
        KafkaSourceOptions.from_options(options)


def test_reading_past_the_end_raises_instead_of_returning_fewer_rows(kafka_broker, unique_topic, produce):
    produce(unique_topic, PARTITIONS, "short")  # one record per partition
    options = KafkaSourceOptions(bootstrap_servers=kafka_broker.kafka_bootstrap, topic=unique_topic,
                                 poll_timeout_ms=1_500)
    rows = list(read_offset_range(options, KafkaOffsetRange(unique_topic, 0, 0, 1)))
    assert [(row[3], row[4], row[1]) for row in rows] == [(0, 0, b"short-value-0")]
    with pytest.raises(KafkaSourceError, match="only offsets before 1 arrived"):
        list(read_offset_range(options, KafkaOffsetRange(unique_topic, 0, 0, 5)))


def test_end_offsets_count_every_record_of_a_multi_record_batch(kafka_broker, unique_topic):
    """Tansu reports the last batch's base offset + 1 as the end: the source must not trust it."""
    from pyspark.sql.streaming.datasource import ReadAllAvailable

    from spark_jobs.streaming.kafka_source import KafkaStreamReader

    producer = KafkaProducer(bootstrap_servers=kafka_broker.kafka_bootstrap, linger_ms=200)
    try:
        for index in range(12):  # one batch of 4 records per partition
            producer.send(unique_topic, value=b"%d" % index, partition=index % PARTITIONS)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)
    options = KafkaSourceOptions(bootstrap_servers=kafka_broker.kafka_bootstrap, topic=unique_topic)
    reader = KafkaStreamReader(options)
    try:
        start = reader.initialOffset()
        assert start == {"0": 0, "1": 0, "2": 0}
        assert reader.latestOffset(start, ReadAllAvailable()) == {"0": 4, "1": 4, "2": 4}
        latest = KafkaStreamReader(dataclasses.replace(options, starting_offsets="latest"))
        assert latest.initialOffset() == {"0": 4, "1": 4, "2": 4}
        latest.stop()
    finally:
        reader.stop()


# --- with Spark ----------------------------------------------------------------------------
def test_auto_picks_the_python_source_without_the_connector(spark, kafka_broker):
    assert native_kafka_available(spark) is False  # no spark-sql-kafka jar in this environment
    assert choose_kafka_source(spark, "auto") == "python"
    with pytest.raises(KafkaSourceError, match="not on the classpath"):
        read_kafka_stream(spark, kafka_broker, topic="any", source="native")
    # Without a ``source`` argument the setting (FMA_SPARK_KAFKA_SOURCE) decides.
    native = kafka_broker.model_copy(update={"spark_kafka_source": "native"})
    with pytest.raises(KafkaSourceError, match="not on the classpath"):
        read_kafka_stream(spark, native, topic="any")
    python = kafka_broker.model_copy(update={"spark_kafka_source": "python"})
    assert isinstance(driver_batch_reader(spark, python, topic="any", checkpoint=Path("unused")), DriverBatchReader)


@pytest.mark.slow
def test_stream_delivers_exactly_the_records_produced_before_and_after_start(
    spark, kafka_broker, unique_topic, produce, tmp_path
):
    before = produce(unique_topic, 9, "before")
    df = read_kafka_stream(spark, kafka_broker, topic=unique_topic)
    assert tuple(df.columns) == KAFKA_COLUMNS
    assert [(f.name, f.dataType.simpleString()) for f in df.schema.fields] == [
        ("key", "binary"), ("value", "binary"), ("topic", "string"), ("partition", "int"),
        ("offset", "bigint"), ("timestamp", "timestamp"), ("timestampType", "int"),
    ]
    collector = Collector()
    query = start_query(df, collector, tmp_path / "checkpoint")
    try:
        collector.wait_for(lambda rows: len(rows) >= len(before), query=query)
        after = produce(unique_topic, 12, "after")
        query.processAllAvailable()
    finally:
        query.stop()
    expected = sorted(before + after)
    assert collector.rows == expected
    assert {partition for partition, *_ in collector.rows} == {0, 1, 2}
    assert [offset for partition, offset, *_ in collector.rows if partition == 0] == list(range(7))


@pytest.mark.slow
def test_restart_from_checkpoint_delivers_only_new_records(spark, kafka_broker, unique_topic, produce, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    df = read_kafka_stream(spark, kafka_broker, topic=unique_topic)
    first = produce(unique_topic, 10, "first")
    first_run = run_available_now(df, checkpoint)
    second = produce(unique_topic, 8, "second")
    second_run = run_available_now(df, checkpoint)
    third_run = run_available_now(df, checkpoint)  # nothing new: nothing delivered

    assert first_run.rows == sorted(first)
    assert second_run.rows == sorted(second)
    assert third_run.rows == []
    delivered = [(partition, offset) for partition, offset, *_ in first_run.rows + second_run.rows]
    assert len(delivered) == len(set(delivered)) == 18


@pytest.mark.slow
def test_topic_created_after_the_query_started_is_picked_up(spark, kafka_broker, produce, tmp_path):
    topic = f"test-late-{uuid.uuid4().hex[:8]}"
    df = read_kafka_stream(spark, kafka_broker, topic=topic)
    collector = Collector()
    query = start_query(df, collector, tmp_path / "checkpoint")
    try:
        wait_until_started(query)
        time.sleep(1.5)  # at least one more trigger sees no topic
        # The source's metadata requests must not have auto-created it (Tansu would, with 4 partitions).
        assert ensure_topics(kafka_broker, {topic: PARTITIONS}) == [topic]
        produced = produce(topic, 9, "late")
        collector.wait_for(lambda rows: len(rows) >= len(produced), query=query)
        query.processAllAvailable()
    finally:
        query.stop()
    assert collector.rows == sorted(produced)


@pytest.mark.slow
def test_latest_skips_earlier_records_and_earliest_keeps_them(spark, kafka_broker, unique_topic, produce, tmp_path):
    earlier = produce(unique_topic, 6, "earlier")
    latest_df = read_kafka_stream(spark, kafka_broker, topic=unique_topic, starting_offsets="latest")
    collector = Collector()
    query = start_query(latest_df, collector, tmp_path / "latest")
    try:
        wait_until_started(query)
        later = produce(unique_topic, 6, "later")
        collector.wait_for(lambda rows: len(rows) >= len(later), query=query)
        query.processAllAvailable()
    finally:
        query.stop()
    assert collector.rows == sorted(later)

    earliest_df = read_kafka_stream(spark, kafka_broker, topic=unique_topic, starting_offsets="earliest")
    assert run_available_now(earliest_df, tmp_path / "earliest").rows == sorted(earlier + later)


@pytest.mark.slow
def test_max_offsets_per_trigger_bounds_every_batch(spark, kafka_broker, unique_topic, produce, tmp_path):
    produced = produce(unique_topic, 30, "bounded")
    df = read_kafka_stream(spark, kafka_broker, topic=unique_topic, max_offsets_per_trigger=7)
    collector = run_available_now(df, tmp_path / "checkpoint")
    sizes = [len(batch) for batch in collector.batches if batch]
    assert sizes == [7, 7, 7, 7, 2]
    assert collector.rows == sorted(produced)


def test_small_batches_are_one_task_and_large_ones_one_task_per_partition():
    ranges = [KafkaOffsetRange("t", 0, 0, 10), KafkaOffsetRange("t", 1, 5, 25), KafkaOffsetRange("t", 2, 3, 4)]
    one = plan_read_tasks(ranges, records_per_task=31)
    assert [[(r.partition, r.start, r.end) for r in task.ranges] for task in one] == [[(0, 0, 10), (1, 5, 25), (2, 3, 4)]]
    assert [[r.partition for r in task.ranges] for task in plan_read_tasks(ranges, records_per_task=30)] == [[0], [1], [2]]
    assert plan_read_tasks([]) == []
    # The streaming job on the executors asks for fewer records per task (recordsPerTask).
    options = KafkaSourceOptions.from_options({"kafka.bootstrap.servers": "h:1", "subscribe": "t",
                                               "recordsPerTask": "30"})
    assert options.records_per_task == 30
    assert KafkaSourceOptions.from_options({"kafka.bootstrap.servers": "h:1", "subscribe": "t"}).records_per_task == 5000


@pytest.mark.slow
def test_driver_reads_exactly_each_logged_batch_also_after_a_restart(spark, kafka_broker, unique_topic, produce,
                                                                     tmp_path):
    checkpoint = tmp_path / "checkpoint"
    reader = DriverBatchReader(KafkaSourceOptions(kafka_broker.kafka_bootstrap, unique_topic), checkpoint)
    batches: list[tuple[int, list, list | None]] = []  # (batch id, Spark's rows, the driver's rows)

    def both(batch_df, batch_id):
        rows = sorted((r.partition, r.offset, bytes(r.key), bytes(r.value))
                      for r in batch_df.select("partition", "offset", "key", "value").collect())
        direct = reader.read(batch_id)
        batches.append((batch_id, rows, None if direct is None else sorted((r[3], r[4], r[0], r[1]) for r in direct)))

    def by_batch() -> dict[int, list]:
        """Each batch's rows once: a batch stopped before its commit is replayed under its id."""
        return {batch_id: rows for batch_id, rows, _ in batches}

    def delivered() -> int:
        return sum(len(rows) for rows in by_batch().values())

    def run(rounds: list[int], tag: str) -> list:
        query = (read_kafka_stream(spark, kafka_broker, topic=unique_topic).writeStream.foreachBatch(both)
                 .option("checkpointLocation", str(checkpoint)).trigger(processingTime="0.2 seconds").start())
        acked = []
        try:
            for index, count in enumerate(rounds):
                acked += produce(unique_topic, count, f"{tag}{index}")
                expected = len(produced) + len(acked)
                deadline = time.monotonic() + QUERY_TIMEOUT_S
                while delivered() < expected:
                    assert query.exception() is None and time.monotonic() < deadline, (delivered(), expected)
                    time.sleep(0.1)
        finally:
            query.stop()
            close_read_consumers()
        return acked

    produced: list = []
    produced += run([12, 9, 7], "first")
    produced += run([5], "restarted")
    assert batches[0][0] == 0 and batches[0][2] is None  # the first batch's start is not logged: collect
    later = [(rows, direct) for batch_id, rows, direct in batches if batch_id > 0 and rows]
    assert len(later) >= 3 and all(direct == rows for rows, direct in later)
    assert all(rows == by_batch()[batch_id] for batch_id, rows, _ in batches)  # a replay reads the same records
    assert sorted(row for rows in by_batch().values() for row in rows) == sorted(produced)


@pytest.mark.slow
def test_produce_to_visible_latency_with_a_1s_trigger(spark, kafka_broker, unique_topic, produce, tmp_path,
                                                      record_property):
    df = read_kafka_stream(spark, kafka_broker, topic=unique_topic)
    collector = Collector()
    query = start_query(df, collector, tmp_path / "checkpoint", trigger_s=1.0)
    latencies = []
    try:
        wait_until_started(query)
        for sample in range(5):
            sent_at = time.monotonic()
            produced = produce(unique_topic, 10, f"latency{sample}")
            last_key = produced[-1][2]
            collector.wait_for(lambda rows: any(row[2] == last_key for row in rows), query=query)
            arrived_at = next(at for at, rows in collector.arrivals if any(row[2] == last_key for row in rows))
            latencies.append(round(arrived_at - sent_at, 2))
    finally:
        query.stop()
    record_property("produce_to_visible_s", latencies)
    print(f"produce -> visible with a 1 s trigger (s): {latencies}")
    assert max(latencies) < 20, latencies
