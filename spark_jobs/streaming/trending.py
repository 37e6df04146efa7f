"""Trending counts: plays, completes, skips and likes per 5-minute window, per track and per
top-level genre (pure: the documents of increments ``sink.apply_trending`` applies once per batch).

Windows are tumbling, aligned on the epoch, by each event's client time.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

WINDOW = timedelta(minutes=5)
COUNTED_TYPES = {"play": "plays", "complete": "completes", "skip": "skips", "like": "likes"}
TRACK = "track"
GENRE = "genre"
LISTENERS = "listeners"  # the kind of a window's listener-set document (key "all")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def window_start(moment: datetime, *, window: timedelta = WINDOW) -> datetime:
    """Start of the tumbling window holding ``moment`` (UTC, aligned on the epoch)."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    width = window.total_seconds()
    return _EPOCH + timedelta(seconds=math.floor((moment - _EPOCH).total_seconds() / width) * width)


def trending_id(kind: str, key: Any, start: datetime) -> str:
    """``_id`` of the ``trending`` document of ``kind``/``key`` in the window starting at ``start``."""
    return f"{kind}/{key}/{start.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def trending_increments(
    events: pd.DataFrame, genres: Mapping[int, tuple[int, str]], *, window: timedelta = WINDOW
) -> list[dict[str, Any]]:
    """Counts of ``events`` (track_id, type, client_ts) per window and track, and per window
    and top-level genre (``genres``: track_id -> (genre id, title)), as ``trending``
    documents holding increments.

    Plain counters: a batch holds a few dozen events, pandas grouping would cost more than
    the counting.
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
        documents.append(_trending_document(TRACK, track_id, start, window, counts,
                                            genre_id=None if genre is None else genre[0]))
    for (start, genre_id), counts in sorted(by_genre.items()):
        documents.append(_trending_document(GENRE, int(genre_id), start, window, counts,
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
