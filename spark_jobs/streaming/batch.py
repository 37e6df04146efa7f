"""``RecommendationStream``: one micro-batch, from its Kafka records to every write it makes.

Steps (timed in ``BatchMetrics.step_seconds``): decode the records (dead letters for bad
ones), store the events once, rank every listener of the batch from their recent history
and rewrite their ``realtime_recommendations``, add the batch's first-stored events to
the trending windows, write the batch's ``stream_metrics`` document. The package
docstring says why a replayed batch leaves the same state.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
from pymongo import DESCENDING
from pymongo.database import Database

from fma_platform.contracts import Collection
from fma_platform.listening import STREAM_ALS_WEIGHT
from fma_platform.settings import Settings
from fma_platform.stream_status import QUERY_NAME, BatchMetrics, batch_metrics_id, latency_summary
from spark_jobs.streaming import ranking, taste, trending
from spark_jobs.streaming.models import DEFAULT_REFRESH_S, AlsFactors, ModelCache, StreamCatalogue
from spark_jobs.streaming.ranking import RankedItem
from spark_jobs.streaming.records import KafkaRecord, ValidEvent, classify_records, mentioned_track_ids, next_offsets
from spark_jobs.streaming.sink import (
    WindowListeners,
    ensure_indexes,
    update_trending,
    write_batch_metrics,
    write_dead_letters,
    write_events,
    write_recommendations,
)

log = logging.getLogger(__name__)

HISTORY_HALF_LIVES = 6  # older signals weigh < 2% and are not read


@dataclass(frozen=True)
class StreamConfig:
    """Tunables of the recommendation step (each module names what its defaults mean)."""

    half_life_s: float = taste.HALF_LIFE_S
    recent_events: int = taste.RECENT_EVENTS
    exclude_recent: int = taste.EXCLUDE_RECENT
    top_k: int = ranking.TOP_K
    als_weight: float = STREAM_ALS_WEIGHT
    window: timedelta = trending.WINDOW
    catalogue_refresh_s: float = DEFAULT_REFRESH_S


class RecommendationStream:
    """``foreachBatch`` handler: call it with ``(batch_df, batch_id)``, or ``process`` with records.

    ``batch_reader`` (a ``kafka_source.DriverBatchReader``) reads a batch's records from
    the offsets Spark logged for it; without one, or when it cannot, the batch DataFrame
    is collected.
    """

    def __init__(self, db: Database, settings: Settings, *, config: StreamConfig | None = None,
                 query_name: str = QUERY_NAME, checkpoint: Path | None = None, batch_reader=None) -> None:
        self.db = db
        self.batch_reader = batch_reader
        self.config = config or StreamConfig()
        self.query_name = query_name
        self.checkpoint = checkpoint
        self.models = ModelCache(db, settings.models_dir, refresh_s=self.config.catalogue_refresh_s)
        self.window_listeners = WindowListeners(db, window=self.config.window)
        self._query_id: str | None = None
        self.last_metrics: BatchMetrics | None = None
        ensure_indexes(db, settings)

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

    def read_batch(self, batch_df, batch_id: int) -> list[KafkaRecord]:
        """The batch's records: read on the driver from the batch's logged offsets when
        possible (no Spark job for a few dozen records), else collected from ``batch_df``."""
        rows = self.batch_reader.read(batch_id) if self.batch_reader is not None else None
        if rows is not None:  # native Kafka columns: key, value, topic, partition, offset, timestamp, ...
            return [KafkaRecord(None if value is None else bytes(value), topic, int(partition), int(offset), timestamp)
                    for _, value, topic, partition, offset, timestamp, _ in rows]
        rows = batch_df.selectExpr(
            "value", "topic", "partition", "offset", "CAST(timestamp AS DOUBLE) AS ts"
        ).collect()
        return [
            KafkaRecord(None if row.value is None else bytes(row.value), row.topic, int(row.partition),
                        int(row.offset), datetime.fromtimestamp(row.ts, tz=timezone.utc))
            for row in rows
        ]

    def process(self, records: Sequence[KafkaRecord], batch_id: int, *,
                collect_seconds: float | None = None) -> BatchMetrics:
        """Run the steps of the module docstring on one batch's records."""
        started = time.monotonic()
        now = datetime.now(timezone.utc)
        metrics = BatchMetrics(batch_id=batch_id, input_rows=len(records), offsets=next_offsets(records),
                               collect_seconds=collect_seconds)
        step = _StepTimer(metrics.step_seconds)
        catalogue = self.models.reload_if_new_tracks(mentioned_track_ids(records))
        classified = classify_records(records, known_track_ids=catalogue.known_ids, received_at=now)
        step("decode")
        metrics.dead_letters = write_dead_letters(self.db, classified.dead_letters)
        metrics.valid_events = len(classified.valid)
        batch_key = batch_metrics_id(self.query_id, batch_id)
        stored = write_events(self.db, classified.valid, batch_key=batch_key, stored_at=now)
        metrics.new_events = len(stored)
        step("store_events")
        als = self.models.als(catalogue)
        metrics.als_error = self.models.als_error
        metrics.model_version = model_version_label(catalogue, als)
        written_at, metrics.users_updated = self.update_recommendations(classified.valid, catalogue, als,
                                                                        metrics.model_version, step=step)
        metrics.latency_seconds = latency_summary(
            [written_at - item.record.timestamp.timestamp() for item in classified.valid]
        )
        metrics.active_listeners = update_trending(self.db, stored, catalogue.genres, window=self.config.window,
                                                   batch_key=batch_key, listeners=self.window_listeners)
        step("trending")
        metrics.processing_seconds = round(time.monotonic() - started, 4)
        write_batch_metrics(self.db, metrics, query_id=self.query_id, query_name=self.query_name, batch_time=now)
        self.last_metrics = metrics
        log.info("batch %d: %d rows, %d valid, %d dead letters, %d users in %.3f s", batch_id, metrics.input_rows,
                 metrics.valid_events, metrics.dead_letters, metrics.users_updated, metrics.processing_seconds)
        return metrics

    def update_recommendations(self, valid: Sequence[ValidEvent], catalogue: StreamCatalogue,
                               als: AlsFactors | None, model_version: str, *,
                               step: Callable[[str], None] = lambda _: None) -> tuple[float, int]:
        """Recommendations of every listener in ``valid``; (epoch when written, listeners)."""
        latest: dict[str, ValidEvent] = {}
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
        ranked = {user_id: recommend_for(user_id, histories.get(user_id, taste.empty_history()), catalogue, als,
                                         self.config)
                  for user_id in latest}
        step("rank")
        updated_at = datetime.now(timezone.utc)  # just before the write: latency includes the ranking
        users = write_recommendations(self.db, ranked, latest, model_version=model_version, updated_at=updated_at)
        step("write_recommendations")
        return time.time(), users


