"""The real-time loop: listening events from Kafka -> fresh recommendations in MongoDB.

    spark-submit --master local[2] spark_jobs/streaming_recommendations.py \\
        [--trigger-seconds 0.1] [--checkpoint DIR] [--starting-offsets earliest] \\
        [--max-offsets-per-trigger N] [--run-for SECONDS]

A Structured Streaming query reads the events topic (``read_kafka_stream``: the native
connector or the Python source, same columns) and hands each micro-batch to
``RecommendationStream`` (``foreachBatch``), which works on the driver. It reads the
batch's records itself, from the offsets Spark logged for the batch
(``kafka_source.DriverBatchReader``: no Spark job per batch), or collects the batch
DataFrame (first batch, native source), then:

1. decode every record with the event contract; malformed payloads and unknown tracks
   go to ``dead_letters`` keyed by (topic, partition, offset) - the stream never stops
   for bad input;
2. insert the valid events into ``listening_events`` by ``_id = event_id``
   (``$setOnInsert``: a replayed batch changes nothing);
3. for every listener of the batch: a short-term taste from their last events (including
   this batch), ranked against every track embedding and blended with the ALS champion's
   score when the listener has factors; upserted into ``realtime_recommendations``;
4. add the batch's first-stored events to the 5-minute ``trending`` windows, once per
   batch (``apply_trending``);
5. write one ``stream_metrics`` document per batch (keyed by query id and batch id).

Exactly-once effect: Spark checkpoints the offsets of each batch, a batch that did not
finish is replayed with the same offsets, and every write above is idempotent.

Latency: with the default 0.1 s trigger, batches run back to back while events flow;
each batch's time is spread over the steps recorded in ``stream_metrics.step_seconds``.
The supervisor loop (``supervise``) keeps a heartbeat with the lag per partition for
the health check (``fma_platform.stream_status``) and stops the query on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

if __package__ in (None, ""):  # run as a file by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fma_platform.contracts import ALS_MODELS, FEATURE_TRANSFORM_MODELS, Collection  # noqa: E402
from fma_platform.settings import Settings, get_settings  # noqa: E402
from fma_platform.stream_status import (  # noqa: E402
    BATCH_KIND,
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_KIND,
    QUERY_NAME,
    heartbeat_id,
)
from spark_jobs import realtime  # noqa: E402

log = logging.getLogger(__name__)

APP_NAME = "streaming-recommendations"
CURRENT_POINTER = "CURRENT"
CHAMPION_POINTER = "CHAMPION"
HISTORY_FIELDS = ("track_id", "type", "listened_s", "track_duration_s", "client_ts")
DUPLICATE_KEY = 11000
APPLIED_BATCHES_KEPT = 20  # only the last batch is ever replayed
HISTORY_HALF_LIVES = 6  # older signals weigh < 2% and are not read
# Micro-batch interval. Below the batch's own duration, batches run back to back while
# events flow (no wait for a trigger); when idle the job looks for new offsets this often.
DEFAULT_TRIGGER_S = 0.1


class StreamingJobError(RuntimeError):
    """The job cannot run (bad arguments, unreadable model files, failed query)."""


@dataclass(frozen=True)
class StreamConfig:
    """Tunables of the recommendation step (see ``spark_jobs.realtime`` for their meaning)."""

    half_life_s: float = realtime.HALF_LIFE_S
    recent_events: int = realtime.RECENT_EVENTS
    exclude_recent: int = realtime.EXCLUDE_RECENT
    top_k: int = realtime.TOP_K
    als_weight: float = realtime.ALS_WEIGHT
    window: timedelta = realtime.WINDOW
    catalog_refresh_s: float = 600.0  # reload the catalog at least this often (new tracks)


# --- models ---------------------------------------------------------------------------------
def read_pointer(path: Path) -> str | None:
    """The version a pointer file names (plain text, or JSON with "version"); None if absent."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    if text.startswith("{"):
        version = json.loads(text).get("version")
        if not version:
            raise StreamingJobError(f"pointer {path} names no version: {text[:200]}")
        return str(version)
    return text or None


@dataclass(frozen=True)
class TrackCatalog:
    """Every known track id, and the tracks with embeddings as aligned arrays."""

    known_ids: frozenset[int]
    track_ids: np.ndarray  # int64, tracks with an embedding
    embeddings: np.ndarray  # float64 (n, d), unit rows
    index_of: dict[int, int]
    titles: dict[int, str]
    genres: dict[int, tuple[int, str]]  # track_id -> (top_genre_id, top_genre_title)
    popularity: np.ndarray  # listens of each embedded track
    version: str | None  # the feature transform's CURRENT (None when unknown)
    loaded_at: float


def load_track_catalog(db: Database, *, version: str | None) -> TrackCatalog:
    """Tracks and their embeddings from MongoDB (embeddings of the modal dimension only)."""
    tracks = list(db[Collection.TRACKS].find(
        {}, {"_id": 0, "track_id": 1, "title": 1, "top_genre_id": 1, "top_genre_title": 1, "listens": 1}
    ))
    titles = {int(t["track_id"]): t.get("title") or f"track {t['track_id']}" for t in tracks}
    genres = {int(t["track_id"]): (int(t["top_genre_id"]), t.get("top_genre_title") or str(t["top_genre_id"]))
              for t in tracks if t.get("top_genre_id") is not None}
    listens = {int(t["track_id"]): float(t.get("listens") or 0) for t in tracks}
    features = [f for f in db[Collection.TRACK_FEATURES].find(
        {"embedding": {"$exists": True}}, {"_id": 0, "track_id": 1, "embedding": 1}
    ) if f.get("embedding") and int(f["track_id"]) in titles]
    if features:
        dimensions = pd.Series([len(f["embedding"]) for f in features])
        modal = int(dimensions.mode().iloc[0])
        dropped = int((dimensions != modal).sum())
        if dropped:
            log.warning("%d embeddings have another dimension than %d (mixed transform versions?): ignored",
                        dropped, modal)
        features = [f for f in features if len(f["embedding"]) == modal]
    track_ids = np.array([int(f["track_id"]) for f in features], dtype=np.int64)
    if not features:  # nothing embedded yet (e.g. before the first ETL run): an empty catalogue
        log.warning("no track embeddings in %s yet: recommendations wait for the ETL", Collection.TRACK_FEATURES)
    embeddings = (np.array([f["embedding"] for f in features], dtype=np.float64) if features
                  else np.zeros((0, 1), dtype=np.float64))
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    embeddings = np.divide(embeddings, norms, out=np.zeros_like(embeddings), where=norms > 0)
    return TrackCatalog(
        known_ids=frozenset(titles),
        track_ids=track_ids,
        embeddings=embeddings,
        index_of={int(t): i for i, t in enumerate(track_ids)},
        titles=titles,
        genres=genres,
        popularity=np.array([listens[int(t)] for t in track_ids], dtype=np.float64),
        version=version,
        loaded_at=time.monotonic(),
    )


@dataclass(frozen=True)
class AlsFactors:
    """The ALS champion's factors: users by id, items aligned to a catalog's embedded tracks."""

    version: str
    user_index: dict[str, int]
    user_factors: np.ndarray
    item_factors: np.ndarray  # (n_catalog_tracks, rank), zero rows where missing
    has_item: np.ndarray  # bool

    def scores_for(self, user_id: str) -> np.ndarray | None:
        row = self.user_index.get(user_id)
        if row is None:
            return None
        return realtime.normalised_als_scores(self.user_factors[row], self.item_factors, self.has_item)


def load_als_factors(version_dir: Path, version: str, catalog: TrackCatalog) -> AlsFactors:
    """Read ``user_factors.parquet`` and ``item_factors.parquet`` (files or Spark folders)."""
    users = pd.read_parquet(version_dir / "user_factors.parquet", columns=["user_id", "features"])
    items = pd.read_parquet(version_dir / "item_factors.parquet", columns=["track_id", "features"])
    user_factors = np.array(users["features"].tolist(), dtype=np.float64)
    rank = user_factors.shape[1] if user_factors.ndim == 2 else 0
    item_factors = np.zeros((len(catalog.track_ids), rank))
    has_item = np.zeros(len(catalog.track_ids), dtype=bool)
    for track_id, features in zip(items["track_id"].astype(int), items["features"]):
        row = catalog.index_of.get(int(track_id))
        if row is not None:
            item_factors[row] = features
            has_item[row] = True
    return AlsFactors(version, {str(u): i for i, u in enumerate(users["user_id"])}, user_factors,
                      item_factors, has_item)


class ModelCache:
    """The catalog and ALS factors, reloaded only when their pointer (or the catalog) changes."""

    def __init__(self, db: Database, models_dir: Path, *, refresh_s: float) -> None:
        self._db = db
        self._models_dir = models_dir
        self._refresh_s = refresh_s
        self._catalog: TrackCatalog | None = None
        self._als: AlsFactors | None = None
        self._als_key: tuple | None = None
        self.als_error: str | None = None

    def catalog(self) -> TrackCatalog:
        version = read_pointer(self._models_dir / FEATURE_TRANSFORM_MODELS / CURRENT_POINTER)
        stale = self._catalog is None or self._catalog.version != version or (
            time.monotonic() - self._catalog.loaded_at > self._refresh_s)
        if stale:
            self._catalog = load_track_catalog(self._db, version=version)
            log.info("catalog loaded: %d tracks, %d with embeddings (transform %s)",
                     len(self._catalog.known_ids), len(self._catalog.track_ids), version)
        return self._catalog

    def reload_if_new_tracks(self, track_ids: set[int]) -> TrackCatalog:
        """Reload when ``tracks`` holds some of ``track_ids`` that the cached catalog misses."""
        catalog = self.catalog()
        missing = sorted(t for t in track_ids if t not in catalog.known_ids)
        if missing and self._db[Collection.TRACKS].count_documents({"track_id": {"$in": missing}}, limit=1):
            self._catalog = load_track_catalog(self._db, version=catalog.version)
        return self._catalog

    def als(self, catalog: TrackCatalog) -> AlsFactors | None:
        """The champion's factors, None when there is no champion (content-only ranking).

        A champion whose files cannot be read is reported in ``als_error`` (and the
        batch metrics) and ranking falls back to content only: the stream keeps going.
        """
        folder = self._models_dir / ALS_MODELS
        version = read_pointer(folder / CHAMPION_POINTER)
        key = (version, id(catalog))
        if key == self._als_key:
            return self._als
        self._als_key, self._als, self.als_error = key, None, None
        if version is not None:
            try:
                self._als = load_als_factors(folder / version, version, catalog)
            except (OSError, ValueError, KeyError) as exc:
                self.als_error = f"ALS champion {version} unreadable: {type(exc).__name__}: {exc}"
                log.error("%s; ranking by content only", self.als_error)
        return self._als


# --- the batch processor ----------------------------------------------------------------------
@dataclass
class BatchReport:
    """What one batch did (the ``stream_metrics`` document without its keys)."""

    batch_id: int
    input_rows: int = 0
    valid_events: int = 0
    new_events: int = 0
    dead_letters: int = 0
    users_updated: int = 0
    processing_seconds: float = 0.0
    collect_seconds: float | None = None  # reading the batch from Kafka into the driver
    latency_seconds: dict = field(default_factory=dict)
    step_seconds: dict = field(default_factory=dict)  # where the batch's time went (profiling)
    offsets: dict = field(default_factory=dict)
    active_listeners: dict | None = None
    model_version: str | None = None
    als_error: str | None = None


class RecommendationStream:
    """``foreachBatch`` handler: call it with ``(batch_df, batch_id)``, or ``process`` with records."""

    def __init__(self, db: Database, settings: Settings, *, config: StreamConfig | None = None,
                 query_name: str = QUERY_NAME, checkpoint: Path | None = None, batch_reader=None) -> None:
        self.db = db
        self.batch_reader = batch_reader  # a kafka_source.DriverBatchReader, or None: collect
        self.config = config or StreamConfig()
        self.query_name = query_name
        self.checkpoint = checkpoint
        self.models = ModelCache(db, settings.models_dir, refresh_s=self.config.catalog_refresh_s)
        self.window_listeners = WindowListeners(db, window=self.config.window)
        self._query_id: str | None = None
        self.last_report: BatchReport | None = None
        ensure_indexes(db)

    @property
    def query_id(self) -> str:
        """The query's id, stable across restarts (Spark keeps it in the checkpoint)."""
        if self._query_id is None and self.checkpoint is not None and (self.checkpoint / "metadata").is_file():
            self._query_id = json.loads((self.checkpoint / "metadata").read_text())["id"]
        return self._query_id or self.query_name

    def __call__(self, batch_df, batch_id: int) -> None:
        started = time.monotonic()
        records = self.read_batch(batch_df, batch_id)
        self.process(records, batch_id, collect_seconds=round(time.monotonic() - started, 4))

    def read_batch(self, batch_df, batch_id: int) -> list[realtime.KafkaRecord]:
        """The batch's records: read on the driver from the batch's logged offsets when
        possible (no Spark job for a few dozen records), else collected from ``batch_df``."""
        rows = self.batch_reader.read(batch_id) if self.batch_reader is not None else None
        if rows is not None:  # native Kafka columns: key, value, topic, partition, offset, timestamp, ...
            return [realtime.KafkaRecord(None if value is None else bytes(value), topic, int(partition),
                                         int(offset), timestamp)
                    for _, value, topic, partition, offset, timestamp, _ in rows]
        rows = batch_df.selectExpr(
            "value", "topic", "partition", "offset", "CAST(timestamp AS DOUBLE) AS ts"
        ).collect()
        return [
            realtime.KafkaRecord(
                None if row.value is None else bytes(row.value), row.topic, int(row.partition), int(row.offset),
                datetime.fromtimestamp(row.ts, tz=timezone.utc),
            )
            for row in rows
        ]

    def process(self, records: Sequence[realtime.KafkaRecord], batch_id: int, *,
                collect_seconds: float | None = None) -> BatchReport:
        """Run the five steps of the module docstring on one batch's records."""
        started = time.monotonic()
        now = datetime.now(timezone.utc)
        report = BatchReport(batch_id=batch_id, input_rows=len(records), offsets=realtime.next_offsets(records),
                             collect_seconds=collect_seconds)
        step = _StepTimer(report.step_seconds)
        catalog = self.models.reload_if_new_tracks(_track_ids_of(records))
        classified = realtime.classify_records(records, known_track_ids=catalog.known_ids, received_at=now)
        step("decode")
        report.dead_letters = write_dead_letters(self.db, classified.dead_letters)
        report.valid_events = len(classified.valid)
        batch_key = f"{self.query_id}/{batch_id}"
        stored = write_events(self.db, classified.valid, batch_key=batch_key)
        report.new_events = len(stored)
        step("store_events")
        als = self.models.als(catalog)
        report.als_error = self.models.als_error
        report.model_version = _model_version(catalog, als)
        written_at, report.users_updated = self.update_recommendations(classified.valid, catalog, als,
                                                                       report.model_version, step=step)
        report.latency_seconds = realtime.latency_summary(
            [written_at - item.record.timestamp.timestamp() for item in classified.valid]
        )
        report.active_listeners = update_trending(self.db, stored, catalog, window=self.config.window,
                                                  batch_key=batch_key, listeners=self.window_listeners)
        step("trending")
        report.processing_seconds = round(time.monotonic() - started, 4)
        write_batch_metrics(self.db, report, query_id=self.query_id, query_name=self.query_name, batch_time=now)
        self.last_report = report
        log.info("batch %d: %d rows, %d valid, %d dead letters, %d users in %.3f s", batch_id, report.input_rows,
                 report.valid_events, report.dead_letters, report.users_updated, report.processing_seconds)
        return report

    def update_recommendations(self, valid, catalog: TrackCatalog, als: AlsFactors | None,
                               model_version: str, *,
                               step: Callable[[str], None] = lambda _: None) -> tuple[float, int]:
        """Recommendations of every listener in ``valid``; (epoch when written, listeners)."""
        latest: dict[str, realtime.ValidEvent] = {}
        for item in valid:
            current = latest.get(item.event.user_id)
            if current is None or item.event.client_ts >= current.event.client_ts:
                latest[item.event.user_id] = item
        if not latest:
            return time.time(), 0
        newest = max(item.event.client_ts for item in latest.values())
        since = newest - timedelta(seconds=HISTORY_HALF_LIVES * self.config.half_life_s)
        histories = load_histories(self.db, list(latest), limit=self.config.recent_events, since=since)
        step("read_histories")
        ranked = {user_id: recommend_for(user_id, histories.get(user_id, _empty_history()), catalog, als, self.config)
                  for user_id in latest}
        step("rank")
        updated_at = datetime.now(timezone.utc)  # just before the write: latency includes the ranking
        operations = [
            UpdateOne({"user_id": user_id}, {"$set": {
                "user_id": user_id,
                "items": [item.as_document() for item in ranked[user_id]],
                "triggered_by": trigger.event.event_id,
                "event_time": trigger.event.client_ts,
                "updated_at": updated_at,
                "model_version": model_version,
            }}, upsert=True)
            for user_id, trigger in latest.items()
        ]
        self.db[Collection.REALTIME_RECOMMENDATIONS].bulk_write(operations, ordered=False)
        step("write_recommendations")
        return time.time(), len(operations)


class _StepTimer:
    """``step(name)`` records the seconds since the previous step (or the timer's creation)."""

    def __init__(self, into: dict) -> None:
        self._into = into
        self._last = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self._into[name] = round(self._into.get(name, 0.0) + now - self._last, 4)
        self._last = now


def recommend_for(user_id: str, history: pd.DataFrame, catalog: TrackCatalog, als: AlsFactors | None,
                  config: StreamConfig) -> list[realtime.RankedItem]:
    """One listener's ranked items from their recent ``history`` (newest first)."""
    if len(catalog.track_ids) == 0:
        return []
    taste = realtime.taste_vector(history, catalog.embeddings, catalog.index_of, half_life_s=config.half_life_s)
    als_scores = als.scores_for(user_id) if als is not None else None
    return realtime.rank_tracks(
        track_ids=catalog.track_ids,
        embeddings=catalog.embeddings,
        taste=taste,
        excluded=realtime.recently_heard(history, window=config.exclude_recent),
        als_scores=als_scores,
        popularity=catalog.popularity,
        anchors=realtime.recent_anchors(history, catalog.titles),
        index_of=catalog.index_of,
        als_weight=config.als_weight,
        k=config.top_k,
    )


# --- MongoDB reads and writes -----------------------------------------------------------------
def ensure_indexes(db: Database) -> None:
    """Indexes the job's reads and upserts rely on (idempotent)."""
    db[Collection.LISTENING_EVENTS].create_index([("user_id", ASCENDING), ("client_ts", DESCENDING)])
    db[Collection.REALTIME_RECOMMENDATIONS].create_index([("user_id", ASCENDING)], unique=True)
    db[Collection.TRENDING].create_index([("window_start", ASCENDING), ("kind", ASCENDING)])
    db[Collection.STREAM_METRICS].create_index([("query_id", ASCENDING), ("batch_id", ASCENDING)])


def write_dead_letters(db: Database, documents: list[dict]) -> int:
    """Insert dead letters once per (topic, partition, offset); return how many the batch had."""
    insert_once(db[Collection.DEAD_LETTERS], documents)
    return len(documents)


def write_events(db: Database, valid: Sequence[realtime.ValidEvent], *, batch_key: str) -> list[realtime.ValidEvent]:
    """Insert the events by ``_id = event_id``; return those this batch stored first.

    Each document records its ``ingest_batch``: when a replayed batch finds its events
    already stored, the ones it stored itself the first time are still known (for the
    trending counts), while an event re-sent by a producer belongs to an earlier batch.
    """
    documents = [{**document, "ingest_batch": batch_key} for document in realtime.event_documents(valid)]
    collection = db[Collection.LISTENING_EVENTS]
    new_ids, duplicates = insert_once(collection, documents)
    if duplicates:
        new_ids |= {d["_id"] for d in collection.find({"_id": {"$in": duplicates}, "ingest_batch": batch_key}, {"_id": 1})}
    first = {}
    for item in valid:
        if item.event.event_id in new_ids:
            first.setdefault(item.event.event_id, item)
    return list(first.values())


def insert_once(collection, documents: list[dict]) -> tuple[set, list]:
    """Insert ``documents`` (each with its natural ``_id``); ones already stored are left as
    they are. Returns (ids inserted now, ids that were already there); any error other
    than a duplicate key is raised. An unordered ``insert_many`` is ~3x faster than
    upserts on the embedded server.
    """
    if not documents:
        return set(), []
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        _raise_unless_duplicates(exc)
        duplicate_rows = {error["index"] for error in exc.details["writeErrors"]}
        return ({d["_id"] for i, d in enumerate(documents) if i not in duplicate_rows},
                [documents[i]["_id"] for i in sorted(duplicate_rows)])
    return {d["_id"] for d in documents}, []


def _raise_unless_duplicates(exc: BulkWriteError) -> None:
    """Duplicate keys mean "already written" here; anything else is a real failure."""
    others = [error for error in exc.details.get("writeErrors", []) if error.get("code") != DUPLICATE_KEY]
    if others or exc.details.get("writeConcernErrors"):
        raise exc


def load_histories(db: Database, user_ids: list[str], *, limit: int, since: datetime) -> dict[str, pd.DataFrame]:
    """Each listener's last ``limit`` events since ``since`` (newest first), in one query."""
    projection = {"_id": 0, "user_id": 1, **{name: 1 for name in HISTORY_FIELDS}}
    documents = list(db[Collection.LISTENING_EVENTS].find(
        {"user_id": {"$in": user_ids}, "client_ts": {"$gte": since}}, projection))
    frame = pd.DataFrame(documents, columns=["user_id", *HISTORY_FIELDS])
    frame = frame.sort_values("client_ts", ascending=False, kind="stable")
    return {user_id: rows.head(limit) for user_id, rows in frame.groupby("user_id", sort=False)}


def _empty_history() -> pd.DataFrame:
    return pd.DataFrame(columns=["user_id", *HISTORY_FIELDS])


def update_trending(db: Database, stored: Sequence[realtime.ValidEvent], catalog: TrackCatalog, *,
                    window: timedelta, batch_key: str, listeners: WindowListeners | None = None) -> dict | None:
    """Add the batch's first-stored events to the trending windows, once; the newest window's listeners.

    ``$inc`` alone would count a replayed batch twice, so every document remembers the
    batches applied to it (``applied_batches``, the last ``APPLIED_BATCHES_KEPT``) and an
    increment whose batch is there already is refused by the filter (duplicate key).
    Listeners per window are a set (a set union): idempotent too. No reads of
    ``listening_events``, so the cost does not grow with the window.
    """
    if not stored:
        return None
    events = pd.DataFrame(
        [(item.event.track_id, item.event.type.value, item.event.client_ts) for item in stored],
        columns=["track_id", "type", "client_ts"],
    )
    apply_trending(db, realtime.trending_increments(events, catalog.genres, window=window), batch_key=batch_key)
    starts = [realtime.window_start(item.event.client_ts, window=window) for item in stored]
    newest = max(starts)
    users = {item.event.user_id for item, start in zip(stored, starts) if start == newest}
    listeners = listeners or WindowListeners(db, window=window)
    return {"window_start": newest, "window_end": newest + window, "users": listeners.add(newest, users)}


class WindowListeners:
    """The newest window's listener set, written only when a batch brings a listener this
    process has not written to it yet (in a busy window most batches bring none) and its
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


def apply_trending(db: Database, increments: list[dict], *, batch_key: str) -> int:
    """``$inc`` each document's counts unless ``batch_key`` was applied to it; how many applied."""
    counts = set(realtime.COUNTED_TYPES.values())
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
        _raise_unless_duplicates(exc)
        return int(exc.details.get("nModified", 0)) + int(exc.details.get("nUpserted", 0))
    return result.modified_count + result.upserted_count


def add_window_listeners(db: Database, start: datetime, user_ids: set[str], *, window: timedelta) -> int:
    """Add ``user_ids`` to the window's listener set (``trending`` kind "listeners"); its size.

    One round trip: a pipeline update unites the sets and stores their size, and only
    the size travels back (the set grows with the window).
    """
    document = db[Collection.TRENDING].find_one_and_update(
        {"_id": realtime.trending_id("listeners", "all", start)},
        [{"$set": {"users": {"$setUnion": [{"$ifNull": ["$users", []]}, sorted(user_ids)]},
                   "window_start": start, "window_end": start + window, "kind": "listeners", "key": "all"}},
         {"$set": {"listeners": {"$size": "$users"}}}],
        projection={"_id": 0, "listeners": 1}, upsert=True, return_document=ReturnDocument.AFTER,
    )
    return int(document["listeners"])


def write_batch_metrics(db: Database, report: BatchReport, *, query_id: str, query_name: str,
                        batch_time: datetime) -> None:
    """Upsert the batch's ``stream_metrics`` document (lag is added by ``record_progress``)."""
    document = {
        "kind": BATCH_KIND,
        "query_id": query_id,
        "query_name": query_name,
        "batch_id": report.batch_id,
        "batch_time": batch_time,
        "input_rows": report.input_rows,
        "valid_events": report.valid_events,
        "new_events": report.new_events,
        "dead_letters": report.dead_letters,
        "users_updated": report.users_updated,
        "processing_seconds": report.processing_seconds,
        "collect_seconds": report.collect_seconds,
        "latency_seconds": report.latency_seconds,
        "step_seconds": report.step_seconds,
        "offsets": report.offsets,
        "active_listeners": report.active_listeners,
        "model_version": report.model_version,
        "als_error": report.als_error,
    }
    db[Collection.STREAM_METRICS].update_one({"_id": f"{query_id}/{report.batch_id}"}, {"$set": document}, upsert=True)


def _track_ids_of(records: Sequence[realtime.KafkaRecord]) -> set[int]:
    """Track ids mentioned by parseable records (to notice catalog additions before classifying)."""
    ids = set()
    for record in records:
        try:
            track_id = json.loads(record.value).get("track_id") if record.value else None
        except (ValueError, AttributeError):
            continue  # not JSON / not an object: classify_records dead-letters it with its reason
        if isinstance(track_id, int) and not isinstance(track_id, bool):
            ids.add(track_id)
    return ids


def _model_version(catalog: TrackCatalog, als: AlsFactors | None) -> str:
    content = f"content:{catalog.version or 'unversioned'}"
    return content if als is None else f"{content}+als:{als.version}"


# --- progress, heartbeat and the query ----------------------------------------------------------
def progress_lag(progress) -> tuple[dict[str, int], dict[str, int]]:
    """``({partition: end offset}, {partition: records behind})`` of a query progress."""
    if not progress.sources:
        return {}, {}
    source = progress.sources[0]
    end = _offsets(source.endOffset)
    latest = _offsets(source.latestOffset) or end
    lag = {partition: max(int(latest.get(partition, position)) - int(position), 0) for partition, position in end.items()}
    return end, lag


def _offsets(value) -> dict[str, int]:
    if value is None:
        return {}
    parsed = json.loads(value) if isinstance(value, str) else value
    if isinstance(parsed, dict) and parsed and all(isinstance(v, dict) for v in parsed.values()):
        parsed = next(iter(parsed.values()))  # the native source nests offsets by topic
    return {str(k): int(v) for k, v in (parsed or {}).items()}


class Supervisor:
    """Keeps the heartbeat and the lag of finished batches in ``stream_metrics``."""

    def __init__(self, db: Database, query, stream: RecommendationStream) -> None:
        self.db = db
        self.query = query
        self.stream = stream
        self.started_at = time.time()
        self.last_batch_id = -1

    def record_progress(self, *, error: str | None = None) -> dict:
        """Write lag into the batch documents seen since the last call, and the heartbeat."""
        metrics = self.db[Collection.STREAM_METRICS]
        end, lag = {}, {}
        last_batch = None
        updates = []
        for progress in self.query.recentProgress:
            end, lag = progress_lag(progress)
            last_batch = progress.batchId
            # Not numInputRows: Spark counts 0 rows for a batch read by the DriverBatchReader.
            if progress.batchId > self.last_batch_id:
                updates.append(UpdateOne({"_id": f"{self.stream.query_id}/{progress.batchId}"},
                                         {"$set": {"end_offsets": end, "lag": lag,
                                                   "spark_duration_ms": dict(progress.durationMs or {})}}))
            self.last_batch_id = max(self.last_batch_id, progress.batchId)
        if updates:  # one round trip: the server is shared with the player's reads
            metrics.bulk_write(updates, ordered=False)
        heartbeat = {
            "kind": HEARTBEAT_KIND,
            "query_name": self.stream.query_name,
            "query_id": str(self.query.id),
            "run_id": str(self.query.runId),
            "is_active": self.query.isActive and error is None,
            "error": error,
            "status": self.query.status.get("message") if self.query.isActive else "stopped",
            "last_batch_id": last_batch,
            "end_offsets": end,
            "lag": lag,
            "total_lag": sum(lag.values()) if lag else None,
            "started_at_epoch": self.started_at,
            "updated_at": datetime.now(timezone.utc),
        }
        metrics.update_one({"_id": heartbeat_id(self.stream.query_name)}, {"$set": heartbeat}, upsert=True)
        return heartbeat

    def mark_stopped(self, error: str | None) -> None:
        """Record in the heartbeat that the query is no longer running (without asking Spark)."""
        self.db[Collection.STREAM_METRICS].update_one({"_id": heartbeat_id(self.stream.query_name)}, {"$set": {
            "kind": HEARTBEAT_KIND, "query_name": self.stream.query_name, "is_active": False,
            "error": error, "status": "stopped", "updated_at": datetime.now(timezone.utc),
        }}, upsert=True)


def stop_query(query) -> None:
    """Stop ``query``; on SIGTERM under spark-submit the JVM may already be going down."""
    from py4j.protocol import Py4JError

    try:
        query.stop()
    except Py4JError as exc:
        log.warning("stopping the query failed (JVM shutting down?): %s", exc)


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

    ``wrap_handler(stream)`` may return another ``foreachBatch`` function around the
    stream (tests use it to crash a batch half-way).
    """
    from spark_jobs.kafka_source import driver_batch_reader, read_kafka_stream

    if trigger_seconds < 0:
        raise StreamingJobError(f"--trigger-seconds must be >= 0, got {trigger_seconds}")
    topic = topic or settings.kafka_events_topic
    stream = RecommendationStream(db, settings, config=config, query_name=query_name, checkpoint=checkpoint,
                                  batch_reader=driver_batch_reader(spark, settings, topic=topic, checkpoint=checkpoint))
    stream.models.catalog()  # load once before the first batch
    # A stateless query: a trigger without new offsets has nothing to do.
    spark.conf.set("spark.sql.streaming.noDataMicroBatches.enabled", "false")
    events = read_kafka_stream(spark, settings, topic=topic,
                               starting_offsets=starting_offsets, max_offsets_per_trigger=max_offsets_per_trigger)
    query = (
        events.writeStream.queryName(query_name)
        .foreachBatch(stream if wrap_handler is None else wrap_handler(stream))
        .option("checkpointLocation", str(checkpoint))
        .trigger(processingTime=f"{trigger_seconds} seconds")
        .start()
    )
    return query, stream


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


def default_checkpoint(settings: Settings) -> Path:
    return settings.streaming_checkpoint_dir


def parse_args(argv: list[str] | None, settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="streaming_recommendations", description=__doc__.splitlines()[0])
    parser.add_argument("--trigger-seconds", type=float, default=DEFAULT_TRIGGER_S,
                        help=f"micro-batch interval (default {DEFAULT_TRIGGER_S} s)")
    parser.add_argument("--checkpoint", type=Path, default=default_checkpoint(settings),
                        help="checkpoint folder (offsets of committed batches)")
    parser.add_argument("--starting-offsets", choices=("earliest", "latest"), default="earliest",
                        help="where a query without checkpoint starts")
    parser.add_argument("--max-offsets-per-trigger", type=int, default=None, help="most records per batch")
    parser.add_argument("--run-for", type=float, default=None, help="stop after this many seconds (tests, benchmarks)")
    parser.add_argument("--topic", default=None, help="another topic than the settings' events topic")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the query until SIGTERM/SIGINT (or ``--run-for``); print a JSON summary line."""
    from fma_platform.mongo import platform_db
    from spark_jobs.kafka_source import close_read_consumers
    from spark_jobs.session import spark_session

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("py4j", "kafka"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    settings = get_settings()
    args = parse_args(argv, settings)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    spark = spark_session(APP_NAME, settings=settings)
    spark.sparkContext.setLogLevel("WARN")  # one INFO line per task otherwise
    quiet_falling_behind_warnings(spark)
    db = platform_db(settings)
    query, stream = start_stream(
        spark, settings, db=db, checkpoint=args.checkpoint, topic=args.topic, trigger_seconds=args.trigger_seconds,
        starting_offsets=args.starting_offsets, max_offsets_per_trigger=args.max_offsets_per_trigger,
    )
    supervisor = Supervisor(db, query, stream)
    error = None
    try:
        error = supervise(query, supervisor, stop=stop, run_for=args.run_for)
    finally:
        stop_query(query)
        close_read_consumers()
        supervisor.mark_stopped(error)
        stop_spark(spark)
    print(json.dumps({"query_id": stream.query_id, "last_batch_id": supervisor.last_batch_id,
                      "last_batch": None if stream.last_report is None else stream.last_report.batch_id,
                      "error": error}))
    return 1 if error else 0


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


if __name__ == "__main__":
    sys.exit(main())
