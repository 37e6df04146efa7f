"""Every MongoDB write of the stream, each idempotent so a replayed batch changes nothing.

* ``listening_events`` and ``dead_letters``: inserted once by their natural ``_id``
  (``fma_platform.mongo.insert_once``);
* ``realtime_recommendations``: one document per listener, replaced by each batch;
* ``trending``: window counts incremented at most once per batch (``apply_trending``) and
  each window's listener set (a set union);
* ``stream_metrics``: the batch documents, their lag and the heartbeat
  (``fma_platform.stream_status``).

Retention: ``ensure_indexes`` also keeps one TTL index per growing collection, with the
windows of the settings (``RETENTION_FIELDS``): batch documents by ``batch_time``, dead
letters by ``received_at``, events by ``stored_at`` (when the stream stored them; a
client's ``client_ts`` is never trusted to decide). The server deletes what is older:
MongoDB's TTL monitor and SecantusDB's sweeper both run every 60 s, so no pruning step
of ours is needed. Heartbeats have no ``batch_time`` and stay; events stored by another
writer without ``stored_at`` (the simulator's direct MongoDB sink) are not expired.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np
import pandas as pd
from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from fma_platform.contracts import Collection
from fma_platform.mongo import ensure_retention, insert_once, raise_unless_duplicates
from fma_platform.settings import Settings, get_settings
from fma_platform.stream_status import (
    BATCH_TIME,
    BatchMetrics,
    Heartbeat,
    batch_metrics_id,
    batch_progress_fields,
    heartbeat_id,
    stopped_heartbeat_fields,
)
from spark_jobs.streaming import taste
from spark_jobs.streaming.ranking import RankedItem
from spark_jobs.streaming.records import ValidEvent, event_documents
from spark_jobs.streaming.trending import COUNTED_TYPES, LISTENERS, trending_id, trending_increments, window_start

APPLIED_BATCHES_KEPT = 20  # only the last batch is ever replayed
STORED_AT = "stored_at"  # when the stream stored an event (its retention clock)
# collection -> (the platform's own time field the window counts from, its settings field).
RETENTION_FIELDS: dict[str, tuple[str, str]] = {
    Collection.STREAM_METRICS: (BATCH_TIME, "retention_stream_metrics_days"),
    Collection.DEAD_LETTERS: ("received_at", "retention_dead_letters_days"),
    Collection.LISTENING_EVENTS: (STORED_AT, "retention_listening_events_days"),
}


def ensure_indexes(db: Database, settings: Settings | None = None) -> None:
    """Indexes the stream's reads and upserts rely on, and the retention TTL indexes of
    ``settings`` (default: the process's settings). Idempotent; a changed window is applied."""
    db[Collection.LISTENING_EVENTS].create_index([("user_id", ASCENDING), ("client_ts", DESCENDING)])
    db[Collection.REALTIME_RECOMMENDATIONS].create_index([("user_id", ASCENDING)], unique=True)
    db[Collection.TRENDING].create_index([("window_start", ASCENDING), ("kind", ASCENDING)])
    db[Collection.STREAM_METRICS].create_index([("query_id", ASCENDING), ("batch_id", ASCENDING)])
    settings = settings or get_settings()
    for collection, (field, setting) in RETENTION_FIELDS.items():
        ensure_retention(db[collection], field, getattr(settings, setting))


# --- events and dead letters ------------------------------------------------------------------
def write_dead_letters(db: Database, documents: list[dict]) -> int:
    """Insert dead letters once per (topic, partition, offset); return how many the batch had."""
    insert_once(db[Collection.DEAD_LETTERS], documents)
    return len(documents)


def write_events(db: Database, valid: Sequence[ValidEvent], *, batch_key: str,
                 stored_at: datetime) -> list[ValidEvent]:
    """Insert the events by ``_id = event_id``; return those this batch stored first.

    Each document records its ``ingest_batch``: when a replayed batch finds its events
    already stored, the ones it stored itself the first time are still known (for the
    trending counts), while an event re-sent by a producer belongs to an earlier batch.
    ``stored_at`` (the batch's time) starts the event's retention window; a stored event
    keeps its first one.
    """
    documents = [{**document, "ingest_batch": batch_key, STORED_AT: stored_at}
                 for document in event_documents(valid)]
    collection = db[Collection.LISTENING_EVENTS]
    new_ids, duplicates = insert_once(collection, documents)
    if duplicates:
        mine = collection.find({"_id": {"$in": duplicates}, "ingest_batch": batch_key}, {"_id": 1})
        new_ids |= {document["_id"] for document in mine}
    first = {}
    for item in valid:
        if item.event.event_id in new_ids:
            first.setdefault(item.event.event_id, item)
    return list(first.values())


# --- histories and recommendations ----------------------------------------------------------
def load_histories(db: Database, user_ids: list[str], *, limit: int,
                   since: datetime | Mapping[str, datetime]) -> dict[str, pd.DataFrame]:
    """Each listener's last ``limit`` events since ``since`` (one moment, or one per listener),
    newest first; listeners without any are left out.

    One indexed query per listener (``user_id``, ``client_ts``), so a batch reads at most
    ``limit`` events per listener however many are stored: one ``$in`` query over all of
    them read every event of the window, and was a collection scan on the embedded server.
    """
    projection = {"_id": 0, **{name: 1 for name in taste.HISTORY_FIELDS}}
    collection = db[Collection.LISTENING_EVENTS]
    histories = {}
    for user_id in user_ids:
        start = since[user_id] if isinstance(since, Mapping) else since
        documents = list(collection.find({"user_id": user_id, "client_ts": {"$gte": start}}, projection)
                         .sort("client_ts", DESCENDING).limit(limit))
        if documents:
            histories[user_id] = pd.DataFrame(documents, columns=list(taste.HISTORY_FIELDS))
    return histories


class Trigger(NamedTuple):
    """A listener's newest event of the batch: what their new recommendations answer."""

    event_id: str
    client_ts: datetime


def write_recommendations(db: Database, ranked: Mapping[str, list[RankedItem]], triggers: Mapping[str, Trigger],
                          *, model_version: str, updated_at: datetime) -> int:
    """Replace each listener's ``realtime_recommendations`` (one bulk write); how many listeners.

    ``triggers`` holds each listener's newest event of the batch (``triggered_by``).
    """
    operations = [
        UpdateOne({"user_id": user_id}, {"$set": {
            "user_id": user_id,
            "items": [item.as_document() for item in ranked[user_id]],
            "triggered_by": trigger.event_id,
            "event_time": trigger.client_ts,
            "updated_at": updated_at,
            "model_version": model_version,
        }}, upsert=True)
        for user_id, trigger in triggers.items()
    ]
    if operations:
        db[Collection.REALTIME_RECOMMENDATIONS].bulk_write(operations, ordered=False)
    return len(operations)


# --- trending -------------------------------------------------------------------------------------
def update_trending(sink, stored: Sequence[ValidEvent], genres: Mapping[int, tuple[int, str]], *,
                    window: timedelta, batch_key: str) -> dict | None:
    """Add the batch's first-stored events to the trending windows of ``sink``, once; the
    newest window's listeners. No reads of ``listening_events``, so the cost does not grow
    with the window."""
    if not stored:
        return None
    events = pd.DataFrame(
        [(item.event.track_id, item.event.type.value, item.event.client_ts) for item in stored],
        columns=["track_id", "type", "client_ts"],
    )
    starts = [window_start(item.event.client_ts, window=window) for item in stored]
    newest = max(starts)
    users = {item.event.user_id for item, start in zip(stored, starts) if start == newest}
    return apply_trending_parts(sink, trending_increments(events, genres, window=window), newest, users,
                                window=window, batch_key=batch_key)


def apply_trending_parts(sink, increments: list[dict], newest: datetime | None, users: set[str], *,
                         window: timedelta, batch_key: str) -> dict | None:
    """Apply a batch's trending increments (one document per ``_id``) and add ``users`` to the
    newest window's listeners; that window's ``{window_start, window_end, users}``."""
    sink.trending(increments, batch_key=batch_key)
    if newest is None:
        return None
    return {"window_start": newest, "window_end": newest + window, "users": sink.window_listeners(newest, users)}


def merge_increments(parts: Sequence[list[dict]]) -> list[dict]:
    """Trending increments computed apart (one list per executor partition) as one document per
    ``_id`` with the counts summed: ``apply_trending`` takes one increment per document and batch."""
    counts = set(COUNTED_TYPES.values())
    merged: dict[str, dict] = {}
    for part in parts:
        for document in part:
            current = merged.get(document["_id"])
            if current is None:
                merged[document["_id"]] = dict(document)
            else:
                for name in counts:
                    current[name] += document[name]
    return [merged[key] for key in sorted(merged)]


def apply_trending(db: Database, increments: list[dict], *, batch_key: str) -> int:
    """``$inc`` each document's counts unless ``batch_key`` was applied to it; how many applied.

    ``$inc`` alone would count a replayed batch twice, so every document remembers the
    batches applied to it (``applied_batches``, the last ``APPLIED_BATCHES_KEPT``) and an
    increment whose batch is there already is refused by the filter (a duplicate key on
    the upsert).
    """
    counts = set(COUNTED_TYPES.values())
    operations = [
        UpdateOne(
            {"_id": document["_id"], "applied_batches": {"$ne": batch_key}},
            {"$inc": {name: document[name] for name in counts},
             "$set": {name: value for name, value in document.items() if name not in counts and name != "_id"},
             "$push": {"applied_batches": {"$each": [batch_key], "$slice": -APPLIED_BATCHES_KEPT}}},
            upsert=True,
        )
        for document in increments
    ]
    if not operations:
        return 0
    try:
        result = db[Collection.TRENDING].bulk_write(operations, ordered=False)
    except BulkWriteError as exc:
        raise_unless_duplicates(exc)
        return int(exc.details.get("nModified", 0)) + int(exc.details.get("nUpserted", 0))
    return result.modified_count + result.upserted_count


class WindowListeners:
    """The newest window's listener set, written only when a batch brings a listener this
    process has not written to it yet (in a busy window most batches bring none), and its
    size. A new process starts empty and writes again: the union is idempotent."""

    def __init__(self, db: Database, *, window: timedelta) -> None:
        self.db = db
        self.window = window
        self._start: datetime | None = None
        self._written: set[str] = set()
        self._count = 0

    def add(self, start: datetime, user_ids: set[str]) -> int:
        """Add ``user_ids`` to the window starting at ``start``; the window's listener count."""
        if start != self._start:
            self._start, self._written, self._count = start, set(), 0
        if not user_ids <= self._written:
            self._count = add_window_listeners(self.db, start, user_ids, window=self.window)
            self._written |= user_ids
        return self._count


def add_window_listeners(db: Database, start: datetime, user_ids: set[str], *, window: timedelta) -> int:
    """Add ``user_ids`` to the window's listener set (``trending`` kind "listeners"); its size.

    One round trip: a pipeline update unites the sets and stores their size, and only
    the size travels back (the set grows with the window).
    """
    document = db[Collection.TRENDING].find_one_and_update(
        {"_id": trending_id(LISTENERS, "all", start)},
        [{"$set": {"users": {"$setUnion": [{"$ifNull": ["$users", []]}, sorted(user_ids)]},
                   "window_start": start, "window_end": start + window, "kind": LISTENERS, "key": "all"}},
         {"$set": {"listeners": {"$size": "$users"}}}],
        projection={"_id": 0, "listeners": 1}, upsert=True, return_document=ReturnDocument.AFTER,
    )
    return int(document["listeners"])


# --- where the data writes go ---------------------------------------------------------------------
class MongoSink:
    """The platform's sink: every data write of a batch into ``db`` (the functions above)."""

    kind = "mongo"
    reads_histories = True

    def __init__(self, db: Database, *, window: timedelta | None = None) -> None:
        self.db = db
        self._listeners = None if window is None else WindowListeners(db, window=window)

    def dead_letters(self, documents: list[dict]) -> int:
        return write_dead_letters(self.db, documents)

    def events(self, valid: Sequence[ValidEvent], *, batch_key: str, stored_at: datetime) -> list[ValidEvent]:
        return write_events(self.db, valid, batch_key=batch_key, stored_at=stored_at)

    def histories(self, user_ids: list[str], *, limit: int, since, batch_history=None) -> dict[str, pd.DataFrame]:
        return load_histories(self.db, user_ids, limit=limit, since=since)

    def recommendations(self, ranked, triggers, *, model_version: str, updated_at: datetime) -> int:
        return write_recommendations(self.db, ranked, triggers, model_version=model_version, updated_at=updated_at)

    def trending(self, increments: list[dict], *, batch_key: str) -> None:
        apply_trending(self.db, increments, batch_key=batch_key)

    def window_listeners(self, start: datetime, user_ids: set[str]) -> int:
        if self._listeners is None:
            raise ValueError("this MongoSink was made without a trending window")
        return self._listeners.add(start, user_ids)


class CountingSink:
    """Benchmarks only (``FMA_STREAM_SINK=count``): counts what ``MongoSink`` would write and
    writes nothing; a listener's history is the batch's own events (``batch_history``). With
    it a benchmark measures the job's own ceiling apart from the database."""

    kind = "count"
    reads_histories = False

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self._window: tuple[datetime | None, set[str]] = (None, set())

    def dead_letters(self, documents: list[dict]) -> int:
        self.counts["dead_letters"] += len(documents)
        return len(documents)

    def events(self, valid: Sequence[ValidEvent], *, batch_key: str, stored_at: datetime) -> list[ValidEvent]:
        first: dict[str, ValidEvent] = {}
        for item in valid:
            first.setdefault(item.event.event_id, item)
        self.counts["events"] += len(first)
        return list(first.values())

    def histories(self, user_ids: list[str], *, limit: int, since, batch_history=None) -> dict[str, pd.DataFrame]:
        batch_history = batch_history or {}
        return {user_id: batch_history[user_id].head(limit) for user_id in user_ids if user_id in batch_history}

    def recommendations(self, ranked, triggers, *, model_version: str, updated_at: datetime) -> int:
        self.counts["recommendations"] += len(triggers)
        return len(triggers)

    def trending(self, increments: list[dict], *, batch_key: str) -> None:
        self.counts["trending"] += len(increments)

    def window_listeners(self, start: datetime, user_ids: set[str]) -> int:
        if start != self._window[0]:
            self._window = (start, set())
        self._window[1].update(user_ids)
        return len(self._window[1])


def make_sink(kind: str, db: Database, *, window: timedelta | None = None):
    """The sink the setting ``stream_sink`` names: ``mongo`` (into ``db``) or ``count``."""
    if kind == MongoSink.kind:
        return MongoSink(db, window=window)
    if kind == CountingSink.kind:
        return CountingSink()
    raise ValueError(f"unknown stream sink {kind!r}: use 'mongo' or 'count'")


# --- stream_metrics -------------------------------------------------------------------------------
LATENCY_BUCKET_S = 0.05
LATENCY_BUCKETS = 400  # the last bucket holds every latency from 19.95 s up


def latency_histogram(latencies_s: Sequence[float]) -> dict[str, list]:
    """``{"bucket_s", "buckets", "counts"}``: how many of ``latencies_s`` fell in each non-empty
    ``LATENCY_BUCKET_S`` bucket (``buckets`` its indexes). Summed over batches they give the
    stream's latency percentiles, which the per-batch summaries cannot."""
    values = np.clip(np.asarray(latencies_s, dtype=np.float64) // LATENCY_BUCKET_S, 0, LATENCY_BUCKETS - 1)
    buckets, counts = np.unique(values.astype(np.int64), return_counts=True)
    return {"bucket_s": LATENCY_BUCKET_S, "buckets": buckets.tolist(), "counts": counts.tolist()}


def write_batch_metrics(db: Database, metrics: BatchMetrics, *, query_id: str, query_name: str,
                        batch_time: datetime, latencies: Sequence[float] = ()) -> None:
    """Upsert the batch's ``stream_metrics`` document (its lag comes later: ``write_batch_progress``),
    with the ``latency_histogram`` of the batch's ``latencies`` (seconds)."""
    document = metrics.document(query_id=query_id, query_name=query_name, batch_time=batch_time)
    document["latency_histogram"] = latency_histogram(latencies)
    db[Collection.STREAM_METRICS].update_one({"_id": document.pop("_id")}, {"$set": document}, upsert=True)


def write_batch_progress(db: Database, query_id: str, progress: Mapping[int, dict]) -> None:
    """Add Spark's progress (``batch_progress_fields``) to batch documents, in one round trip
    (the server is shared with the player's reads)."""
    if progress:
        db[Collection.STREAM_METRICS].bulk_write(
            [UpdateOne({"_id": batch_metrics_id(query_id, batch_id)}, {"$set": batch_progress_fields(**fields)})
             for batch_id, fields in progress.items()],
            ordered=False,
        )


def write_heartbeat(db: Database, heartbeat: Heartbeat) -> None:
    document = heartbeat.document()
    db[Collection.STREAM_METRICS].update_one({"_id": document.pop("_id")}, {"$set": document}, upsert=True)


def write_stopped(db: Database, *, query_name: str, error: str | None) -> None:
    """Record in the heartbeat that the query no longer runs (and why, if it failed)."""
    db[Collection.STREAM_METRICS].update_one(
        {"_id": heartbeat_id(query_name)}, {"$set": stopped_heartbeat_fields(query_name=query_name, error=error)},
        upsert=True,
    )