def recommend_for(user_id: str, history: pd.DataFrame, catalogue: StreamCatalogue, als: AlsFactors | None,
                  config: StreamConfig) -> list[RankedItem]:
    """One listener's ranked items from their recent ``history``."""
    if catalogue.embeddings.size == 0:
        return []
    listener_taste = taste.taste_vector(history, catalogue.vectors, catalogue.index_of, half_life_s=config.half_life_s)
    return ranking.rank_tracks(
        track_ids=catalogue.track_ids,
        embeddings=catalogue.vectors,
        taste=listener_taste,
        excluded=taste.recently_heard(history, window=config.exclude_recent),
        als_scores=als.scores_for(user_id) if als is not None else None,
        popularity=catalogue.popularity,
        anchors=taste.recent_anchors(history, catalogue.titles),
        index_of=catalogue.index_of,
        als_weight=config.als_weight,
        k=config.top_k,
    )


def load_histories(db: Database, user_ids: list[str], *, limit: int, since: datetime) -> dict[str, pd.DataFrame]:
    """Each listener's last ``limit`` events since ``since`` (newest first); listeners without any
    are left out.

    One indexed query per listener (``user_id``, ``client_ts``), so a batch reads at most
    ``limit`` events per listener however many are stored: one ``$in`` query over all of
    them read every event of the window, and was a collection scan on the embedded server.
    """
    projection = {"_id": 0, **{name: 1 for name in taste.HISTORY_FIELDS}}
    collection = db[Collection.LISTENING_EVENTS]
    histories = {}
    for user_id in user_ids:
        documents = list(collection.find({"user_id": user_id, "client_ts": {"$gte": since}}, projection)
                         .sort("client_ts", DESCENDING).limit(limit))
        if documents:
            histories[user_id] = pd.DataFrame(documents, columns=list(taste.HISTORY_FIELDS))
    return histories


def model_version_label(catalogue: StreamCatalogue, als: AlsFactors | None) -> str:
    """``content:<transform>[+als:<champion>]``: the models that ranked a batch."""
    content = f"content:{catalogue.version or 'unversioned'}"
    return content if als is None else f"{content}+als:{als.version}"


class _StepTimer:
    """``step(name)`` records the seconds since the previous step (or the timer's creation)."""

    def __init__(self, into: dict) -> None:
        self._into = into
        self._last = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self._into[name] = round(self._into.get(name, 0.0) + now - self._last, 4)
        self._last = now
