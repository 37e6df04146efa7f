"""``RecommendationStream``: one micro-batch, from its Kafka records to every write it makes.

Where it runs is the setting ``stream_execution``: ``executors``
(``spark_jobs.streaming.executors``: listeners partitioned by ``user_id`` over the
executors, the driver only coordinates) or ``driver`` (this module's ``process``: every
step in the driver process, on records read by the ``DriverBatchReader``).

The driver path's steps (timed in ``BatchMetrics.step_seconds``): decode the records (dead
letters for bad ones), store the events once, rank every listener of the batch from their
recent history and rewrite their ``realtime_recommendations``, add the batch's
first-stored events to the trending windows, write the batch's ``stream_metrics``
document. Both paths do the same writes through the same sink (``stream_sink``: MongoDB, or
a counting sink for benchmarks). The package docstring says why a replayed batch leaves
the same state.
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
from pymongo.database import Database

from fma_platform.listening import STREAM_ALS_WEIGHT
from fma_platform.settings import Settings
from fma_platform.stream_status import QUERY_NAME, BatchMetrics, batch_metrics_id, latency_summary
from spark_jobs.streaming import ranking, taste, trending
from spark_jobs.streaming.models import DEFAULT_REFRESH_S, AlsFactors, ModelBroadcast, ModelCache, StreamCatalogue
from spark_jobs.streaming.ranking import RankedItem
from spark_jobs.streaming.records import KafkaRecord, ValidEvent, classify_records, mentioned_track_ids, next_offsets
from spark_jobs.streaming.sink import Trigger, ensure_indexes, make_sink, update_trending, write_batch_metrics

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

    ``execution`` (default: the setting ``stream_execution``) is where a batch called as
    a ``foreachBatch`` function runs. On the driver path, ``batch_reader`` (a
    ``kafka_source.DriverBatchReader``) reads a batch's records from the offsets Spark
    logged for it; without one, or when it cannot, the batch DataFrame is collected.
    """

    def __init__(self, db: Database, settings: Settings, *, config: StreamConfig | None = None,
                 query_name: str = QUERY_NAME, checkpoint: Path | None = None, batch_reader=None,
                 execution: str | None = None) -> None:
        self.db = db
        self.settings = settings
        self.batch_reader = batch_reader
        self.config = config or StreamConfig()
        self.query_name = query_name
        self.checkpoint = checkpoint
        self.execution = execution or settings.stream_execution
        if self.execution not in ("driver", "executors"):
            raise ValueError(f"stream execution must be 'driver' or 'executors', got {self.execution!r}")
        self.models = ModelCache(db, settings.models_dir, refresh_s=self.config.catalogue_refresh_s)
        self.sink = make_sink(settings.stream_sink, db, window=self.config.window)
        self._broadcast: ModelBroadcast | None = None
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
        if self.execution == "executors":
            from spark_jobs.streaming.executors import run_batch

            self._log(run_batch(self, batch_df, batch_id))
            return
        started = time.monotonic()
        records = self.read_batch(batch_df, batch_id)
        self.process(records, batch_id, collect_seconds=round(time.monotonic() - started, 4))

    def broadcast(self, spark) -> ModelBroadcast:
        """The models as a broadcast for the executors (made on first use, refreshed on change)."""
        if self._broadcast is None:
            self._broadcast = ModelBroadcast(spark.sparkContext, self.models, label=model_version_label)
        return self._broadcast

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
        metrics.dead_letters = self.sink.dead_letters(classified.dead_letters)
        metrics.valid_events = len(classified.valid)
        batch_key = batch_metrics_id(self.query_id, batch_id)
        stored = self.sink.events(classified.valid, batch_key=batch_key, stored_at=now)
        metrics.new_events = len(stored)
        step("store_events")
        als = self.models.als(catalogue)
        metrics.als_error = self.models.als_error
        metrics.model_version = model_version_label(catalogue, als)
        written_at, metrics.users_updated = self.update_recommendations(classified.valid, catalogue, als,
                                                                        metrics.model_version, step=step)
        latencies = [written_at - item.record.timestamp.timestamp() for item in classified.valid]
        metrics.latency_seconds = latency_summary(latencies)
        metrics.active_listeners = update_trending(self.sink, stored, catalogue.genres, window=self.config.window,
                                                   batch_key=batch_key)
        step("trending")
        metrics.processing_seconds = round(time.monotonic() - started, 4)
        write_batch_metrics(self.db, metrics, query_id=self.query_id, query_name=self.query_name, batch_time=now,
                            latencies=latencies)
        self._log(metrics)
        return metrics

    def _log(self, metrics: BatchMetrics) -> None:
        self.last_metrics = metrics
        log.info("batch %d (%s): %d rows, %d valid, %d dead letters, %d users in %.3f s", metrics.batch_id,
                 self.execution, metrics.input_rows, metrics.valid_events, metrics.dead_letters, metrics.users_updated,
                 metrics.processing_seconds)

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
        reach = timedelta(seconds=HISTORY_HALF_LIVES * self.config.half_life_s)
        since = {user_id: item.event.client_ts - reach for user_id, item in latest.items()}
        histories = self.sink.histories(list(latest), limit=self.config.recent_events, since=since,
                                        batch_history=None if self.sink.reads_histories else batch_histories(valid))
        step("read_histories")
        ranked = {user_id: recommend_for(user_id, histories.get(user_id, taste.empty_history()), catalogue, als,
                                         self.config)
                  for user_id in latest}
        step("rank")
        updated_at = datetime.now(timezone.utc)  # just before the write: latency includes the ranking
        triggers = {user_id: Trigger(item.event.event_id, item.event.client_ts) for user_id, item in latest.items()}
        users = self.sink.recommendations(ranked, triggers, model_version=model_version, updated_at=updated_at)
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


def batch_histories(valid: Sequence[ValidEvent]) -> dict[str, pd.DataFrame]:
    """Each listener's events of the batch as a history, newest first (the counting sink reads
    no database)."""
    rows: dict[str, list] = {}
    for item in reversed(valid):
        event = item.event
        rows.setdefault(event.user_id, []).append((event.track_id, event.type.value, event.listened_s,
                                                   event.track_duration_s, event.client_ts))
    return {user_id: pd.DataFrame(items, columns=list(taste.HISTORY_FIELDS)) for user_id, items in rows.items()}


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
