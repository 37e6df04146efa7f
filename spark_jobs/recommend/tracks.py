"""The tracks a recommender may suggest: ids, top-level genre and (optional) embedding.

``load_recommendable_tracks`` reads ``tracks`` (plus played tracks missing from it) and the
usable embeddings of ``fma_platform.embeddings`` (its one rule for bad or mixed-size
vectors); ``recommendable_tracks`` builds the same from a DataFrame (benchmarks, tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pymongo.database import Database

from fma_platform.contracts import Collection
from fma_platform.embeddings import TrackEmbeddings, load_track_embeddings
from spark_jobs.recommend.errors import RecommenderError
from spark_jobs.recommend.events import TRACK_ID

TOP_GENRE_ID = "top_genre_id"
TOP_GENRE_TITLE = "top_genre_title"
UNKNOWN_GENRE = -1


@dataclass(frozen=True)
class RecommendableTracks:
    """Tracks that can be recommended, sorted by id, with genre and (optional) embedding."""

    track_ids: np.ndarray  # int64, sorted, unique
    genre_ids: np.ndarray  # int64, UNKNOWN_GENRE where missing
    genre_titles: Mapping[int, str]
    embeddings: np.ndarray | None  # (n, d) unit rows aligned to track_ids, zero rows where missing
    has_embedding: np.ndarray  # bool (n,)

    @property
    def size(self) -> int:
        return int(self.track_ids.size)

    def positions(self, track_ids) -> np.ndarray:
        """Row of each track; a track that cannot be recommended raises."""
        ids = np.asarray(track_ids, dtype=np.int64)
        rows = np.searchsorted(self.track_ids, ids)
        inside = rows < self.size
        known = np.zeros(ids.shape, dtype=bool)
        known[inside] = self.track_ids[rows[inside]] == ids[inside]
        if not known.all():
            raise RecommenderError(f"tracks {ids[~known][:5].tolist()} are not recommendable tracks")
        return rows

    def embedding_map(self) -> dict[int, np.ndarray]:
        """``{track_id: embedding}`` of the tracks that have one (for the diversity metric)."""
        if self.embeddings is None:
            return {}
        return {int(t): self.embeddings[row] for row, t in enumerate(self.track_ids) if self.has_embedding[row]}

    def genre_title(self, genre_id: int) -> str:
        return self.genre_titles.get(int(genre_id), f"genre {genre_id}")


def recommendable_tracks(tracks: pd.DataFrame, embeddings: TrackEmbeddings | None = None) -> RecommendableTracks:
    """``RecommendableTracks`` from ``track_id`` [+ ``top_genre_id``, ``top_genre_title``] rows
    and the usable embeddings (None or empty: content recommenders are unavailable)."""
    if TRACK_ID not in tracks.columns or tracks.empty:
        raise RecommenderError("recommendations need at least one track with a track_id")
    frame = tracks.drop_duplicates(TRACK_ID).sort_values(TRACK_ID).reset_index(drop=True)
    genres = pd.to_numeric(frame.get(TOP_GENRE_ID, pd.Series(np.nan, index=frame.index)), errors="coerce")
    titles = {}
    if TOP_GENRE_TITLE in frame.columns:
        titles = {int(g): str(t) for g, t in zip(genres, frame[TOP_GENRE_TITLE]) if g == g and isinstance(t, str)}
    track_ids = frame[TRACK_ID].to_numpy(dtype=np.int64)
    matrix, has_embedding = _aligned(embeddings, track_ids)
    return RecommendableTracks(track_ids=track_ids, genre_ids=genres.fillna(UNKNOWN_GENRE).to_numpy(dtype=np.int64),
                               genre_titles=titles, embeddings=matrix, has_embedding=has_embedding)


def load_recommendable_tracks(db: Database, *, played_track_ids: Iterable[int] = ()) -> RecommendableTracks:
    """``tracks`` plus played tracks missing from it, with the usable ``track_features`` embeddings."""
    fields = {"_id": 0, TRACK_ID: 1, TOP_GENRE_ID: 1, TOP_GENRE_TITLE: 1}
    tracks = pd.DataFrame(list(db[Collection.TRACKS].find({}, fields)),
                          columns=[TRACK_ID, TOP_GENRE_ID, TOP_GENRE_TITLE])
    extra = pd.DataFrame({TRACK_ID: sorted(set(map(int, played_track_ids)) - set(tracks[TRACK_ID].astype(int)))})
    return recommendable_tracks(pd.concat([tracks, extra], ignore_index=True), load_track_embeddings(db))


def _aligned(embeddings: TrackEmbeddings | None, track_ids: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Embedding rows aligned to ``track_ids`` (zeros where missing) and which rows have one."""
    if embeddings is None:
        return None, np.zeros(track_ids.size, dtype=bool)
    return embeddings.aligned_to(track_ids)
