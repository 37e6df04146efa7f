"""Run the real-time query: start it, supervise it until a signal or a deadline, stop everything.

``run`` is what the spark-submit entry ``spark_jobs/streaming_recommendations.py`` calls.
The query reads the events topic (``kafka_source.read_kafka_stream``: the native
connector or the Python source, same columns) and hands each micro-batch to a
``batch.RecommendationStream`` (``foreachBatch``), which runs it on the executors or on
the driver (``Settings.stream_execution``). While it runs, ``supervise`` keeps
the heartbeat (``progress.Supervisor``) every ``HEARTBEAT_INTERVAL_S``; SIGTERM/SIGINT
stop the query between batches.

Latency: with the default 0.1 s trigger, batches run back to back while events flow;
each batch's time is spread over the steps recorded in ``stream_metrics.step_seconds``.

Bounded batches: a batch reads at most ``Settings.stream_max_records_per_batch`` records
(``maxOffsetsPerTrigger`` of either Kafka source; ``batch_record_limit``), so a backlog
left by an outage drains in batches of that size instead of one batch the size of the
backlog on the driver (``benchmarks/bench_stream_backlog.py`` measures both).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo.database import Database

from fma_platform.settings import Settings
from fma_platform.stream_status import HEARTBEAT_INTERVAL_S, QUERY_NAME
from spark_jobs.streaming import executors
from spark_jobs.streaming.batch import RecommendationStream, StreamConfig
from spark_jobs.streaming.errors import StreamingJobError
from spark_jobs.streaming.progress import Supervisor

log = logging.getLogger(__name__)

APP_NAME = "streaming-recommendations"
# Micro-batch interval. Below the batch's own duration, batches run back to back while
# events flow (no wait for a trigger); when idle the job looks for new offsets this often.
DEFAULT_TRIGGER_S = 0.1
# Records per read task of the Python Kafka source when the executors do the per-record work:
# a small batch stays one task (latency), a large one spreads over the Kafka partitions.
EXECUTOR_RECORDS_PER_TASK = executors.SINGLE_TASK_RECORDS


def start_stream(
    spark,
    settings: Settings,
    *,
    db: Database,
    checkpoint: Path,
    topic: str | None = None,
    trigger_seconds: float = DEFAULT_TRIGGER_S,
    starting_offsets: str = "earliest",
    max_offsets_per_trigger: int | None = None,
    config: StreamConfig | None = None,
    query_name: str = QUERY_NAME,
    wrap_handler: Callable | None = None,
):
    """Start the query; return ``(query, stream)`` (the caller stops the query).

    ``max_offsets_per_trigger``: most records per batch (``batch_record_limit``: None takes
    the settings' bound, 0 none). ``wrap_handler(stream)`` may return another
    ``foreachBatch`` function around the stream (tests use it to crash a batch half-way).
    """
    from spark_jobs.streaming.kafka_source import driver_batch_reader, read_kafka_stream

    if trigger_seconds < 0:
        raise StreamingJobError(f"the trigger interval must be >= 0 s, got {trigger_seconds}")
    topic = topic or settings.kafka_events_topic
    on_driver = settings.stream_execution == "driver"
    # The batch's offsets by the checkpoint: the driver path reads them on the driver, the
    # executors' tasks read their partitions' ranges themselves (executors.read_decode_rank).
    reader = driver_batch_reader(spark, settings, topic=topic, checkpoint=checkpoint)
    stream = RecommendationStream(db, settings, config=config, query_name=query_name, checkpoint=checkpoint,
                                  batch_reader=reader)
    if on_driver:
        stream.models.catalogue()  # load once before the first batch
    else:  # load and broadcast once, and start the Python workers, before the first batch
        log.info("executors warmed up in %.1f s", executors.warm_up(stream, spark))
    # A stateless query: a trigger without new offsets has nothing to do.
    spark.conf.set("spark.sql.streaming.noDataMicroBatches.enabled", "false")
    events = read_kafka_stream(spark, settings, topic=topic, starting_offsets=starting_offsets,
                               max_offsets_per_trigger=batch_record_limit(settings, max_offsets_per_trigger),
                               records_per_task=None if on_driver else EXECUTOR_RECORDS_PER_TASK)
    query = (
        events.writeStream.queryName(query_name)
        .foreachBatch(stream if wrap_handler is None else wrap_handler(stream))
        .option("checkpointLocation", str(checkpoint))
        .trigger(processingTime=f"{trigger_seconds} seconds")
        .start()
    )
    return query, stream


def batch_record_limit(settings: Settings, requested: int | None = None) -> int | None:
    """Most Kafka records per micro-batch: ``requested``, else ``settings.stream_max_records_per_batch``;
    None (no bound) when that is 0."""
    limit = settings.stream_max_records_per_batch if requested is None else requested
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise StreamingJobError(f"the records per batch must be an integer >= 0 (0: no bound), got {limit!r}")
    return limit or None


def supervise(query, supervisor: Supervisor, *, stop: threading.Event, run_for: float | None) -> str | None:
    """Heartbeat until ``stop`` is set, ``run_for`` seconds pass, or the query ends; its error."""
    from py4j.protocol import Py4JError
    from pyspark.errors import StreamingQueryException

    deadline = None if run_for is None else time.monotonic() + run_for
    next_beat = 0.0
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            if query.awaitTermination(0.5):
                break
            if time.monotonic() >= next_beat:
                supervisor.record_progress()
                next_beat = time.monotonic() + HEARTBEAT_INTERVAL_S
        failure = query.exception()
    except (Py4JError, StreamingQueryException):
        if not stop.is_set():
            raise
        # SIGTERM reached the JVM and the source's Python process too, and Spark is going
        # down: the batch in flight (if any) was not committed and is replayed at the next start.
        log.warning("Spark went down while stopping on a signal")
        return None
    return None if failure is None else str(failure)


def run(settings: Settings, *, checkpoint: Path, topic: str | None = None, trigger_seconds: float = DEFAULT_TRIGGER_S,
        starting_offsets: str = "earliest", max_offsets_per_trigger: int | None = None,
        run_for: float | None = None) -> dict[str, Any]:
    """Run the query until SIGTERM/SIGINT (or ``run_for`` seconds); a summary with its ``error``.

    The summary: ``{query_id, last_batch_id, last_batch, error}`` (``last_batch_id``: the
    last batch Spark reported; ``last_batch``: the last one this process handled).
    """
    from fma_platform.mongo import platform_db
    from spark_jobs.session import spark_session
    from spark_jobs.streaming.kafka_source import close_read_consumers

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    spark = spark_session(APP_NAME, settings=settings)
    spark.sparkContext.setLogLevel("WARN")  # one INFO line per task otherwise
    quiet_falling_behind_warnings(spark)
    db = platform_db(settings)
    query, stream = start_stream(
        spark, settings, db=db, checkpoint=checkpoint, topic=topic, trigger_seconds=trigger_seconds,
        starting_offsets=starting_offsets, max_offsets_per_trigger=max_offsets_per_trigger,
    )
    supervisor = Supervisor(db, query, query_name=stream.query_name)
    error = None
    try:
        error = supervise(query, supervisor, stop=stop, run_for=run_for)
    finally:
        stop_query(query)
        close_read_consumers()
        supervisor.mark_stopped(error)
        stop_spark(spark)
    return {"query_id": stream.query_id, "last_batch_id": supervisor.last_batch_id,
            "last_batch": None if stream.last_metrics is None else stream.last_metrics.batch_id, "error": error}


def stop_query(query) -> None:
    """Stop ``query``; on SIGTERM under spark-submit the JVM may already be going down."""
    from py4j.protocol import Py4JError

    try:
        query.stop()
    except Py4JError as exc:
        log.warning("stopping the query failed (JVM shutting down?): %s", exc)


def quiet_falling_behind_warnings(spark) -> None:
    """Batches longer than the short trigger are the normal case here (they then run back
    to back): Spark's "Current batch is falling behind" warning would fill the log."""
    from py4j.protocol import Py4JError

    try:
        jvm = spark.sparkContext._jvm
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
            "org.apache.spark.sql.execution.streaming.runtime.ProcessingTimeExecutor",
            jvm.org.apache.logging.log4j.Level.ERROR)
    except Py4JError as exc:
        log.warning("could not quiet the falling-behind warnings: %s", exc)


def stop_spark(spark) -> None:
    """Stop the session; under SIGTERM the JVM's shutdown hook may have stopped it already."""
    from py4j.protocol import Py4JError

    try:
        spark.stop()
    except Py4JError as exc:
        log.warning("stopping Spark failed (JVM already shut down?): %s", exc)
