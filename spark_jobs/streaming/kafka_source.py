"""Kafka as a Spark streaming source, with one downstream code path.

``read_kafka_stream`` returns a streaming DataFrame with exactly the columns of Spark's
native Kafka source (``KAFKA_COLUMNS``: key, value, topic, partition, offset, timestamp,
timestampType). It uses the native ``format("kafka")`` when the spark-sql-kafka connector
is on the classpath (production, ``--packages``), and otherwise this module's Python data
source ``fma_kafka`` over kafka-python (the embedded stack, where Maven is unreachable).
Jobs read from it and never need to know which one ran.

The Python source
-----------------
- A batch reads ``[start, end)`` offsets of each Kafka partition. A small batch (at most
  ``RECORDS_PER_TASK`` records, or the option ``recordsPerTask``) is one Spark task
  reading every partition in turn; a larger one is one task per Kafka partition. At a few
  hundred events per second, scheduling tasks costs more than reading the records; a job
  whose tasks do the per-record work (the streaming job on the executors) asks for fewer
  records per task so large batches spread over the cores.
- Reads reuse one kafka-python consumer per Kafka partition per Python worker process
  (Spark reuses its workers), so a batch costs a seek and a fetch, not a new connection.
- The Spark offset is ``{"<partition>": next_offset}`` (partitions in numeric order, so
  equal offsets serialise equally); Spark checkpoints it, so a restarted query resumes
  exactly where its last committed batch ended.
- ``startingOffsets``: ``earliest`` (the platform default: nothing produced before the
  query started is lost) or ``latest``. It applies to a query's first start only.
- A topic that does not exist yet gives the empty offset ``{}``. Partitions that appear
  later (a new topic, or partitions added to one) are read from their earliest offset,
  as the native source does: a batch first adds them at their beginning offset, the
  next batches read them.
- Offsets are looked up with explicit assignment: no consumer group, no commits.
- ``read`` fetches exactly ``[start, end)`` of one partition or raises
  ``KafkaSourceError`` (records gone, or not fetched within ``kafkaConsumer.pollTimeoutMs``):
  never fewer rows in silence.
- ``maxOffsetsPerTrigger`` bounds a batch, shared between partitions by their lag (the
  streaming job always sets it, for either source: ``job.batch_record_limit``).
- ``Trigger.AvailableNow`` is supported (the target is the end offsets at query start).

Reading a micro-batch on the driver
-----------------------------------
``DriverBatchReader`` reads a batch's records in the driver process from the offsets Spark
wrote for it in the query's offset log (``<checkpoint>/offsets/<batch id>``, written
before the batch runs; the previous batch's entry is its start). A ``foreachBatch``
handler can use it instead of collecting the batch DataFrame: a small batch then costs
a seek and a fetch instead of a Spark job. The offsets are still Spark's, checkpointed
and replayed by Spark, so a replayed batch reads exactly the same records. It answers
None (collect instead) for the first batch (its start is not in the log) and for an
offset log it does not recognise. Spark never runs the scan of such a batch, so its
progress reports 0 input rows for it: count rows in the handler.

Known limit: with ``latest``, a query stopped before its first batch has no offsets in
its checkpoint, so a restart takes "latest" again (the native source records them).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)

from fma_platform.kafka import (
    SPARK_SECURITY_OPTIONS,
    STREAMING_GROUP_PREFIX,
    KafkaConfigError,
    kafka_client_config_from_spark_options,
    spark_kafka_options,
)
from fma_platform.settings import Settings
from spark_jobs.streaming.errors import StreamingError

log = logging.getLogger(__name__)

PYTHON_FORMAT = "fma_kafka"
NATIVE_FORMAT = "kafka"
NATIVE_PROVIDER_CLASS = "org.apache.spark.sql.kafka010.KafkaSourceProvider"
# The native source's columns, in its order, with its types.
KAFKA_COLUMNS: tuple[str, ...] = ("key", "value", "topic", "partition", "offset", "timestamp", "timestampType")
KAFKA_SCHEMA_DDL = (
    "key BINARY, value BINARY, topic STRING, partition INT, offset BIGINT, "
    "timestamp TIMESTAMP, timestampType INT"
)
STARTING_OFFSETS = ("earliest", "latest")
SOURCE_CHOICES = ("auto", "native", "python")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_OFFSET_LOOKUP_ATTEMPTS = 3
_OFFSET_LOOKUP_BACKOFF_S = 0.5
RECORDS_PER_TASK = 5_000
# A cached read consumer prefetches after each read; a short broker-side wait keeps that
# idle fetch from delaying the next batch's first fetch.
_READ_FETCH_MAX_WAIT_MS = 10


class KafkaSourceError(StreamingError):
    """The Kafka source cannot deliver what it promised (bad option, lost or unfetchable data)."""


# --- options -----------------------------------------------------------------------------
@dataclass(frozen=True)
class KafkaSourceOptions:
    """The validated options of one ``fma_kafka`` stream (named as the native source names them)."""

    bootstrap_servers: str
    topic: str
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int | None = None
    poll_timeout_ms: int = 30_000
    request_timeout_ms: int = 10_000
    records_per_task: int = RECORDS_PER_TASK
    # The kafka.* TLS/SASL options as given (fma_platform.kafka.spark_kafka_options); the JAAS
    # line holds the password, so they stay out of repr (and of every log that shows options).
    security: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def client_config(self) -> dict:
        """kafka-python arguments for these options: brokers, TLS and SASL."""
        return kafka_client_config_from_spark_options({"kafka.bootstrap.servers": self.bootstrap_servers,
                                                       **dict(self.security)})

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> KafkaSourceOptions:
        """Parse Spark's (case-insensitive) options; raise ``KafkaSourceError`` on bad ones."""
        options = {key.lower(): value for key, value in options.items()}
        for unsupported in ("assign", "subscribepattern", "endingoffsets", "startingoffsetsbytimestamp"):
            if unsupported in options:
                raise KafkaSourceError(f"option {unsupported!r} is not supported by {PYTHON_FORMAT}: use 'subscribe'")
        known_kafka = {"kafka.bootstrap.servers", "kafka.request.timeout.ms"} | SPARK_SECURITY_OPTIONS
        unknown_kafka = sorted(key for key in options if key.startswith("kafka.") and key not in known_kafka)
        if unknown_kafka:
            raise KafkaSourceError(f"Kafka client options {unknown_kafka} are not supported by {PYTHON_FORMAT}")
        bootstrap = options.get("kafka.bootstrap.servers", "").strip()
        topic = options.get("subscribe", "").strip()
        if not bootstrap:
            raise KafkaSourceError("option 'kafka.bootstrap.servers' is required")
        if not topic or "," in topic:
            raise KafkaSourceError(f"option 'subscribe' must name exactly one topic, got {topic!r}")
        security = tuple(sorted((key, value) for key, value in options.items() if key in SPARK_SECURITY_OPTIONS))
        try:
            kafka_client_config_from_spark_options({"kafka.bootstrap.servers": bootstrap, **dict(security)})
        except KafkaConfigError as exc:
            raise KafkaSourceError(str(exc)) from exc
        return cls(
            bootstrap_servers=bootstrap,
            topic=topic,
            security=security,
            starting_offsets=check_starting_offsets(options.get("startingoffsets", "earliest")),
            max_offsets_per_trigger=check_max_offsets(options.get("maxoffsetspertrigger")),
            poll_timeout_ms=_positive_int(options, "kafkaconsumer.polltimeoutms", 30_000),
            request_timeout_ms=_positive_int(options, "kafka.request.timeout.ms", 10_000),
            records_per_task=_positive_int(options, "recordspertask", RECORDS_PER_TASK),
        )


