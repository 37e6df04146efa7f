"""Fault: a backlog waits on the topic when the job starts (after an outage). It must drain in
batches of at most the configured number of records, each event stored exactly once.

The real query on the shared Spark session, the session's Tansu broker and SecantusDB;
the record counts come from the job's own ``stream_metrics`` batch documents. The 50,000
event backlog and the driver's memory with and without the bound are measured by
``benchmarks/bench_stream_backlog.py``.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone

import pytest

from fma_platform.contracts import Collection
from fma_platform.producer import EventProducer
from fma_platform.stream_status import BATCH_KIND, INPUT_ROWS, KIND
from spark_jobs.streaming.batch import StreamConfig
from spark_jobs.streaming.errors import StreamingJobError
from spark_jobs.streaming.job import batch_record_limit, start_stream
from spark_jobs.streaming.kafka_source import close_read_consumers
from tests.spark_jobs.streaming.conftest import CLUSTERS, PER_CLUSTER, event, seed_catalogue

BACKLOG = 6_000
BOUND = 2_000  # the setting the job reads (default 5,000): three full batches of a small backlog
LISTENERS = 40
DRAIN_TIMEOUT_S = 150


def backlog_events(count: int) -> list:
    """``count`` valid events of ``LISTENERS`` listeners over the last hour (an outage's worth)."""
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    kinds = ("play", "complete", "like", "play", "skip")
    return [
        event(f"listener-{n % LISTENERS}", 100 * (1 + n % CLUSTERS) + n % PER_CLUSTER, kinds[n % len(kinds)],
              start + timedelta(milliseconds=600 * n), listened=3.0)
        for n in range(count)
    ]


def produce_backlog(settings, topic: str, events: list) -> None:
    with EventProducer(settings, topic=topic, max_buffered=len(events)) as producer:
        for item in events:
            producer.send(item)
        assert producer.flush(120) and producer.status().sent == len(events)


def test_the_batch_bound_defaults_to_the_setting_and_zero_means_none(settings):
    assert batch_record_limit(settings) == settings.stream_max_records_per_batch == 5_000
    assert batch_record_limit(settings, 500) == 500
    assert batch_record_limit(settings.model_copy(update={"stream_max_records_per_batch": 0})) is None
    with pytest.raises(StreamingJobError, match=">= 0"):
        batch_record_limit(settings, -1)


@pytest.mark.slow
def test_a_backlog_drains_in_bounded_batches_exactly_once(spark, settings, mongo_db, unique_topic, tmp_path):
    settings = settings.model_copy(update={"stream_max_records_per_batch": BOUND})  # as FMA_STREAM_MAX_RECORDS_PER_BATCH
    limit = BOUND
    seed_catalogue(mongo_db)
    sent = backlog_events(BACKLOG)
    produce_backlog(settings, unique_topic, sent)

    query, stream = start_stream(spark, settings, db=mongo_db, checkpoint=tmp_path / "checkpoint",
                                 topic=unique_topic, trigger_seconds=0.1, config=StreamConfig(top_k=10),
                                 query_name="backlog")
    events = mongo_db[Collection.LISTENING_EVENTS]

    def finished_batches() -> list[dict]:  # a batch's metrics document is its last write
        return sorted(mongo_db[Collection.STREAM_METRICS].find({KIND: BATCH_KIND, INPUT_ROWS: {"$gt": 0}}),
                      key=lambda batch: batch["batch_id"])

    try:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while sum(batch[INPUT_ROWS] for batch in finished_batches()) < BACKLOG:
            assert query.exception() is None, query.exception()
            assert time.monotonic() < deadline, f"{events.count_documents({})} of {BACKLOG} stored"
            time.sleep(0.5)
        time.sleep(1.0)  # a few more triggers: nothing more may arrive
    finally:
        query.stop()
        close_read_consumers()

    batches = finished_batches()
    sizes = [batch[INPUT_ROWS] for batch in batches]
    print(f"records per batch (bound {limit}): {sizes}")
    assert max(sizes) <= limit
    assert len(sizes) >= math.ceil(BACKLOG / limit)
    assert sum(sizes) == BACKLOG
    assert sum(batch["new_events"] for batch in batches) == BACKLOG
    assert events.count_documents({}) == BACKLOG
    assert set(events.distinct("_id")) == {item.event_id for item in sent}


def test_compose_runs_the_job_with_a_batch_bound(settings):
    import yaml

    from fma_platform.settings import PROJECT_ROOT

    stack = yaml.safe_load((PROJECT_ROOT / "docker-compose.yaml").read_text())
    bound = int(stack["services"]["streaming"]["environment"]["FMA_STREAM_MAX_RECORDS_PER_BATCH"])
    assert batch_record_limit(settings.model_copy(update={"stream_max_records_per_batch": bound})) == bound > 0
