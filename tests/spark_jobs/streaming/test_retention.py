"""Retention: the stream's TTL indexes delete old stream metrics, dead letters and events and
keep new ones, with the windows of the settings, on the real SecantusDB.

SecantusDB enforces TTL indexes as MongoDB does: a background sweeper deletes expired
documents every 60 s (its config file's ``ttl_sweep_seconds`` is not passed on by
``secantusd-py``, seen in 0.7.0b3). The tests run that same sweep at once with its admin
command ``secantusAdmin.pruneTtl``; one slow test waits for the sweeper itself.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from fma_platform.contracts import Collection
from fma_platform.events import encode_event
from fma_platform.mongo import DAY_S, retention_index_name
from fma_platform.settings import Settings
from fma_platform.stream_status import BATCH_KIND, KIND, heartbeat_id
from spark_jobs.streaming.batch import RecommendationStream
from spark_jobs.streaming.sink import STORED_AT, ensure_indexes
from tests.spark_jobs.streaming.conftest import T0, event, record, seed_catalogue

SWEEPER_INTERVAL_S = 60


def sweep_now(db) -> int:
    """SecantusDB's TTL sweep, run now; the documents it deleted."""
    return int(db.client.admin.command("secantusAdmin.pruneTtl")["pruned"])


def days_ago(days: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=days)


def seed_both_sides_of_each_window(db) -> None:
    """For each window, a document just past it and one just inside it."""
    db[Collection.STREAM_METRICS].insert_many([
        {"_id": "q/1", KIND: BATCH_KIND, "batch_time": days_ago(7.1)},
        {"_id": "q/2", KIND: BATCH_KIND, "batch_time": days_ago(6.9)},
        {"_id": heartbeat_id("q"), KIND: "heartbeat", "updated_at": days_ago(400)},  # no batch_time: kept
    ])
    db[Collection.DEAD_LETTERS].insert_many([{"_id": "t/0/1", "received_at": days_ago(30.1)},
                                             {"_id": "t/0/2", "received_at": days_ago(29.9)}])
    db[Collection.LISTENING_EVENTS].insert_many([
        {"_id": "old", STORED_AT: days_ago(365.1), "client_ts": days_ago(1)},
        {"_id": "new", STORED_AT: days_ago(364.9), "client_ts": days_ago(900)},  # the client's clock is not trusted
        {"_id": "unstamped", "client_ts": days_ago(900)},  # stored by another writer: not expired
    ])


def remaining(db) -> dict[str, list]:
    return {name: sorted(db[name].distinct("_id"))
            for name in (Collection.STREAM_METRICS, Collection.DEAD_LETTERS, Collection.LISTENING_EVENTS)}


KEPT = {Collection.STREAM_METRICS: sorted([heartbeat_id("q"), "q/2"]), Collection.DEAD_LETTERS: ["t/0/2"],
        Collection.LISTENING_EVENTS: ["new", "unstamped"]}


def test_old_documents_go_and_new_ones_stay(mongo_db, settings):
    assert (settings.retention_stream_metrics_days, settings.retention_dead_letters_days,
            settings.retention_listening_events_days) == (7, 30, 365)
    ensure_indexes(mongo_db, settings)
    seed_both_sides_of_each_window(mongo_db)

    sweep_now(mongo_db)

    assert remaining(mongo_db) == KEPT
    assert sweep_now(mongo_db) == 0  # nothing else is due


@pytest.mark.slow
def test_the_server_expires_documents_by_itself(mongo_db, settings):
    ensure_indexes(mongo_db, settings)
    seed_both_sides_of_each_window(mongo_db)

    deadline = time.monotonic() + SWEEPER_INTERVAL_S + 20
    while remaining(mongo_db) != KEPT:
        assert time.monotonic() < deadline, f"no sweep within {SWEEPER_INTERVAL_S + 20} s: {remaining(mongo_db)}"
        time.sleep(1.0)


def test_a_changed_window_is_applied_and_zero_keeps_documents_forever(mongo_db, settings):
    ensure_indexes(mongo_db, settings)
    name = retention_index_name("received_at")
    assert mongo_db[Collection.DEAD_LETTERS].index_information()[name]["expireAfterSeconds"] == 30 * DAY_S

    ensure_indexes(mongo_db, settings.model_copy(update={"retention_dead_letters_days": 90}))
    assert mongo_db[Collection.DEAD_LETTERS].index_information()[name]["expireAfterSeconds"] == 90 * DAY_S

    ensure_indexes(mongo_db, settings.model_copy(update={"retention_dead_letters_days": 0}))
    assert name not in mongo_db[Collection.DEAD_LETTERS].index_information()


def test_a_retention_shorter_than_training_history_is_refused():
    with pytest.raises(ValidationError, match="training still learns from"):
        Settings(retention_listening_events_days=7)
    assert Settings(retention_listening_events_days=0).retention_listening_events_days == 0


def test_the_stream_stamps_events_with_when_it_stored_them(mongo_db, settings, tmp_path):
    seed_catalogue(mongo_db)
    stream = RecommendationStream(mongo_db, settings.model_copy(update={"state_dir": tmp_path}), checkpoint=None)
    before = datetime.now(timezone.utc)
    stream.process([record(encode_event(event("u1", 100, "play", T0)), 0), record(b"{", 1)], batch_id=0)

    stored = mongo_db[Collection.LISTENING_EVENTS].find_one()
    assert stored["client_ts"] == T0 and before - timedelta(seconds=1) <= stored[STORED_AT] <= datetime.now(timezone.utc)
    dead = mongo_db[Collection.DEAD_LETTERS].find_one()
    assert before - timedelta(seconds=1) <= dead["received_at"] <= datetime.now(timezone.utc)