def check_starting_offsets(value: str) -> str:
    """``earliest`` or ``latest`` (case-insensitive), else ``KafkaSourceError``."""
    normalised = str(value).strip().lower()
    if normalised not in STARTING_OFFSETS:
        raise KafkaSourceError(f"startingOffsets must be one of {STARTING_OFFSETS}, got {value!r}")
    return normalised


def check_max_offsets(value: int | str | None) -> int | None:
    """A positive batch bound or None, else ``KafkaSourceError``."""
    if value is None:
        return None
    try:
        bound = int(value)
    except (TypeError, ValueError) as exc:
        raise KafkaSourceError(f"maxOffsetsPerTrigger must be a positive integer, got {value!r}") from exc
    if bound < 1:
        raise KafkaSourceError(f"maxOffsetsPerTrigger must be a positive integer, got {value!r}")
    return bound


def _positive_int(options: Mapping[str, str], name: str, default: int) -> int:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise KafkaSourceError(f"option {name!r} must be a positive integer, got {raw!r}") from exc
    if value < 1:
        raise KafkaSourceError(f"option {name!r} must be a positive integer, got {raw!r}")
    return value


# --- offsets (pure) ----------------------------------------------------------------------
def to_spark_offset(positions: Mapping[int, int]) -> dict[str, int]:
    """``{partition: next_offset}`` as the Spark offset: string keys in numeric order."""
    return {str(partition): int(positions[partition]) for partition in sorted(positions)}


