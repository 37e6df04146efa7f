"""The catalogue as the simulator sees it: FMA tracks with popularity and (optional) embeddings.

``load_catalogue`` reads MongoDB ``tracks`` joined with the usable track embeddings
(``fma_platform.embeddings``: one rule for bad or mixed-size vectors); ``prepare_catalogue``
turns any such DataFrame (also one built in a test) into the numpy arrays the behaviour
model samples from. Bad input raises ``CatalogueError`` with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pymongo.database import Database

from fma_platform.contracts import Collection
from fma_platform.embeddings import embeddings_from_frame, load_track_embeddings
from simulator.errors import CatalogueError, EmptyCatalogueError

TRACK_ID = "track_id"
TOP_GENRE_ID = "top_genre_id"
LISTENS = "listens"
FAVORITES = "favorites"
DURATION = "duration"
EMBEDDING = "embedding"
REQUIRED_COLUMNS: tuple[str, ...] = (TRACK_ID, TOP_GENRE_ID, LISTENS, FAVORITES, DURATION)
CATALOGUE_FIELDS: tuple[str, ...] = (
    TRACK_ID, "title", "artist_name", TOP_GENRE_ID, "top_genre_title", LISTENS, FAVORITES, "interest", DURATION,
)

# FMA audio is 30 s excerpts: a simulated play is a play of the clip.
CLIP_SECONDS = 30.0
# Clips shorter than this (FMA has broken files) are played as this long, so that the
# events of one play keep distinct millisecond timestamps.
MIN_CLIP_SECONDS = 1.0
# Smoothing of the favorites/listens quality ratio: a track with few listens is average.
QUALITY_PRIOR_LISTENS = 20.0
QUALITY_CLIP_Z = 2.5
UNKNOWN_GENRE = -1


@dataclass(frozen=True)
class CatalogueArrays:
    """The catalogue as aligned arrays, tracks grouped by top-level genre.

    Tracks are sorted by genre code: known genres first (code ``i`` is ``genre_ids[i]``,
    its tracks are ``segment_starts[i]:segment_starts[i + 1]``), tracks without a single
    top-level genre last (code ``UNKNOWN_GENRE``).
    """

    track_ids: np.ndarray  # int64
    genre_codes: np.ndarray  # int64, index into genre_ids or UNKNOWN_GENRE
    genre_ids: tuple[int, ...]
    segment_starts: np.ndarray  # int64, len(genre_ids) + 1
    listens: np.ndarray  # float64, >= 0
    log_listens: np.ndarray  # log(1 + listens), precomputed for the popularity weights
    quality: np.ndarray  # float64, z-score of the smoothed favorites/listens ratio
    clip_s: np.ndarray  # float64, seconds played of each track when completed
    embeddings: np.ndarray | None  # float64 (n, d) unit rows; zero rows where missing

    @property
    def size(self) -> int:
        return int(self.track_ids.size)

    @property
    def known_genre_tracks(self) -> int:
        return int(self.segment_starts[-1])

    def rows_by_genre(self, space: np.ndarray | None) -> dict[int, np.ndarray]:
        """Rows of ``space`` (per-track vectors aligned to the catalogue, e.g. the embeddings)
        of each genre's tracks, zero rows left out; genres without any are absent (for
        listeners' seed tracks). ``{}`` when ``space`` is None."""
        if space is None:
            return {}
        by_genre = {}
        for code, genre_id in enumerate(self.genre_ids):
            rows = space[self.segment_starts[code]:self.segment_starts[code + 1]]
            rows = rows[np.any(rows != 0.0, axis=1)]
            if len(rows):
                by_genre[genre_id] = rows
        return by_genre


def load_catalogue(db: Database) -> pd.DataFrame:
    """Tracks of ``db`` with their usable embedding (column absent when no track has one).

    Raises ``pymongo.errors.PyMongoError`` when the server does not answer. An empty
    ``tracks`` collection gives an empty DataFrame with the catalogue columns.
    """
    projection = {"_id": 0, **{field: 1 for field in CATALOGUE_FIELDS}}
    tracks = pd.DataFrame(list(db[Collection.TRACKS].find({}, projection)), columns=list(CATALOGUE_FIELDS))
    embeddings = load_track_embeddings(db)
    if tracks.empty or embeddings.size == 0:
        return tracks
    return tracks.merge(embeddings.frame(), on=TRACK_ID, how="left", validate="one_to_one")


def prepare_catalogue(catalogue: pd.DataFrame) -> CatalogueArrays:
    """Check ``catalogue`` and turn it into ``CatalogueArrays`` for sampling.

    Missing ``listens``/``favorites`` count as 0; a missing or non-positive ``duration``
    plays the full 30 s clip. Embeddings follow ``fma_platform.embeddings``' rule (bad
    vectors are left out, with a warning). Raises ``EmptyCatalogueError`` or ``CatalogueError``.
    """
    _check_columns(catalogue)
    track_ids = _track_ids(catalogue)
    genre_codes, genre_ids = _genre_codes(catalogue[TOP_GENRE_ID])
    order = np.argsort(np.where(genre_codes == UNKNOWN_GENRE, len(genre_ids), genre_codes), kind="stable")
    listens = _counts(catalogue, LISTENS)[order]
    favorites = _counts(catalogue, FAVORITES)[order]
    codes = genre_codes[order]
    segment_starts = np.searchsorted(
        np.where(codes == UNKNOWN_GENRE, len(genre_ids), codes), np.arange(len(genre_ids) + 1), side="left"
    ).astype(np.int64)
    if not genre_ids:
        raise CatalogueError(
            "no track has a top-level genre (top_genre_id): listeners' tastes are defined over genres")
    embeddings = _embeddings(catalogue, track_ids)
    return CatalogueArrays(
        track_ids=track_ids[order],
        genre_codes=codes,
        genre_ids=genre_ids,
        segment_starts=segment_starts,
        listens=listens,
        log_listens=np.log1p(listens),
        quality=quality_scores(listens, favorites),
        clip_s=_clip_seconds(catalogue[DURATION])[order],
        embeddings=None if embeddings is None else embeddings[order],
    )


