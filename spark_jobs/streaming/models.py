"""What the stream ranks with: the catalogue of tracks (with their embeddings) and the ALS
champion's factors, kept in memory and reloaded only when the models change.

* The catalogue: every track of ``tracks`` (titles, top-level genres, listens) and the
  usable embeddings of those tracks (``fma_platform.embeddings.load_track_embeddings``,
  its one rule for bad or mixed vectors). It is reloaded when the feature transform's
  ``CURRENT`` pointer moves, when a batch names a track added to ``tracks`` since, and at
  least every ``refresh_s`` seconds.
* The ALS factors: the version the ``als`` family's ``CHAMPION`` pointer names, aligned to
  the catalogue's embedded tracks; reloaded when the pointer or the catalogue changes. A
  champion that cannot be read is reported (``ModelCache.als_error``, then the batch
  metrics) and ranking falls back to content only: the stream keeps going.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pymongo.database import Database

from fma_platform.contracts import ALS_ITEM_FACTORS, ALS_USER_FACTORS, Collection, ModelFamily, Pointer
from fma_platform.embeddings import TrackEmbeddings, load_track_embeddings
from fma_platform.model_store import ModelStore, ModelStoreError

log = logging.getLogger(__name__)

DEFAULT_REFRESH_S = 600.0  # reload the catalogue at least this often (new tracks, new embeddings)


@dataclass(frozen=True)
class StreamCatalogue:
    """Every known track id, and the tracks with a usable embedding as aligned arrays."""

    known_ids: frozenset[int]  # every track of ``tracks``: events on others are dead letters
    embeddings: TrackEmbeddings  # of known tracks only, sorted by track id
    titles: dict[int, str]
    genres: dict[int, tuple[int, str]]  # track_id -> (top_genre_id, top_genre_title)
    popularity: np.ndarray  # listens of each embedded track (aligned to ``embeddings``)
    version: str | None  # the feature transform's CURRENT (None before the first one)
    loaded_at: float  # time.monotonic() of the load

    @property
    def track_ids(self) -> np.ndarray:
        return self.embeddings.ids

    @property
    def vectors(self) -> np.ndarray:
        return self.embeddings.vectors

    @property
    def index_of(self) -> dict[int, int]:
        return self.embeddings.index_of


def load_stream_catalogue(db: Database, *, version: str | None) -> StreamCatalogue:
    """The tracks of ``tracks`` and their usable embeddings from ``track_features``."""
    tracks = list(db[Collection.TRACKS].find(
        {}, {"_id": 0, "track_id": 1, "title": 1, "top_genre_id": 1, "top_genre_title": 1, "listens": 1}
    ))
    titles = {int(t["track_id"]): t.get("title") or f"track {t['track_id']}" for t in tracks}
    genres = {int(t["track_id"]): (int(t["top_genre_id"]), t.get("top_genre_title") or str(t["top_genre_id"]))
              for t in tracks if t.get("top_genre_id") is not None}
    listens = {int(t["track_id"]): float(t.get("listens") or 0) for t in tracks}
    loaded = load_track_embeddings(db)
    embeddings = loaded.restricted_to(titles.keys())
    if embeddings.size < loaded.size:
        log.warning("%d track embedding(s) of tracks not in %s left out", loaded.size - embeddings.size,
                    Collection.TRACKS)
    if embeddings.size == 0:
        log.warning("no usable track embeddings in %s yet: recommendations wait for the ETL",
                    Collection.TRACK_FEATURES)
    return StreamCatalogue(
        known_ids=frozenset(titles),
        embeddings=embeddings,
        titles=titles,
        genres=genres,
        popularity=np.array([listens[int(t)] for t in embeddings.ids], dtype=np.float64),
        version=version,
        loaded_at=time.monotonic(),
    )


@dataclass(frozen=True)
class AlsFactors:
    """The ALS champion's factors: users by id, items aligned to a catalogue's embedded tracks."""

    version: str
    user_index: dict[str, int]
    user_factors: np.ndarray  # (users, rank)
    item_factors: np.ndarray  # (catalogue tracks, rank), zero rows where the model has none
    has_item: np.ndarray  # bool per catalogue track

    def scores_for(self, user_id: str) -> np.ndarray | None:
        """``dot(user, item)`` per catalogue track, NaN where the model has no item factors;
        None for a listener the champion does not know."""
        row = self.user_index.get(user_id)
        if row is None:
            return None
        return np.where(self.has_item, self.item_factors @ self.user_factors[row], np.nan)


def load_als_factors(version_dir: Path, version: str, catalogue: StreamCatalogue) -> AlsFactors:
    """The factors of one ALS version folder (files or Spark Parquet folders)."""
    users = pd.read_parquet(version_dir / ALS_USER_FACTORS, columns=["user_id", "features"])
    items = pd.read_parquet(version_dir / ALS_ITEM_FACTORS, columns=["track_id", "features"])
    user_factors = np.array(users["features"].tolist(), dtype=np.float64)
    rank = user_factors.shape[1] if user_factors.ndim == 2 else 0
    item_factors = np.zeros((catalogue.embeddings.size, rank))
    has_item = np.zeros(catalogue.embeddings.size, dtype=bool)
    rows = catalogue.embeddings.positions(items["track_id"].astype("int64"))
    found = rows >= 0
    if found.any():
        item_factors[rows[found]] = np.array(items["features"].tolist(), dtype=np.float64)[found]
        has_item[rows[found]] = True
    return AlsFactors(version, {str(u): i for i, u in enumerate(users["user_id"])}, user_factors,
                      item_factors, has_item)


class ModelCache:
    """The catalogue and the ALS factors, reloaded only when they change (module doc)."""

    def __init__(self, db: Database, models_dir: Path, *, refresh_s: float = DEFAULT_REFRESH_S) -> None:
        self._db = db
        self._transforms = ModelStore.of(models_dir, ModelFamily.FEATURE_TRANSFORM)
        self._als_store = ModelStore.of(models_dir, ModelFamily.ALS)
        self._refresh_s = refresh_s
        self._catalogue: StreamCatalogue | None = None
        self._als: AlsFactors | None = None
        self._als_loaded_for: tuple[str | None, StreamCatalogue] | None = None
        self.als_error: str | None = None

    def catalogue(self) -> StreamCatalogue:
        """The current catalogue (reloaded when the transform moved or it is older than ``refresh_s``)."""
        version = self._transform_version()
        current = self._catalogue
        if current is None or current.version != version or time.monotonic() - current.loaded_at > self._refresh_s:
            self._catalogue = load_stream_catalogue(self._db, version=version)
            log.info("catalogue loaded: %d tracks, %d with embeddings (transform %s)",
                     len(self._catalogue.known_ids), self._catalogue.embeddings.size, version)
        return self._catalogue

    def reload_if_new_tracks(self, track_ids: set[int]) -> StreamCatalogue:
        """The catalogue, reloaded first when ``tracks`` now holds some of ``track_ids`` it misses."""
        catalogue = self.catalogue()
        missing = sorted(t for t in track_ids if t not in catalogue.known_ids)
        if missing and self._db[Collection.TRACKS].count_documents({"track_id": {"$in": missing}}, limit=1):
            self._catalogue = load_stream_catalogue(self._db, version=catalogue.version)
        return self._catalogue

    def invalidate_catalogue(self) -> None:
        """Reload the catalogue at the next ``catalogue()`` (the executors met tracks it misses)."""
        self._catalogue = None

    def als(self, catalogue: StreamCatalogue) -> AlsFactors | None:
        """The champion's factors aligned to ``catalogue``; None without a usable champion."""
        try:
            version = self._als_store.read_pointer(Pointer.CHAMPION)
        except ModelStoreError as exc:
            self._report_als_error(f"ALS champion pointer unreadable: {exc}")
            self._als, self._als_loaded_for = None, None
            return None
        loaded_for = self._als_loaded_for
        if loaded_for is not None and loaded_for[0] == version and loaded_for[1] is catalogue:
            return self._als
        self._als, self._als_loaded_for, self.als_error = None, (version, catalogue), None
        if version is not None:
            try:
                self._als = load_als_factors(self._als_store.version_dir(version), version, catalogue)
            except (OSError, ValueError, KeyError) as exc:
                self._report_als_error(f"ALS champion {version} unreadable: {type(exc).__name__}: {exc}")
        return self._als

    def _report_als_error(self, message: str) -> None:
        if message != self.als_error:  # once per new problem, not once per batch
            log.error("%s; ranking by content only", message)
        self.als_error = message

    def _transform_version(self) -> str | None:
        try:
            return self._transforms.read_pointer(Pointer.CURRENT)
        except ModelStoreError as exc:
            log.error("feature transform pointer unreadable (%s): the catalogue is labelled unversioned", exc)
            return None


