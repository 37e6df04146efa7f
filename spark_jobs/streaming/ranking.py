"""The best tracks for one listener right now, each with the reason shown beside it (pure).

Scores: the listener's session taste (cosine to each track) blended with the ALS
champion's scores by ``fma_platform.listening.blend_scores`` at the stream's ALS share
``STREAM_ALS_WEIGHT``; content alone without ALS factors, ALS alone without a taste,
catalogue popularity when neither exists. Reasons use the shared texts of
``fma_platform.listening``: an item whose blended score owes more to ALS than to the taste
is "popular with listeners like you"; one close to a track the listener just completed or
liked is explained by that track ("because you liked <title>"); other content picks
"sound like tracks you liked".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fma_platform.listening import (
    REASON_LIKED,
    REASON_LISTENERS_LIKE_YOU,
    REASON_PLAYED,
    REASON_POPULAR,
    REASON_SOUNDS_LIKE,
    STREAM_ALS_WEIGHT,
    blend_scores,
    z_scores,
)

TOP_K = 20
REASON_ANCHOR_MIN = 0.7  # cosine above which an item is explained by a recent track


@dataclass(frozen=True)
class RankedItem:
    """One recommendation: the track, its score (higher is better) and why."""

    track_id: int
    score: float
    reason: str

    def as_document(self) -> dict[str, Any]:
        return {"track_id": self.track_id, "score": round(self.score, 6), "reason": self.reason}


def rank_tracks(
    *,
    track_ids: np.ndarray,
    embeddings: np.ndarray,
    taste: np.ndarray | None,
    excluded: Collection[int],
    als_scores: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
    anchors: Sequence[tuple[int, str, bool]] = (),
    index_of: Mapping[int, int] | None = None,
    als_weight: float = STREAM_ALS_WEIGHT,
    k: int = TOP_K,
) -> list[RankedItem]:
    """The best ``k`` tracks for one listener, best first, each with a reason (module doc).

    ``embeddings`` (unit rows) and ``als_scores`` (NaN for tracks without factors) are
    aligned to ``track_ids``; ``anchors`` are the listener's recent positive tracks as
    ``(track_id, title, liked)``, newest first, and ``index_of`` maps a track id to its row.
    Excluded tracks and tracks no part can score are never recommended.
    """
    # In the embeddings' own dtype: a float64 taste would make numpy copy the whole matrix.
    content = embeddings @ np.asarray(taste, dtype=embeddings.dtype) if taste is not None else None
    if content is None and als_scores is None:
        if popularity is None:
            return []
        scores = np.log1p(np.maximum(np.asarray(popularity, dtype=np.float64), 0.0))
    else:
        scores = blend_scores(als_scores, content, als_weight=als_weight)
    candidates = np.flatnonzero(np.isfinite(scores) & ~np.isin(track_ids, np.fromiter(excluded, dtype=np.int64,
                                                                                       count=len(excluded))))
    if candidates.size == 0:
        return []
    top = candidates[_top_rows(scores[candidates], k)]
    shares = _shares(top, scores, content=content, als_scores=als_scores, als_weight=als_weight)
    anchor_rows = _anchor_rows(anchors, index_of)
    return [RankedItem(int(track_ids[row]), float(scores[row]),
                       _reason(row, embeddings, anchor_rows, content_share=content_share, als_share=als_share))
            for row, (content_share, als_share) in zip(top, shares)]


def _shares(rows: np.ndarray, scores: np.ndarray, *, content, als_scores, als_weight: float) -> list[tuple]:
    """``(content part, ALS part)`` of each row's score; None for a part that did not score."""
    if content is None and als_scores is None:
        return [(None, None)] * rows.size
    if als_scores is None:
        return [(float(content[row]), None) for row in rows]
    if content is None:
        return [(None, float(scores[row])) for row in rows]
    content_part = (1.0 - als_weight) * z_scores(content)[rows]  # the blend is linear in its parts
    return [(float(c), float(scores[row] - c)) for row, c in zip(rows, content_part)]


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
        return REASON_LISTENERS_LIKE_YOU
    if anchor_rows:
        similarity = embeddings[[a[0] for a in anchor_rows]] @ embeddings[row]
        best = int(np.argmax(similarity))
        if similarity[best] >= REASON_ANCHOR_MIN:
            _, title, liked = anchor_rows[best]
            return (REASON_LIKED if liked else REASON_PLAYED).format(title=title)
    return REASON_SOUNDS_LIKE
