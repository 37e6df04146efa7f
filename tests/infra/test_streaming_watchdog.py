"""The streaming job's lifecycle (``infra.streaming``) against the real servers and the real job.

The health check reads the heartbeat contract (``fma_platform.stream_status``). The
watchdog test makes one real ``spark-submit`` start (~20-40 s on the 2-core machine): the
watchdog must restart a job whose heartbeat says it is dead, leave a healthy one alone,
and fail without restarting anything when the job lags.
"""

from __future__ import annotations

import math
import os
import signal
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from fma_platform.contracts import Collection
from fma_platform.events import new_event
from fma_platform.kafka import ensure_topics
from fma_platform.mongo import mongo_client
from fma_platform.producer import EventProducer
from fma_platform.stream_status import Heartbeat, heartbeat_id, running_heartbeat, stopped_heartbeat_fields
from infra import process
from infra.process import ProcessRecord
from infra.streaming import (
    JOB_PATH,
    StreamingDeadError,
    StreamingLagError,
    keep_streaming_alive,
    streaming_health,
    streaming_spec,
)

# Unit embeddings, as the ETL stores them (other norms are left out as damaged): 2 is 1's
# nearest neighbour, 4 is 3's.
TRACKS = [(track, [x / math.hypot(*vector) for x in vector])
          for track, vector in ((1, [1.0, 0.0, 0.0]), (2, [0.9, 0.1, 0.0]), (3, [0.0, 1.0, 0.0]), (4, [0.0, 0.9, 0.1]))]


def test_health_reports_dead_and_lagging_jobs(mongo_db):
    with pytest.raises(StreamingDeadError, match="never ran"):
        streaming_health(mongo_db, max_lag=10, max_staleness_s=30)
    now = datetime.now(timezone.utc).replace(microsecond=0)  # MongoDB keeps milliseconds
    metrics = mongo_db[Collection.STREAM_METRICS]
    heartbeat = running_heartbeat(query_name="streaming_recommendations", query_id="q", run_id="r", is_active=True,
                                  status="Waiting for data", error=None, last_batch_id=7, end_offsets={"0": 9, "1": 4},
                                  lag={"0": 50, "1": 0}, started_at_epoch=now.timestamp() - 60, now=now)
    metrics.insert_one(heartbeat.document())
    report = streaming_health(mongo_db, max_lag=100, max_staleness_s=30, now=now + timedelta(seconds=3))
    assert (report["status"], report["total_lag"], report["last_batch_id"], report["age_s"]) == ("ok", 50, 7, 3.0)
    assert Heartbeat.from_document(metrics.find_one({"_id": heartbeat_id()})) == heartbeat
    with pytest.raises(StreamingLagError, match="50 records behind"):
        streaming_health(mongo_db, max_lag=10, max_staleness_s=30)
    with pytest.raises(StreamingDeadError, match="heartbeat"):
        streaming_health(mongo_db, max_lag=100, max_staleness_s=30, now=now + timedelta(minutes=5))
    metrics.update_one({"_id": heartbeat_id()},
                       {"$set": stopped_heartbeat_fields(query_name="streaming_recommendations", error="boom")})
    with pytest.raises(StreamingDeadError, match="boom"):
        streaming_health(mongo_db, max_lag=100, max_staleness_s=30)


def test_service_spec_runs_the_job_file_with_spark_submit(settings):
    spec = streaming_spec(settings, trigger_seconds=0.5, max_offsets_per_trigger=500)
    assert spec.command[0].endswith("spark-submit") and "local[2]" in spec.command
    assert spec.command[spec.command.index("--trigger-seconds") + 1] == "0.5"
    assert spec.command[spec.command.index("--max-offsets-per-trigger") + 1] == "500"
    assert spec.command[-5] == str(JOB_PATH) and JOB_PATH.is_file()
    assert spec.env["FMA_MONGO_PORT"] == str(settings.mongo_port) and "PYSPARK_PYTHON" in spec.env
    assert streaming_spec(settings).command[-1] == str(JOB_PATH)  # the job's own defaults otherwise


