"""A listener's short-term taste: their recent events as one direction in the embedding space (pure).

Each event pulls the taste towards its track (plays, completes, likes, late skips) or
pushes it away (early skips, dislikes), weighted by recency: a signal one half-life old
counts half. Early skips are ``fma_platform.listening.is_early_skip``, the rule the
nightly training uses too. A listener's ``history`` is a frame with the columns
``HISTORY_FIELDS``, newest first or in any order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from fma_platform.listening import is_early_skip

HISTORY_FIELDS = ("track_id", "type", "listened_s", "track_duration_s", "client_ts")
HALF_LIFE_S = 1_800.0  # a signal half an hour old counts half
RECENT_EVENTS = 50  # a listener's last N events make the short-term taste
EXCLUDE_RECENT = 20  # tracks of the last N events are not recommended again
ANCHORS = 5  # recent tracks an item may be explained by

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


def signal_weights(types: Sequence[str], listened_s: Sequence[float],
                   durations: Sequence[float | None]) -> np.ndarray:
    """How much each event pulls (+) or pushes (-) the taste; early skips push away."""
    weights = np.array([EVENT_SIGNAL.get(str(kind), 0.0) for kind in types], dtype=np.float64)
    if weights.size == 0:
        return weights
    skips = np.array([kind == "skip" for kind in types], dtype=bool)
    weights[skips & is_early_skip(list(listened_s), list(durations))] = EARLY_SKIP_SIGNAL
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

    Ages are measured from the newest event of ``history`` (event time, not the wall
    clock). Events on tracks without an embedding (not in ``index_of``) are ignored.
    """
    if history.empty:
        return None
    # Lookups per history row (a few dozen), not a hash table of the whole catalogue; plain
    # numpy on the columns: pandas calls per listener dominated a batch's ranking.
    positions = [index_of.get(int(t)) for t in history["track_id"].to_numpy()]
    keep = np.array([position is not None for position in positions])
    if not keep.any():
        return None
    times = epoch_us(history["client_ts"])[keep]
    ages = (times.max() - times) / 1e6
    weights = signal_weights(
        history["type"].to_numpy()[keep].tolist(), history["listened_s"].to_numpy(dtype=np.float64)[keep].tolist(),
        history["track_duration_s"].to_numpy()[keep].tolist(),
    ) * recency_weights(ages, half_life_s=half_life_s)
    vectors = embeddings[[position for position in positions if position is not None]]
    taste = weights @ vectors
    norm = float(np.linalg.norm(taste))
    if norm < 1e-9:
        return None
    return taste / norm


def recent_anchors(history: pd.DataFrame, titles: Mapping[int, str], *,
                   limit: int = ANCHORS) -> list[tuple[int, str, bool]]:
    """Up to ``limit`` distinct recently completed or liked tracks, newest first: (id, title, liked)."""
    if history.empty:
        return []
    tracks, kinds = history["track_id"].to_numpy(), history["type"].to_numpy()
    events = [(int(tracks[row]), kinds[row]) for row in _newest_first(history)]
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


def empty_history() -> pd.DataFrame:
    """The history of a listener without recent events."""
    return pd.DataFrame(columns=list(HISTORY_FIELDS))


def _newest_first(history: pd.DataFrame) -> np.ndarray:
    """Row positions of ``history`` by ``client_ts``, newest first (ties keep their order).

    Plain numpy on a few dozen rows: per-listener pandas sorts dominated a batch's ranking.
    """
    return np.argsort(-epoch_us(history["client_ts"]), kind="stable")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def epoch_us(moments: pd.Series) -> np.ndarray:
    """Microseconds since the epoch of each moment (naive ones are UTC), as int64.

    Datetime columns through numpy; columns of Python datetimes (as MongoDB returns them)
    one by one, which for a few dozen rows costs less than ``pd.to_datetime``.
    """
    if pd.api.types.is_datetime64_any_dtype(moments.dtype):
        return pd.DatetimeIndex(moments).as_unit("us").asi8
    return np.array([_micros(moment) for moment in moments], dtype=np.int64)


def _micros(moment) -> int:
    if not isinstance(moment, datetime):
        moment = pd.Timestamp(moment).to_pydatetime()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // _MICROSECOND
