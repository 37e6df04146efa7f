"""What listening events mean, once for the batch jobs and the stream alike.

* **Early skip**: a skip is a rejection when the listener heard less than
  ``EARLY_SKIP_SECONDS`` or less than ``EARLY_SKIP_SHARE`` of the track (the share only
  when the duration is known). Training turns early skips into negative strength, the
  stream into a push away from the track, the dashboards count them as skips.
* **ALS + content blend**: both score lists are z-scored over the tracks each can score
  (a part that cannot score a track gives it 0, its mean), then
  ``w * z(als) + (1 - w) * z(content)``. The ALS share ``w`` is the one intended
  difference between batch and stream, as a named parameter:
  - nightly lists (``history_als_weight``): ``w = n / (n + HYBRID_SHRINK)`` with ``n`` the
    listener's training interactions: heavy listeners are ALS-driven, light ones lean on
    content;
  - live lists (``STREAM_ALS_WEIGHT``): a fixed share, because the content part is the
    listener's *current session* taste: what they just played must move the list however
    long their history is (the history is what ALS already knows).
* **Reasons**: the texts shown beside a recommendation, one template per cause.
"""

from __future__ import annotations

import numpy as np

# --- skips ----------------------------------------------------------------------------------
EARLY_SKIP_SECONDS = 10.0
EARLY_SKIP_SHARE = 0.3


def is_early_skip(listened_s, duration_s) -> np.ndarray:
    """Element-wise: did a skip after ``listened_s`` of a ``duration_s`` track reject it?

    Arrays or scalars; a missing (NaN/None/<= 0) duration uses the seconds rule alone.
    """
    listened = np.asarray(listened_s, dtype=np.float64)
    duration = np.asarray(np.where(np.equal(duration_s, None), np.nan, duration_s), dtype=np.float64)
    known = np.isfinite(duration) & (duration > 0)
    share = np.divide(listened, duration, out=np.full(np.broadcast(listened, duration).shape, np.inf), where=known)
    return (listened < EARLY_SKIP_SECONDS) | (share < EARLY_SKIP_SHARE)


# --- blending ALS and content -----------------------------------------------------------------
HYBRID_SHRINK = 20.0  # nightly lists: interactions at which ALS and content weigh the same
STREAM_ALS_WEIGHT = 0.4  # live lists: ALS share next to the session taste


def history_als_weight(n_interactions, *, shrink: float = HYBRID_SHRINK) -> np.ndarray:
    """Nightly ALS share ``n / (n + shrink)`` (0 without history)."""
    if shrink <= 0:
        raise ValueError(f"shrink must be positive, got {shrink}")
    n = np.maximum(np.asarray(n_interactions, dtype=np.float64), 0.0)
    return n / (n + shrink)


def z_scores(scores: np.ndarray) -> np.ndarray:
    """Per row (or for a 1-D array): finite scores as z-scores, the rest 0 (the mean).

    Rows with fewer than 2 finite scores, or no spread, become all 0.
    """
    values = np.asarray(scores, dtype=np.float64)
    flat = values.ndim == 1
    rows = values[None, :] if flat else values
    finite = np.isfinite(rows)
    count = finite.sum(axis=1, keepdims=True)
    safe = np.where(finite, rows, 0.0)
    mean = safe.sum(axis=1, keepdims=True) / np.maximum(count, 1)
    spread = np.sqrt(np.where(finite, (safe - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / np.maximum(count, 1))
    usable = (count >= 2) & (spread > 0)
    out = np.where(finite & usable, (safe - mean) / np.where(spread > 0, spread, 1.0), 0.0)
    return out[0] if flat else out


def blend_scores(als: np.ndarray | None, content: np.ndarray | None, *, als_weight) -> np.ndarray | None:
    """``w * z(als) + (1 - w) * z(content)``; one part alone when the other is None.

    ``als_weight`` is a scalar or one weight per row (2-D scores). Tracks neither part
    can score (non-finite in both) stay ``-inf``. None when both parts are None.
    """
    if als is None and content is None:
        return None
    if als is None or content is None:
        only = np.asarray(als if content is None else content, dtype=np.float64)
        return np.where(np.isfinite(only), only, -np.inf)
    als = np.asarray(als, dtype=np.float64)
    content = np.asarray(content, dtype=np.float64)
    weight = np.asarray(als_weight, dtype=np.float64)
    if weight.ndim == 1 and als.ndim == 2:
        weight = weight[:, None]
    blended = weight * z_scores(als) + (1.0 - weight) * z_scores(content)
    reachable = np.isfinite(als) | np.isfinite(content)
    return np.where(reachable, blended, -np.inf)


# --- reasons ------------------------------------------------------------------------------------
REASON_PLAYED = "because you played {title}"
REASON_LIKED = "because you liked {title}"
REASON_LIKES_GENRE = "because you like {genre}"
REASON_SOUNDS_LIKE = "sounds like tracks you liked"
REASON_LISTENERS_LIKE_YOU = "popular with listeners like you"
REASON_POPULAR_IN_GENRE = "popular in {genre}"
REASON_POPULAR_IN_PICKED_GENRE = "popular in {genre}, a genre you picked"  # a newcomer's sign-up choice
REASON_POPULAR = "popular on FMA right now"

# Every template above, for readers that recognise reasons (the browser tour, tests).
REASON_TEMPLATES: tuple[str, ...] = (
    REASON_PLAYED, REASON_LIKED, REASON_LIKES_GENRE, REASON_SOUNDS_LIKE, REASON_LISTENERS_LIKE_YOU,
    REASON_POPULAR_IN_GENRE, REASON_POPULAR_IN_PICKED_GENRE, REASON_POPULAR,
)