@pytest.fixture()
def watched(mongo_server, kafka_broker, tmp_path):
    """Settings of a private database, topic and state folder; the job stopped afterwards."""
    tag = uuid.uuid4().hex[:8]
    settings = mongo_server.model_copy(update={
        "mongo_db": f"test_watchdog_{tag}", "kafka_events_topic": f"test-watchdog-{tag}", "state_dir": tmp_path,
    })
    ensure_topics(settings, {settings.kafka_events_topic: 1})
    db = mongo_client(settings)[settings.mongo_db]
    db[Collection.TRACKS].insert_many([{"track_id": t, "title": f"Song {t}", "top_genre_id": 10, "listens": t}
                                       for t, _ in TRACKS])
    db[Collection.TRACK_FEATURES].insert_many([{"track_id": t, "embedding": e} for t, e in TRACKS])
    yield settings, db
    process.stop(streaming_spec(settings))
    mongo_client(settings).drop_database(settings.mongo_db)


def write_heartbeat(db, *, age_s: float, total_lag: int, is_active: bool = True) -> None:
    db[Collection.STREAM_METRICS].replace_one({"_id": heartbeat_id()}, {
        "kind": "heartbeat", "is_active": is_active, "run_id": "an-earlier-run",
        "updated_at": datetime.now(timezone.utc) - timedelta(seconds=age_s),
        "lag": {"0": total_lag}, "total_lag": total_lag,
    }, upsert=True)


@pytest.mark.slow
def test_watchdog_fails_on_lag_and_restarts_a_dead_job(watched):
    settings, db = watched
    spec = streaming_spec(settings)

    # A live job far behind the topic: an alert (the task fails), and no restart.
    write_heartbeat(db, age_s=0, total_lag=50_000)
    with pytest.raises(StreamingLagError, match="50000 records behind"):
        keep_streaming_alive(settings, max_lag=10_000)
    assert process.running_record(spec) is None

    # A job that died without a word (killed: its last heartbeat is old): restarted for real.
    write_heartbeat(db, age_s=120, total_lag=0)
    report = keep_streaming_alive(settings, max_lag=10_000, max_staleness_s=30)
    assert report["restarted"] and "ago" in report["was"]
    record = process.running_record(spec)
    assert record is not None and report["run_id"] != "an-earlier-run"

    # The restarted job works: an event becomes recommendations.
    producer = EventProducer(settings)
    try:
        played = new_event(user_id="watched", track_id=1, type="complete", position_s=30.0, listened_s=30.0,
                           track_duration_s=30.0, client_ts=datetime.now(timezone.utc), session_id="s",
                           source="simulator")
        producer.send(played)
        assert producer.flush(30)
    finally:
        producer.close()
    deadline = time.monotonic() + 60
    while (recs := db[Collection.REALTIME_RECOMMENDATIONS].find_one({"user_id": "watched"})) is None:
        assert time.monotonic() < deadline, f"no recommendations; log:\n{process.log_tail(spec.log_path)}"
        time.sleep(0.2)
    assert recs["triggered_by"] == played.event_id and recs["items"][0]["track_id"] == 2

    # Healthy now: left alone.
    again = keep_streaming_alive(settings, max_lag=10_000)
    assert not again["restarted"] and process.running_record(spec).pid == record.pid

    # Killed hard (no heartbeat update): dead once the heartbeat is stale, and restarted.
    os.killpg(record.pid, signal.SIGKILL)
    time.sleep(3)
    report = keep_streaming_alive(settings, max_lag=10_000, max_staleness_s=2)
    restarted = process.running_record(spec)
    assert report["restarted"] and restarted is not None and restarted.pid != record.pid
    assert ProcessRecord.read(spec.record_path).pid == restarted.pid