@dataclass(frozen=True)
class RankingModels:
    """What the executors rank with: the catalogue, the ALS factors (or None) and their label."""

    catalogue: StreamCatalogue
    als: AlsFactors | None
    version: str


class ModelBroadcast:
    """The ``RankingModels`` of a ``ModelCache`` as one Spark broadcast variable, made again only
    when the cache hands out another catalogue or other ALS factors (a new transform or
    champion was published, new tracks appeared, or the periodic refresh): each Python worker
    then unpickles it once, instead of every batch loading the models.

    ``current()`` is called by the driver before each batch; the previous broadcast is
    released (``unpersist``) once replaced.
    """

    def __init__(self, spark_context, cache: ModelCache, *, label) -> None:
        self._sc = spark_context
        self._cache = cache
        self._label = label  # (catalogue, als) -> the model version text
        self._variable = None
        self._models: RankingModels | None = None
        self.broadcasts = 0  # how many times the models were broadcast (tests, logs)

    def current(self):
        """``(broadcast variable, RankingModels)`` for the next batch."""
        catalogue = self._cache.catalogue()
        als = self._cache.als(catalogue)
        models = self._models
        if models is None or models.catalogue is not catalogue or models.als is not als:
            models = RankingModels(catalogue, als, self._label(catalogue, als))
            _ = catalogue.embeddings.index_of  # built once here and shipped inside the broadcast
            previous, self._variable = self._variable, self._sc.broadcast(models)
            self._models = models
            self.broadcasts += 1
            if previous is not None:
                previous.unpersist(blocking=False)
            log.info("ranking models broadcast to the executors: %s, %d tracks with embeddings",
                     models.version, catalogue.embeddings.size)
        return self._variable, models
