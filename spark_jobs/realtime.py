"""Pure pieces of the real-time recommendation loop (no Spark, no MongoDB inside).

The streaming job (``spark_jobs.streaming_recommendations``) collects each micro-batch on
the driver and calls these functions:

* ``classify_records``: Kafka records -> valid events and dead letters (with a reason);
* ``signal_weights`` / ``recency_weights`` / ``taste_vector``: a listener's short-term
  taste in the embedding space from their recent events;
* ``rank_tracks``: cosine(taste, track) blended with the ALS score, minus what was just
  played, each item with a reason;
* ``trending_increments``: per-window play/complete/skip/like counts per track and genre
  (applied once per batch, so a replayed batch leaves the same state);
* ``latency_summary``: p50/p95/max of a batch's end-to-end latencies.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from fma_platform.events import MAX_EVENT_BYTES, InvalidEventError, ListeningEvent, decode_event, to_document

# --- tunables (defaults of the job; every function takes them as keyword arguments) -------
HALF_LIFE_S = 1_800.0  # a signal half an hour old counts half
RECENT_EVENTS = 50  # a listener's last N events make the short-term taste
EXCLUDE_RECENT = 20  # tracks of the last N events are not recommended again
TOP_K = 20
ALS_WEIGHT = 0.4  # share of the (normalised) ALS score in the blended score
EARLY_SKIP_S = 10.0  # a skip before this many seconds (or before EARLY_SKIP_SHARE) is a rejection
EARLY_SKIP_SHARE = 0.3
REASON_ANCHOR_MIN = 0.7  # cosine above which an item is "because you played <title>"
WINDOW = timedelta(minutes=5)
RAW_TEXT_LIMIT = 4 * MAX_EVENT_BYTES  # raw payload kept in a dead letter (oversized ones are cut)

# How much each event moves the taste towards (+) or away from (-) its track.
EVENT_SIGNAL = {
    "play": 0.25,  # a started play: weak intent (an early skip right after outweighs it)
    "progress": 0.25,
    "pause": 0.0,
    "complete": 1.0,
    "like": 1.5,
    "skip": 0.2,  # a late skip: the listener heard most of it (early skips: EARLY_SKIP_SIGNAL)
    "dislike": -1.5,
}
EARLY_SKIP_SIGNAL = -1.0
COUNTED_TYPES = {"play": "plays", "complete": "completes", "skip": "skips", "like": "likes"}

# Dead-letter kinds beyond the event contract's ``ERROR_KINDS``.
UNKNOWN_TRACK = "unknown_track"
NULL_PAYLOAD = "null_payload"

REASON_PLAYED = "because you played {title}"
REASON_LIKED = "because you liked {title}"
REASON_SIMILAR = "similar to what you liked"
REASON_ALS = "popular with listeners like you"
REASON_POPULAR = "popular on FMA right now"


# --- decoding -----------------------------------------------------------------------------
@dataclass(frozen=True)
class KafkaRecord:
    """One record of a micro-batch (the native Kafka source's columns that matter here)."""

    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: datetime  # broker/producer timestamp (CreateTime: when the client sent it)


@dataclass(frozen=True)
class ValidEvent:
    event: ListeningEvent
    record: KafkaRecord


@dataclass
class ClassifiedBatch:
    valid: list[ValidEvent] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


def dead_letter(record: KafkaRecord, kind: str, reason: str, *, received_at: datetime) -> dict[str, Any]:
    """The ``dead_letters`` document of ``record``; ``_id`` is its (topic, partition, offset)."""
    raw = b"" if record.value is None else bytes(record.value)
    return {
        "_id": dead_letter_id(record.topic, record.partition, record.offset),
        "reason_kind": kind,
        "reason": reason,
        "raw": raw[:RAW_TEXT_LIMIT].decode("utf-8", errors="replace"),
        "raw_bytes": len(raw),
        "raw_truncated": len(raw) > RAW_TEXT_LIMIT,
        "topic": record.topic,
        "partition": int(record.partition),
        "offset": int(record.offset),
        "kafka_timestamp": record.timestamp,
        "received_at": received_at,
    }


def dead_letter_id(topic: str, partition: int, offset: int) -> str:
    return f"{topic}/{int(partition)}/{int(offset)}"


def classify_records(
    records: Iterable[KafkaRecord], *, known_track_ids: Mapping[int, Any] | set[int], received_at: datetime
) -> ClassifiedBatch:
    """Decode every record with the event contract; bad ones become dead letters.

    A record is dead-lettered with the contract's error kind (``malformed_json``,
    ``unknown_field``, ``wrong_type``, ``oversized`` ...), ``null_payload`` for a record
    without a value, or ``unknown_track`` when ``track_id`` is not in ``known_track_ids``.
    Unknown listeners are accepted: a new listener is a cold start, not an error.
    """
    batch = ClassifiedBatch()
    for record in records:
        if record.value is None:
            batch.dead_letters.append(dead_letter(record, NULL_PAYLOAD, "record has no value", received_at=received_at))
            continue
        try:
            event = decode_event(record.value)
        except InvalidEventError as exc:
            batch.dead_letters.append(dead_letter(record, exc.kind, exc.reason, received_at=received_at))
            continue
        if event.track_id not in known_track_ids:
            batch.dead_letters.append(dead_letter(
                record, UNKNOWN_TRACK, f"track_id {event.track_id} is not in the tracks catalog", received_at=received_at
            ))
            continue
        batch.valid.append(ValidEvent(event, record))
    return batch


def event_documents(valid: Sequence[ValidEvent]) -> list[dict[str, Any]]:
    """``listening_events`` documents (``_id`` = event_id), one per distinct event id."""
    return list({item.event.event_id: to_document(item.event) for item in valid}.values())


# --- taste ----------------------------------------------------------------------------------
def signal_weights(types: Sequence[str], listened_s: Sequence[float], durations: Sequence[float | None]) -> np.ndarray:
    """How much each event pulls (+) or pushes (-) the taste; early skips push away.

    A skip is early when the listener heard less than ``EARLY_SKIP_S`` seconds or less
    than ``EARLY_SKIP_SHARE`` of the track.
    """
    weights = np.array([EVENT_SIGNAL.get(str(kind), 0.0) for kind in types], dtype=np.float64)
    for i, kind in enumerate(types):
        if kind == "skip":
            duration = durations[i]
            share = listened_s[i] / duration if duration and duration == duration else 0.0
            if listened_s[i] < EARLY_SKIP_S or share < EARLY_SKIP_SHARE:
                weights[i] = EARLY_SKIP_SIGNAL
    return weights


def recency_weights(ages_s: Sequence[float] | np.ndarray, *, half_life_s: float = HALF_LIFE_S) -> np.ndarray:
    """``0.5 ** (age / half_life)``: 1 for the newest signal, 0.5 one half-life earlier.

    Negative ages (clock skew between devices) count as 0.
    """
    if half_life_s <= 0:
        raise ValueError(f"half_life_s must be positive, got {half_life_s}")
    ages = np.maximum(np.asarray(ages_s, dtype=np.float64), 0.0)
    return np.power(0.5, ages / half_life_s)


def taste_vector(
    history: pd.DataFrame, embeddings: np.ndarray, index_of: Mapping[int, int], *, half_life_s: float = HALF_LIFE_S
) -> np.ndarray | None:
    """The listener's unit taste vector from ``history``, or None when it has no signal.

    ``history`` has columns track_id, type, listened_s, track_duration_s, client_ts; ages
    are measured from its newest event (event time, not the wall clock). Events on
    tracks without an embedding are ignored.
    """
    if history.empty:
        return None
    # Membership per history row (a few dozen), not a hash table of the whole catalogue.
    rows = history[[int(t) in index_of for t in history["track_id"]]]
    if rows.empty:
        return None
    times = pd.to_datetime(rows["client_ts"], utc=True)
    ages = (times.max() - times).dt.total_seconds().to_numpy()
    weights = signal_weights(
        rows["type"].tolist(), rows["listened_s"].astype(float).tolist(), rows["track_duration_s"].tolist()
    ) * recency_weights(ages, half_life_s=half_life_s)
    vectors = embeddings[[index_of[int(t)] for t in rows["track_id"]]]
    taste = weights @ vectors
    norm = float(np.linalg.norm(taste))
    if norm < 1e-9:
        return None
    return taste / norm


# --- ranking --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RankedItem:
    track_id: int
    score: float
    reason: str

    def as_document(self) -> dict[str, Any]:
        return {"track_id": self.track_id, "score": round(self.score, 6), "reason": self.reason}


def normalised_als_scores(user_factor: np.ndarray, item_factors: np.ndarray, has_item: np.ndarray) -> np.ndarray:
    """``dot(user, item)`` divided by its largest magnitude (in [-1, 1]); 0 for items without factors."""
    scores = np.where(has_item, item_factors @ user_factor, 0.0)
    scale = float(np.max(np.abs(scores))) if scores.size else 0.0
    return scores / scale if scale > 0 else scores


def rank_tracks(
    *,
    track_ids: np.ndarray,
    embeddings: np.ndarray,
    taste: np.ndarray | None,
    excluded: set[int],
    als_scores: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
    anchors: Sequence[tuple[int, str, bool]] = (),
    index_of: Mapping[int, int] | None = None,
    als_weight: float = ALS_WEIGHT,
    k: int = TOP_K,
) -> list[RankedItem]:
    """The best ``k`` tracks for one listener, best first, each with a reason.

    score = (1 - als_weight) * cosine(taste, track) + als_weight * normalised ALS score
    (content only without ALS scores, ALS only without a taste, catalogue popularity when
    neither exists). ``anchors`` are the listener's recent positive tracks as
    ``(track_id, title, liked)``, newest first: an item close to one of them (cosine >=
    ``REASON_ANCHOR_MIN``) is explained by it.
    """
    content = embeddings @ taste if taste is not None else None
    if content is not None and als_scores is not None:
        scores = (1.0 - als_weight) * content + als_weight * als_scores
    elif content is not None:
        scores = content.copy()
    elif als_scores is not None:
        scores = als_scores.copy()
    elif popularity is not None:
        scores = np.log1p(np.maximum(popularity, 0.0))
        scores = scores / scores.max() if scores.size and scores.max() > 0 else scores
    else:
        return []
    candidates = np.flatnonzero(~np.isin(track_ids, np.fromiter(excluded, dtype=np.int64, count=len(excluded))))
    if candidates.size == 0:
        return []
    top = candidates[_top_rows(scores[candidates], k)]
    anchor_rows = _anchor_rows(anchors, index_of)
    items = []
    for row in top:
        reason = _reason(
            row, embeddings, anchor_rows,
            content_share=None if content is None else (1.0 - (als_weight if als_scores is not None else 0.0)) * content[row],
            als_share=None if als_scores is None else (als_weight if content is not None else 1.0) * als_scores[row],
        )
        items.append(RankedItem(int(track_ids[row]), float(scores[row]), reason))
    return items


def _top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest ``scores``, best first, ties by position (as a stable
    full sort would give) without sorting the whole catalogue."""
    if k <= 0:
        return np.array([], dtype=np.int64)
    if scores.size > k:
        kth = np.partition(scores, scores.size - k)[scores.size - k]
        within = np.flatnonzero(scores >= kth)  # every tie of the k-th score stays in
    else:
        within = np.arange(scores.size)
    return within[np.argsort(-scores[within], kind="stable")[:k]]


def _anchor_rows(anchors, index_of) -> list[tuple[int, str, bool]]:
    if not anchors or index_of is None:
        return []
    return [(index_of[track], title, liked) for track, title, liked in anchors if track in index_of]


def _reason(row, embeddings, anchor_rows, *, content_share, als_share) -> str:
    if content_share is None and als_share is None:
        return REASON_POPULAR
    if content_share is None or (als_share is not None and als_share > content_share):
        return REASON_ALS
    if anchor_rows:
        similarity = embeddings[[a[0] for a in anchor_rows]] @ embeddings[row]
        best = int(np.argmax(similarity))
        if similarity[best] >= REASON_ANCHOR_MIN:
            _, title, liked = anchor_rows[best]
            return (REASON_LIKED if liked else REASON_PLAYED).format(title=title)
    return REASON_SIMILAR


def recent_anchors(history: pd.DataFrame, titles: Mapping[int, str], *, limit: int = 5) -> list[tuple[int, str, bool]]:
    """Up to ``limit`` distinct recently completed or liked tracks, newest first: (id, title, liked)."""
    if history.empty:
        return []
    events = [(int(history["track_id"].iat[row]), history["type"].iat[row]) for row in _newest_first(history)]
    positive = [(track_id, kind) for track_id, kind in events if kind in ("complete", "like")]
    liked = {track_id for track_id, kind in positive if kind == "like"}
    anchors, seen = [], set()
    for track_id, _ in positive:
        if track_id in seen:
            continue
        seen.add(track_id)
        anchors.append((track_id, titles.get(track_id) or f"track {track_id}", track_id in liked))
        if len(anchors) == limit:
            break
    return anchors


def recently_heard(history: pd.DataFrame, *, window: int = EXCLUDE_RECENT) -> set[int]:
    """Tracks of the listener's last ``window`` events (played, skipped, liked ...)."""
    if history.empty:
        return set()
    tracks = history["track_id"].to_numpy()
    return {int(tracks[row]) for row in _newest_first(history)[:window]}


def _newest_first(history: pd.DataFrame) -> np.ndarray:
    """Row positions of ``history`` by ``client_ts``, newest first (ties keep their order).

    Plain numpy on a few dozen rows: per-listener pandas sorts dominated a batch's ranking.
    """
    times = pd.DatetimeIndex(pd.to_datetime(history["client_ts"], utc=True)).asi8
    return np.argsort(-times, kind="stable")


# --- trending -------------------------------------------------------------------------------
def window_start(moment: datetime, *, window: timedelta = WINDOW) -> datetime:
    """Start of the tumbling window holding ``moment`` (UTC, aligned on the epoch)."""
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    width = window.total_seconds()
    return epoch + timedelta(seconds=math.floor((moment - epoch).total_seconds() / width) * width)


def trending_id(kind: str, key: Any, start: datetime) -> str:
    return f"{kind}/{key}/{start.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def trending_increments(
    events: pd.DataFrame, genres: Mapping[int, tuple[int, str]], *, window: timedelta = WINDOW
) -> list[dict[str, Any]]:
    """Counts of ``events`` (track_id, type, client_ts) per window and track, and per window
    and top-level genre, as ``trending`` documents holding increments (plain counters: a
    batch holds a few dozen events, pandas grouping would cost more than the counting).

    The job applies each increment at most once per batch (see
    ``streaming_recommendations.apply_trending``), and only for the events that batch
    stored first, so a replayed batch or a re-sent event never counts twice.
    """
    if events.empty:
        return []
    by_track: dict[tuple[datetime, int], Counter] = defaultdict(Counter)
    by_genre: dict[tuple[datetime, int], Counter] = defaultdict(Counter)
    times = pd.to_datetime(events["client_ts"], utc=True)
    for track_id, kind, moment in zip(events["track_id"], events["type"], times):
        name = COUNTED_TYPES.get(str(kind))
        if name is None:
            continue
        start = window_start(moment, window=window)
        by_track[(start, int(track_id))][name] += 1
        if int(track_id) in genres:
            by_genre[(start, genres[int(track_id)][0])][name] += 1
    titles = {genre_id: title for genre_id, title in genres.values()}
    documents = []
    for (start, track_id), counts in sorted(by_track.items()):
        genre = genres.get(track_id)
        documents.append(_trending_document("track", track_id, start, window, counts,
                                            genre_id=None if genre is None else genre[0]))
    for (start, genre_id), counts in sorted(by_genre.items()):
        documents.append(_trending_document("genre", int(genre_id), start, window, counts,
                                            title=titles.get(int(genre_id))))
    return documents