def quality_scores(listens: np.ndarray, favorites: np.ndarray) -> np.ndarray:
    """How much more often than usual a track is favorited per listen, as a clipped z-score."""
    ratio = np.log((favorites + 1.0) / (listens + QUALITY_PRIOR_LISTENS))
    spread = ratio.std()
    if spread == 0.0:
        return np.zeros_like(ratio)
    return np.clip((ratio - ratio.mean()) / spread, -QUALITY_CLIP_Z, QUALITY_CLIP_Z)


def _check_columns(catalogue: pd.DataFrame) -> None:
    missing = [column for column in REQUIRED_COLUMNS if column not in catalogue.columns]
    if missing:
        raise CatalogueError(f"catalogue lacks columns {missing} (has {list(catalogue.columns)})")
    if catalogue.empty:
        raise EmptyCatalogueError(
            "the catalogue has no tracks: load the FMA metadata first (the ETL's catalogue step)")


def _track_ids(catalogue: pd.DataFrame) -> np.ndarray:
    ids = pd.to_numeric(catalogue[TRACK_ID], errors="coerce")
    if ids.isna().any() or (ids <= 0).any() or (ids != ids.round()).any():
        bad = catalogue.loc[ids.isna() | (ids <= 0) | (ids != ids.round()), TRACK_ID].head(5).tolist()
        raise CatalogueError(f"track_id must be a positive integer, got e.g. {bad}")
    ids = ids.to_numpy(dtype=np.int64)
    if len(np.unique(ids)) != len(ids):
        duplicated = pd.Series(ids)[pd.Series(ids).duplicated()].head(5).tolist()
        raise CatalogueError(f"track_id must be unique, duplicated e.g. {duplicated}")
    return ids


def _genre_codes(genres: pd.Series) -> tuple[np.ndarray, tuple[int, ...]]:
    """Per track, the index of its top-level genre in the sorted genre ids (or UNKNOWN_GENRE)."""
    numeric = pd.to_numeric(genres, errors="coerce")
    bad = genres[numeric.isna() & genres.notna()]
    if len(bad):
        raise CatalogueError(f"top_genre_id must be an integer or missing, got e.g. {bad.head(5).tolist()}")
    known = numeric.dropna()
    genre_ids = tuple(int(g) for g in np.unique(known.to_numpy(dtype=np.int64)))
    codes = np.full(len(genres), UNKNOWN_GENRE, dtype=np.int64)
    present = numeric.notna().to_numpy()
    codes[present] = np.searchsorted(np.array(genre_ids, dtype=np.int64), known.to_numpy(dtype=np.int64))
    return codes, genre_ids


def _counts(catalogue: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(catalogue[column], errors="coerce")
    if (values < 0).any():
        raise CatalogueError(f"{column} must not be negative, got e.g. {values[values < 0].head(5).tolist()}")
    return values.fillna(0.0).to_numpy(dtype=np.float64)


def _clip_seconds(durations: pd.Series) -> np.ndarray:
    seconds = pd.to_numeric(durations, errors="coerce").to_numpy(dtype=np.float64)
    seconds = np.where(np.isfinite(seconds) & (seconds > 0), seconds, CLIP_SECONDS)
    return np.round(np.clip(seconds, MIN_CLIP_SECONDS, CLIP_SECONDS), 3)


def _embeddings(catalogue: pd.DataFrame, track_ids: np.ndarray) -> np.ndarray | None:
    """Unit embedding rows aligned to ``track_ids`` (zeros where a track has none); None without any.

    Tracks without an embedding cell are normal here (they play by genre and popularity
    only); the cells present go through the platform's one rule.
    """
    if EMBEDDING not in catalogue.columns:
        return None
    present = catalogue[EMBEDDING].map(_has_vector).to_numpy(dtype=bool)
    embeddings = embeddings_from_frame(pd.DataFrame({TRACK_ID: track_ids[present],
                                                     EMBEDDING: catalogue[EMBEDDING][present].tolist()}))
    return embeddings.aligned_to(track_ids)[0]


def _has_vector(cell: object) -> bool:
    return isinstance(cell, (list, tuple, np.ndarray)) and len(cell) > 0


def synthetic_catalogue(*, tracks: int, genres: int = 16, dims: int = 16, seed: int = 0) -> pd.DataFrame:
    """A made-up catalogue for tests and benchmarks (labelled by its genre titles).

    Tracks spread evenly over ``genres`` (ids 10, 20, ...), unit embeddings clustered
    around one centre per genre, lognormal listens, 1% favourites.
    """
    rng = np.random.default_rng(seed)
    genre_ids = (np.arange(tracks) % genres + 1) * 10
    centres = rng.normal(size=(genres, dims))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    embeddings = centres[genre_ids // 10 - 1] + rng.normal(0.0, 0.6 / np.sqrt(dims), size=(tracks, dims))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    listens = rng.lognormal(6.0, 1.5, tracks).astype(int)
    return pd.DataFrame({
        "track_id": np.arange(1, tracks + 1) * 3, "top_genre_id": genre_ids,
        "top_genre_title": [f"Genre {g}" for g in genre_ids], "listens": listens,
        "favorites": rng.binomial(listens, 0.01), "duration": rng.uniform(10.0, 400.0, tracks),
        "embedding": list(embeddings),
    })