def from_spark_offset(offset: Mapping[str, int]) -> dict[int, int]:
    """The inverse of ``to_spark_offset``."""
    return {int(partition): int(position) for partition, position in offset.items()}


def cap_offsets(start: Mapping[int, int], available: Mapping[int, int], max_rows: int | None) -> dict[int, int]:
    """End offsets of the partitions of ``start`` with at most ``max_rows`` records in total.

    The bound is shared in proportion to each partition's lag (the remainder goes to the
    largest leftover lags, then the lowest partition), so every partition keeps moving
    and a batch holds exactly ``min(max_rows, total lag)`` offsets.
    """
    lags = {partition: max(available[partition] - start[partition], 0) for partition in start}
    total = sum(lags.values())
    if max_rows is None or total <= max_rows:
        return {partition: start[partition] + lags[partition] for partition in start}
    shares = {partition: lag * max_rows // total for partition, lag in lags.items()}
    remainder = max_rows - sum(shares.values())
    by_leftover = sorted(lags, key=lambda partition: (-(lags[partition] - shares[partition]), partition))
    for partition in by_leftover:
        if remainder == 0:
            break
        if shares[partition] < lags[partition]:
            shares[partition] += 1
            remainder -= 1
    return {partition: start[partition] + shares[partition] for partition in start}


# --- Kafka access ------------------------------------------------------------------------
def _consumer(options: KafkaSourceOptions, *, client_id: str, **config):
    """A group-less kafka-python consumer: explicit assignment only, nothing committed."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        return KafkaConsumer(
            **options.client_config(),
            client_id=client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",  # a position that is gone is an error, never a silent jump
            allow_auto_create_topics=False,
            request_timeout_ms=options.request_timeout_ms,
            bootstrap_timeout_ms=options.request_timeout_ms,
            **config,
        )
    except KafkaError as exc:
        raise KafkaSourceError(f"cannot reach Kafka at {options.bootstrap_servers}: {exc}") from exc


class _ReadConsumers:
    """Read consumers of this process, one per (servers, topic, partition), reused across tasks.

    A consumer is taken out while a read uses it (a concurrent read of the same partition
    gets a new one) and put back only after a read that ended normally: after an error
    its state is unknown, so it is closed.
    """

    def __init__(self) -> None:
        self._idle: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def take(self, options: KafkaSourceOptions, tp) -> tuple[tuple, object]:
        key = (options.bootstrap_servers, options.security, options.request_timeout_ms, tp.topic, tp.partition)
        with self._lock:
            consumer = self._idle.pop(key, None)
        if consumer is None:
            consumer = _consumer(options, client_id=f"fma-spark-read-{tp.topic}-{tp.partition}",
                                 fetch_max_wait_ms=_READ_FETCH_MAX_WAIT_MS)
            consumer.assign([tp])
        return key, consumer

    def give_back(self, key: tuple, consumer) -> None:
        with self._lock:
            spare = self._idle.pop(key, None)
            self._idle[key] = consumer
        if spare is not None:
            spare.close()

    def close_all(self) -> None:
        with self._lock:
            idle, self._idle = list(self._idle.values()), {}
        for consumer in idle:
            consumer.close()


_read_consumers = _ReadConsumers()


def close_read_consumers() -> None:
    """Close this process's cached read consumers (a driver that stops reading; tests)."""
    _read_consumers.close_all()


class _OffsetLookup:
    """Partitions and their beginning/end offsets, through one driver-side consumer."""

    def __init__(self, options: KafkaSourceOptions) -> None:
        self._options = options
        self._consumer = None
        self._probed: dict[tuple[int, int], int] = {}  # (partition, reported end) -> true end

    def partitions(self) -> list[int]:
        """The topic's partitions, fresh from the broker ([] while the topic does not exist)."""
        consumer = self._client()
        # topics() always fetches all-topic metadata: fresh, and it never auto-creates the topic.
        if self._options.topic not in self._retry("list topics", consumer.topics):
            return []
        return sorted(consumer.partitions_for_topic(self._options.topic))

    def beginning(self, partitions: list[int]) -> dict[int, int]:
        return self._offsets("beginning_offsets", partitions)

    def end(self, partitions: list[int]) -> dict[int, int]:
        """The next offset to be written, per partition, checked against the records themselves.

        Some brokers (Tansu, the embedded stand-in) answer a ListOffsets "latest" request
        with the last record *batch*'s base offset + 1, which misses all but the first
        record of a multi-record batch. So the batch at ``reported - 1`` is fetched (once
        per reported value: a stored batch never changes) and the end is one past the
        highest offset seen. On a conforming broker this finds ``reported`` again.
        """
        reported = self._offsets("end_offsets", partitions)
        unknown = {p: end for p, end in reported.items() if end > 0 and (p, end) not in self._probed}
        if unknown:
            self._probed.update({(p, unknown[p]): end for p, end in self._probe(unknown).items()})
        return {p: self._probed.get((p, end), end) for p, end in reported.items()}

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.close()

    def _offsets(self, method: str, partitions: list[int]) -> dict[int, int]:
        from kafka import TopicPartition

        if not partitions:
            return {}
        consumer = self._client()
        topic_partitions = [TopicPartition(self._options.topic, partition) for partition in partitions]
        found = self._retry(
            f"{method} of {self._options.topic} {partitions}",
            lambda: getattr(consumer, method)(topic_partitions, timeout_ms=self._options.request_timeout_ms),
        )
        return {tp.partition: offset for tp, offset in found.items()}

    def _probe(self, reported: dict[int, int]) -> dict[int, int]:
        """One past the highest offset fetched from ``reported[p] - 1`` on, for the partitions
        where a record was found within the request timeout."""
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        consumer = self._client()
        by_tp = {TopicPartition(self._options.topic, p): p for p in reported}
        found: dict[int, int] = {}
        try:
            consumer.assign(list(by_tp))
            for tp, partition in by_tp.items():
                consumer.seek(tp, reported[partition] - 1)
            deadline = time.monotonic() + self._options.request_timeout_ms / 1000
            while len(found) < len(by_tp) and time.monotonic() < deadline:
                # One fetch holds the whole batch at the seek offset (brokers never split a batch).
                for tp, records in consumer.poll(timeout_ms=200, max_records=1_000_000).items():
                    if records and by_tp[tp] not in found:
                        found[by_tp[tp]] = max(reported[by_tp[tp]], max(r.offset for r in records) + 1)
        except KafkaError as exc:
            raise KafkaSourceError(f"checking the end offsets of {self._options.topic} {sorted(reported)} "
                                   f"failed: {exc}") from exc
        finally:
            consumer.unsubscribe()
        missed = sorted(set(reported) - set(found))
        if missed:  # e.g. a transaction marker or a deleted record at reported - 1
            log.info("%s: no record just before the end of partitions %s; using the reported end offsets",
                     self._options.topic, missed)
        return found

    def _client(self):
        if self._consumer is None:
            self._consumer = _consumer(self._options, client_id=f"fma-spark-offsets-{self._options.topic}")
        return self._consumer

    def _retry(self, what: str, call):
        """``call()``, retried a few times on Kafka errors (a fresh topic has no leader yet)."""
        from kafka.errors import KafkaError

        for attempt in range(1, _OFFSET_LOOKUP_ATTEMPTS + 1):
            try:
                return call()
            except KafkaError as exc:
                if attempt == _OFFSET_LOOKUP_ATTEMPTS:
                    raise KafkaSourceError(
                        f"{what} failed {attempt} times at {self._options.bootstrap_servers}: {exc}"
                    ) from exc
                log.warning("%s failed (attempt %d, retrying): %s", what, attempt, exc)
                time.sleep(_OFFSET_LOOKUP_BACKOFF_S * attempt)
        raise AssertionError("unreachable")


class KafkaOffsetRange(InputPartition):
    """Offsets ``[start, end)`` of one Kafka partition."""

    def __init__(self, topic: str, partition: int, start: int, end: int) -> None:
        super().__init__((topic, partition, start, end))
        self.topic = topic
        self.partition = partition
        self.start = start
        self.end = end

    @property
    def size(self) -> int:
        return max(self.end - self.start, 0)


class KafkaReadTask(InputPartition):
    """The offset ranges one Spark task reads, in order."""

    def __init__(self, ranges: list[KafkaOffsetRange]) -> None:
        super().__init__(tuple(r.value for r in ranges))
        self.ranges = list(ranges)


def offset_ranges(topic: str, start: Mapping[int, int], end: Mapping[int, int]) -> list[KafkaOffsetRange]:
    """The non-empty ``[start, end)`` range of each partition, in partition order. A partition
    missing from ``start`` joined at ``end``: nothing to read yet."""
    ranges = []
    for partition, end_position in sorted(end.items()):
        start_position = start.get(partition, end_position)
        if end_position > start_position:
            ranges.append(KafkaOffsetRange(topic, partition, start_position, end_position))
    return ranges


def plan_read_tasks(ranges: list[KafkaOffsetRange], *, records_per_task: int = RECORDS_PER_TASK) -> list[KafkaReadTask]:
    """One task for a batch of at most ``records_per_task`` records, else one per range."""
    if not ranges:
        return []
    if sum(r.size for r in ranges) <= records_per_task:
        return [KafkaReadTask(ranges)]
    return [KafkaReadTask([r]) for r in ranges]


def read_offset_range(options: KafkaSourceOptions, offset_range: KafkaOffsetRange) -> Iterator[tuple]:
    """Rows (native Kafka columns) of exactly the records in ``offset_range``.

    Raises ``KafkaSourceError`` when the records are no longer on the broker or when no
    progress is made for ``poll_timeout_ms``: a batch is complete or it fails.
    """
    from kafka import TopicPartition
    from kafka.errors import KafkaError, OffsetOutOfRangeError

    if offset_range.start >= offset_range.end:
        return
    where = f"{offset_range.topic}-{offset_range.partition} [{offset_range.start}, {offset_range.end})"
    tp = TopicPartition(offset_range.topic, offset_range.partition)
    key, consumer = _read_consumers.take(options, tp)
    finished = False
    try:
        consumer.seek(tp, offset_range.start)
        position = offset_range.start
        idle_deadline = time.monotonic() + options.poll_timeout_ms / 1000
        while position < offset_range.end:
            remaining_ms = int((idle_deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                raise KafkaSourceError(
                    f"reading {where}: only offsets before {position} arrived within "
                    f"{options.poll_timeout_ms} ms (kafkaConsumer.pollTimeoutMs)"
                )
            try:
                fetched = consumer.poll(timeout_ms=min(remaining_ms, 1000), max_records=500).get(tp, [])
            except OffsetOutOfRangeError as exc:
                raise KafkaSourceError(f"reading {where}: offset {position} is no longer on the broker "
                                       f"(data lost: retention, or the topic was recreated): {exc}") from exc
            except KafkaError as exc:
                raise KafkaSourceError(f"reading {where} failed at offset {position}: {exc}") from exc
            for record in fetched:
                if record.offset >= offset_range.end:
                    finished = True
                    return
                yield _to_row(record)
            # The position also moves past offsets without a record (compaction, markers).
            new_position = consumer.position(tp, timeout_ms=options.request_timeout_ms)
            if new_position is not None and new_position > position:
                position = new_position
                idle_deadline = time.monotonic() + options.poll_timeout_ms / 1000
        finished = True
    finally:
        if finished:
            _read_consumers.give_back(key, consumer)
        else:  # an error, or the reader stopped early: the consumer's state is unknown
            consumer.close()


def _to_row(record) -> tuple:
    timestamp = _EPOCH + timedelta(milliseconds=record.timestamp)
    return (record.key, record.value, record.topic, record.partition, record.offset, timestamp,
            record.timestamp_type)


# --- the data source ---------------------------------------------------------------------
class KafkaDataSource(DataSource):
    """``spark.readStream.format("fma_kafka")``: Kafka through kafka-python (see the module doc)."""

    @classmethod
    def name(cls) -> str:
        return PYTHON_FORMAT

    def schema(self) -> str:
        return KAFKA_SCHEMA_DDL

    def streamReader(self, schema) -> KafkaStreamReader:
        return KafkaStreamReader(KafkaSourceOptions.from_options(self.options))


class KafkaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Plans batches on the driver (offset lookups) and reads them in the Python workers."""

    def __init__(self, options: KafkaSourceOptions) -> None:
        self.options = options
        self._lookup = _OffsetLookup(options)
        self._target: dict[int, int] | None = None  # Trigger.AvailableNow's end
        self._last_available: dict[int, int] | None = None

    def initialOffset(self) -> dict:
        partitions = self._lookup.partitions()
        if self.options.starting_offsets == "latest":
            positions = self._lookup.end(partitions)
        else:
            positions = self._lookup.beginning(partitions)
        log.info("%s: initial offsets (%s) %s", self.options.topic, self.options.starting_offsets, positions)
        return to_spark_offset(positions)

    def getDefaultReadLimit(self) -> ReadLimit:
        if self.options.max_offsets_per_trigger is None:
            return ReadAllAvailable()
        return ReadMaxRows(self.options.max_offsets_per_trigger)

    def prepareForTriggerAvailableNow(self) -> None:
        self._target = self._available()

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        start_positions = from_spark_offset(start)
        available = self._target if self._target is not None else self._available()
        self._last_available = available
        vanished = sorted(set(start_positions) - set(available))
        if vanished:
            raise KafkaSourceError(f"partitions {vanished} of topic {self.options.topic!r} disappeared "
                                   "(topic deleted or recreated?)")
        went_back = {p: (start_positions[p], available[p]) for p in start_positions if available[p] < start_positions[p]}
        if went_back:
            raise KafkaSourceError(
                f"topic {self.options.topic!r} lost data: end offsets fell below the query's "
                f"position ({{partition: (position, end)}} = {went_back}); was the broker reset?"
            )
        max_rows = limit.max_rows if isinstance(limit, ReadMaxRows) else None
        end = cap_offsets(start_positions, available, max_rows)
        # New partitions join at their beginning offset; the next batches read them.
        end.update(self._lookup.beginning(sorted(set(available) - set(start_positions))))
        return to_spark_offset(end)

    def reportLatestOffset(self) -> dict | None:
        return None if self._last_available is None else to_spark_offset(self._last_available)

    def partitions(self, start: dict, end: dict) -> list[KafkaReadTask]:
        return plan_read_tasks(offset_ranges(self.options.topic, from_spark_offset(start), from_spark_offset(end)),
                               records_per_task=self.options.records_per_task)

    def read(self, partition: KafkaReadTask) -> Iterator[tuple]:
        for offset_range in partition.ranges:
            yield from read_offset_range(self.options, offset_range)

    def commit(self, end: dict) -> None:
        """Nothing to do: Spark's checkpoint holds the offsets (no consumer-group commits)."""

    def stop(self) -> None:
        self._lookup.close()

    def _available(self) -> dict[int, int]:
        return self._lookup.end(self._lookup.partitions())


# --- reading a micro-batch on the driver ---------------------------------------------------
def logged_batch_offsets(checkpoint: Path, batch_id: int) -> dict[int, int] | None:
    """End offsets of micro-batch ``batch_id`` as Spark's offset log holds them; None when the
    entry is missing or is not the single-source ``v1`` entry of this source."""
    try:
        lines = (Path(checkpoint) / "offsets" / str(batch_id)).read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) != 3 or lines[0] != "v1":  # version, batch metadata, one source's offset
        return None
    try:
        offset = json.loads(lines[2])
    except ValueError:
        return None
    if not isinstance(offset, dict) or not all(isinstance(v, int) and str(k).isdigit() for k, v in offset.items()):
        return None  # e.g. the native source's {"topic": {"0": n}}
    return from_spark_offset(offset)


class DriverBatchReader:
    """A micro-batch's rows (native Kafka columns), read in this process (see the module doc)."""

    def __init__(self, options: KafkaSourceOptions, checkpoint: Path) -> None:
        self.options = options
        self.checkpoint = Path(checkpoint)

    def read(self, batch_id: int) -> list[tuple] | None:
        """Exactly the records of batch ``batch_id``, or None when its offsets are not known."""
        if batch_id < 1:
            return None
        end = logged_batch_offsets(self.checkpoint, batch_id)
        start = logged_batch_offsets(self.checkpoint, batch_id - 1)
        if end is None or start is None:
            return None
        return [row for offset_range in offset_ranges(self.options.topic, start, end)
                for row in read_offset_range(self.options, offset_range)]


# --- one entry point for jobs ------------------------------------------------------------
def native_kafka_available(spark: SparkSession) -> bool:
    """Whether the spark-sql-kafka connector is on the driver's classpath (classic sessions)."""
    jvm = getattr(spark, "_jvm", None)
    if jvm is None:  # Spark Connect: no JVM to ask
        return False
    return bool(jvm.org.apache.spark.util.Utils.classIsLoadable(NATIVE_PROVIDER_CLASS))


def choose_kafka_source(spark: SparkSession, source: str = "auto") -> str:
    """``native`` or ``python``: ``auto`` picks native when the connector is present."""
    if source not in SOURCE_CHOICES:
        raise KafkaSourceError(f"Kafka source must be one of {SOURCE_CHOICES}, got {source!r}")
    native = native_kafka_available(spark)
    if source == "native" and not native:
        raise KafkaSourceError(f"the native Kafka source was asked for, but {NATIVE_PROVIDER_CLASS} is not on "
                               "the classpath (spark-submit --packages org.apache.spark:spark-sql-kafka-0-10_...)")
    if source == "auto":
        return "native" if native else "python"
    return source


def _chosen_source(spark: SparkSession, settings: Settings, source: str | None) -> str:
    return choose_kafka_source(spark, source or settings.spark_kafka_source)


def read_kafka_stream(
    spark: SparkSession,
    settings: Settings,
    *,
    topic: str,
    starting_offsets: str = "earliest",
    max_offsets_per_trigger: int | None = None,
    source: str | None = None,
    records_per_task: int | None = None,
) -> DataFrame:
    """A streaming DataFrame of ``topic`` with the native Kafka columns, from either source.

    ``source`` is ``auto`` (default: native when the connector is on the classpath),
    ``native`` or ``python``; when None it comes from the setting ``spark_kafka_source``
    (``FMA_SPARK_KAFKA_SOURCE``, default ``auto``). ``records_per_task``: the Python
    source's ``recordsPerTask`` (the native source plans its own tasks).
    """
    starting_offsets = check_starting_offsets(starting_offsets)
    max_offsets_per_trigger = check_max_offsets(max_offsets_per_trigger)
    chosen = _chosen_source(spark, settings, source)
    if chosen == "python":
        spark.dataSource.register(KafkaDataSource)
    reader = (
        spark.readStream.format(NATIVE_FORMAT if chosen == "native" else PYTHON_FORMAT)
        .options(**spark_kafka_options(settings))
        .option("subscribe", topic)
        .option("groupIdPrefix", STREAMING_GROUP_PREFIX)  # the only groups the broker's ACLs allow it
        .option("startingOffsets", starting_offsets)
    )
    if max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    if records_per_task is not None and chosen == "python":
        reader = reader.option("recordsPerTask", str(records_per_task))
    log.info("reading Kafka topic %s with the %s source (startingOffsets=%s)", topic, chosen, starting_offsets)
    return reader.load().select(*KAFKA_COLUMNS)


def driver_batch_reader(spark: SparkSession, settings: Settings, *, topic: str, checkpoint: Path,
                        source: str | None = None) -> DriverBatchReader | None:
    """A ``DriverBatchReader`` for the stream ``read_kafka_stream`` gives with the same
    arguments; None when that stream is the native source (its offsets are nested by topic)."""
    if _chosen_source(spark, settings, source) != "python":
        return None
    return DriverBatchReader(KafkaSourceOptions.from_options({**spark_kafka_options(settings), "subscribe": topic}),
                             checkpoint)