def _trending_document(kind, key, start, window, counts, **extra) -> dict[str, Any]:
    start = pd.Timestamp(start).to_pydatetime()
    document = {
        "_id": trending_id(kind, key, start),
        "window_start": start,
        "window_end": start + window,
        "kind": kind,
        "key": key,
        **{name: int(counts.get(name, 0)) for name in COUNTED_TYPES.values()},
    }
    document.update({name: value for name, value in extra.items() if value is not None})
    return document


# --- metrics --------------------------------------------------------------------------------
def latency_summary(latencies_s: Sequence[float]) -> dict[str, float | None]:
    """p50, p95 and max of ``latencies_s`` (seconds); None values for an empty batch."""
    if len(latencies_s) == 0:
        return {"p50": None, "p95": None, "max": None}
    values = np.asarray(latencies_s, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(values, 50)), 4),
        "p95": round(float(np.percentile(values, 95)), 4),
        "max": round(float(values.max()), 4),
    }


def next_offsets(records: Iterable[KafkaRecord]) -> dict[str, int]:
    """``{partition: next_offset}`` after this batch (partitions that had records)."""
    offsets: dict[str, int] = {}
    for record in records:
        key = str(record.partition)
        offsets[key] = max(offsets.get(key, 0), int(record.offset) + 1)
    return dict(sorted(offsets.items(), key=lambda item: int(item[0])))
