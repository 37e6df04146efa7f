"""Top-N recommenders over a catalogue: implicit ALS, baselines, content, hybrid, cold start.

Every recommender is one function returning a DataFrame ``(user_id, track_id, score,
rank)``, rank 1 best, at most ``n`` rows per user, never a track the user played in
training. They share one engine, :func:`rank_unplayed`: per batch of users (Spark
``mapInPandas``) a score function turns user rows into a ``(users, tracks)`` score
matrix over the catalogue (``-inf`` = cannot be recommended), played tracks are masked,
and the best ``n`` are kept, ties broken by track id.

Models:

* ``most_popular``: training plays per track.
* ``random``: a uniform shuffle per user, seeded by (seed, user_id): reproducible.
* ``content``: cosine of each track's embedding with the mean embedding of the user's
  positively played (strength > 0) training tracks; tracks without embedding unreachable.
* ``als``: dot product of Spark implicit-ALS user and item factors; tracks never played
  in training have no factors and are unreachable.
* ``hybrid``: ``w * z(als) + (1 - w) * z(content)`` with ``w = n / (n + HYBRID_SHRINK)``,
  ``n`` the user's training interactions and ``z`` a per-user z-score over the tracks a
  part can score (a part that cannot score a track gives it 0, its mean). Heavy users are
  ALS-driven; users with few events lean on content, and never-played tracks (no ALS
  factors) can still be reached through their content neighbours.
* ``genre_popular``: cold start: the most played tracks of each genre the user chose or
  played, interleaved genre by genre.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pymongo.database import Database
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, functions as F

from fma_platform.contracts import Collection
from spark_jobs.interactions import STRENGTH, TRACK_ID, USER_ID, USER_INDEX

RECOMMENDATION_SCHEMA = "user_id string, track_id long, score double, rank int"
FEATURES = "features"
PLAYED = "played"
POSITIVE = "positive"
N_INTERACTIONS = "n_interactions"
GENRES = "genres"
HYBRID_SHRINK = 20.0
UNKNOWN_GENRE = -1
ALS_PARAMS = ("rank", "regParam", "alpha", "maxIter")

ScoreBatch = Callable[[pd.DataFrame], np.ndarray]


class RecommenderError(ValueError):
    """Input a recommender cannot work with (unknown tracks, missing embeddings, bad params)."""


# --- the catalogue --------------------------------------------------------------------------

@dataclass(frozen=True)
class Catalogue:
    """Tracks that can be recommended, sorted by id, with genre and (optional) embedding."""

    track_ids: np.ndarray  # int64, sorted, unique
    genre_ids: np.ndarray  # int64, UNKNOWN_GENRE where missing
    genre_titles: Mapping[int, str]
    embeddings: np.ndarray | None  # (n, d) unit rows, zero rows where missing

    @property
    def size(self) -> int:
        return int(self.track_ids.size)

    @property
    def has_embedding(self) -> np.ndarray:
        if self.embeddings is None:
            return np.zeros(self.size, dtype=bool)
        return np.any(self.embeddings != 0.0, axis=1)

    def positions(self, track_ids) -> np.ndarray:
        """Row of each track in the catalogue; an unknown track raises."""
        ids = np.asarray(track_ids, dtype=np.int64)
        rows = np.searchsorted(self.track_ids, ids)
        inside = rows < self.size
        known = np.zeros(ids.shape, dtype=bool)
        known[inside] = self.track_ids[rows[inside]] == ids[inside]
        if not known.all():
            raise RecommenderError(f"tracks {ids[~known][:5].tolist()} are not in the catalogue")
        return rows

    def embedding_map(self) -> dict[int, np.ndarray]:
        """``{track_id: embedding}`` of the tracks that have one (for the diversity metric)."""
        if self.embeddings is None:
            return {}
        return {int(t): self.embeddings[i] for i, t in enumerate(self.track_ids) if self.has_embedding[i]}


def catalogue_from_frame(tracks: pd.DataFrame) -> Catalogue:
    """A ``Catalogue`` from ``track_id`` [+ ``top_genre_id``, ``top_genre_title``, ``embedding``]."""
    if TRACK_ID not in tracks.columns or tracks.empty:
        raise RecommenderError("the catalogue needs at least one track with a track_id")
    frame = tracks.drop_duplicates(TRACK_ID).sort_values(TRACK_ID).reset_index(drop=True)
    genres = pd.to_numeric(frame.get("top_genre_id", pd.Series(np.nan, index=frame.index)), errors="coerce")
    titles = {}
    if "top_genre_title" in frame.columns:
        titles = {int(g): str(t) for g, t in zip(genres, frame["top_genre_title"]) if g == g and isinstance(t, str)}
    return Catalogue(
        track_ids=frame[TRACK_ID].to_numpy(dtype=np.int64),
        genre_ids=genres.fillna(UNKNOWN_GENRE).to_numpy(dtype=np.int64),
        genre_titles=titles,
        embeddings=_unit_rows(frame["embedding"]) if "embedding" in frame.columns else None,
    )


def _unit_rows(cells: pd.Series) -> np.ndarray | None:
    vectors = [cell for cell in cells if isinstance(cell, (list, tuple, np.ndarray)) and len(cell)]
    if not vectors:
        return None
    dims = {len(v) for v in vectors}
    if len(dims) != 1:
        raise RecommenderError(f"embeddings must share one dimension, got {sorted(dims)}")
    matrix = np.zeros((len(cells), dims.pop()))
    for row, cell in enumerate(cells):
        if isinstance(cell, (list, tuple, np.ndarray)) and len(cell):
            matrix[row] = np.asarray(cell, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def load_catalogue(db: Database, *, played_track_ids=()) -> Catalogue:
    """``tracks`` joined with ``track_features.embedding``, plus played tracks missing from it."""
    fields = {"_id": 0, TRACK_ID: 1, "top_genre_id": 1, "top_genre_title": 1}
    tracks = pd.DataFrame(list(db[Collection.TRACKS].find({}, fields)),
                          columns=[TRACK_ID, "top_genre_id", "top_genre_title"])
    features = pd.DataFrame(
        list(db[Collection.TRACK_FEATURES].find({"embedding": {"$exists": True}}, {"_id": 0, TRACK_ID: 1, "embedding": 1})),
        columns=[TRACK_ID, "embedding"],
    )
    extra = pd.DataFrame({TRACK_ID: sorted(set(map(int, played_track_ids)) - set(tracks[TRACK_ID].astype(int)))})
    frame = pd.concat([tracks, extra], ignore_index=True).merge(features, on=TRACK_ID, how="left")
    return catalogue_from_frame(frame)


# --- the ranking engine ---------------------------------------------------------------------

def top_unplayed(scores: np.ndarray, track_ids: np.ndarray, played_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and scores of the best ``n`` finite scores, played rows excluded, ties by track id."""
    scores = scores.astype(np.float64, copy=True)
    if played_rows is not None and len(played_rows):
        scores[np.asarray(played_rows, dtype=np.int64)] = -np.inf
    candidates = np.flatnonzero(np.isfinite(scores))
    if candidates.size > 4 * n:  # keep the best 4n (plus ties at the edge) before sorting
        edge = np.partition(scores[candidates], candidates.size - n)[candidates.size - n]
        candidates = candidates[scores[candidates] >= edge]
    order = np.lexsort((track_ids[candidates], -scores[candidates]))[:n]
    rows = candidates[order]
    return rows, scores[rows]


def rank_unplayed(users: DataFrame, played: DataFrame, *, catalogue: Catalogue, score_batch: ScoreBatch,
                  n: int) -> DataFrame:
    """Top ``n`` unplayed tracks per row of ``users`` (``user_id`` + what ``score_batch`` reads)."""
    if n < 1:
        raise RecommenderError(f"n must be at least 1, got {n}")
    track_ids = catalogue.track_ids
    played_lists = played.groupBy(USER_ID).agg(F.collect_list(TRACK_ID).alias(PLAYED))
    rows = users.join(played_lists, USER_ID, "left")

    def rank(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            scores = score_batch(batch)
            out_users, out_tracks, out_scores, out_ranks = [], [], [], []
            for user, row_scores, played_ids in zip(batch[USER_ID], scores, batch[PLAYED]):
                played_rows = None
                if played_ids is not None and len(played_ids):
                    ids = np.asarray(played_ids, dtype=np.int64)
                    pos = np.searchsorted(track_ids, ids).clip(0, track_ids.size - 1)
                    played_rows = pos[track_ids[pos] == ids]
                top, top_scores = top_unplayed(row_scores, track_ids, played_rows, n)
                out_users += [user] * top.size
                out_tracks.append(track_ids[top])
                out_scores.append(top_scores)
                out_ranks.append(np.arange(1, top.size + 1, dtype=np.int32))
            yield pd.DataFrame({
                USER_ID: pd.Series(out_users, dtype=object),
                TRACK_ID: np.concatenate(out_tracks) if out_tracks else np.zeros(0, np.int64),
                "score": np.concatenate(out_scores) if out_scores else np.zeros(0),
                "rank": np.concatenate(out_ranks) if out_ranks else np.zeros(0, np.int32),
            })

    return rows.mapInPandas(rank, RECOMMENDATION_SCHEMA)


# --- baselines ------------------------------------------------------------------------------

def track_popularity(train_interactions: DataFrame) -> DataFrame:
    """``(track_id, plays)``: training plays per track (a pair without a play event counts 1)."""
    return train_interactions.groupBy(TRACK_ID).agg(
        F.sum(F.greatest(F.col("plays"), F.lit(1))).cast("long").alias("plays")
    )


def popularity_vector(popularity: DataFrame, catalogue: Catalogue) -> np.ndarray:
    """Training plays aligned to the catalogue (0 for never-played tracks)."""
    frame = popularity.toPandas()
    vector = np.zeros(catalogue.size)
    vector[catalogue.positions(frame[TRACK_ID])] = frame["plays"].to_numpy(dtype=np.float64)
    return vector


def most_popular(users: DataFrame, played: DataFrame, *, catalogue: Catalogue, plays: np.ndarray,
                 n: int) -> DataFrame:
    """The most played tracks of the training data the user has not played."""
    def score(batch: pd.DataFrame) -> np.ndarray:
        return np.broadcast_to(plays, (len(batch), plays.size))

    return rank_unplayed(users.select(USER_ID), played, catalogue=catalogue, score_batch=score, n=n)


def random_tracks(users: DataFrame, played: DataFrame, *, catalogue: Catalogue, seed: int, n: int) -> DataFrame:
    """A reproducible uniform shuffle of the catalogue per user."""
    size = catalogue.size

    def score(batch: pd.DataFrame) -> np.ndarray:
        return np.stack([
            np.random.default_rng([seed, zlib.crc32(str(user).encode())]).random(size) for user in batch[USER_ID]
        ]) if len(batch) else np.zeros((0, size))

    return rank_unplayed(users.select(USER_ID), played, catalogue=catalogue, score_batch=score, n=n)


def positive_tracks(train_interactions: DataFrame) -> DataFrame:
    """``(user_id, positive, n_interactions)``: positively played track ids and the pair count."""
    return train_interactions.groupBy(USER_ID).agg(
        F.collect_list(F.when(F.col(STRENGTH) > 0, F.col(TRACK_ID))).alias(POSITIVE),
        F.count("*").alias(N_INTERACTIONS),
    )


def _content_scores(batch: pd.DataFrame, catalogue: Catalogue) -> np.ndarray:
    """Cosine of every embedded track with each user's mean positive embedding; -inf elsewhere."""
    embedded = catalogue.has_embedding
    scores = np.full((len(batch), catalogue.size), -np.inf)
    if catalogue.embeddings is None:
        return scores
    for row, positive in enumerate(batch[POSITIVE]):
        if positive is None or not len(positive):
            continue
        rows = catalogue.positions(positive)
        rows = rows[embedded[rows]]
        if not rows.size:
            continue
        profile = catalogue.embeddings[rows].mean(axis=0)
        norm = np.linalg.norm(profile)
        if norm == 0.0:
            continue
        scores[row, embedded] = catalogue.embeddings[embedded] @ (profile / norm)
    return scores


def content_based(profiles: DataFrame, played: DataFrame, *, catalogue: Catalogue, n: int) -> DataFrame:
    """Tracks nearest (cosine) to the mean embedding of the user's positively played tracks."""
    if catalogue.embeddings is None:
        raise RecommenderError("content recommendations need track embeddings (track_features.embedding)")
    return rank_unplayed(profiles.select(USER_ID, POSITIVE), played, catalogue=catalogue,
                         score_batch=lambda batch: _content_scores(batch, catalogue), n=n)


def genre_popular(user_genres: DataFrame, played: DataFrame, *, catalogue: Catalogue, plays: np.ndarray,
                  n: int) -> DataFrame:
    """Cold start: per user (``user_id``, ``genres`` list), popular tracks of each genre in turn."""
    within_genre_rank = np.zeros(catalogue.size)
    for genre in np.unique(catalogue.genre_ids):
        rows = np.flatnonzero(catalogue.genre_ids == genre)
        order = rows[np.lexsort((catalogue.track_ids[rows], -plays[rows]))]
        within_genre_rank[order] = np.arange(order.size)

    def score(batch: pd.DataFrame) -> np.ndarray:
        scores = np.full((len(batch), catalogue.size), -np.inf)
        for row, genres in enumerate(batch[GENRES]):
            genres = [] if genres is None else [int(g) for g in genres]
            for turn, genre in enumerate(genres):  # round robin: rank r of genre j -> r * m + j
                in_genre = catalogue.genre_ids == genre
                scores[row, in_genre] = -(within_genre_rank[in_genre] * len(genres) + turn)
        return scores

    return rank_unplayed(user_genres.select(USER_ID, GENRES), played, catalogue=catalogue, score_batch=score, n=n)


def played_genres(train_interactions: DataFrame, catalogue: Catalogue, *, top: int = 2) -> DataFrame:
    """``(user_id, genres)``: the user's ``top`` genres by positive strength (for reasons, cold start)."""
    spark = train_interactions.sparkSession
    genre_of = spark.createDataFrame(
        pd.DataFrame({TRACK_ID: catalogue.track_ids, "genre_id": catalogue.genre_ids})
    ).filter(F.col("genre_id") != UNKNOWN_GENRE)
    totals = (
        train_interactions.filter(F.col(STRENGTH) > 0).join(genre_of, TRACK_ID)
        .groupBy(USER_ID, "genre_id").agg(F.sum(STRENGTH).alias("weight"))
    )
    ordered = totals.groupBy(USER_ID).agg(
        F.sort_array(F.collect_list(F.struct((-F.col("weight")).alias("w"), F.col("genre_id").alias("g")))).alias("s")
    )
    return ordered.select(USER_ID, F.slice(F.col("s.g"), 1, top).alias(GENRES))


# --- ALS ------------------------------------------------------------------------------------

def check_als_params(params: Mapping) -> dict:
    """The ALS hyper-parameters as typed values; unknown or bad ones raise with the name."""
    unknown = sorted(set(params) - set(ALS_PARAMS) - {"nonnegative"})
    if unknown:
        raise RecommenderError(f"unknown ALS parameters {unknown}; known: {list(ALS_PARAMS)} + nonnegative")
    typed = {
        "rank": int(params.get("rank", 10)),
        "regParam": float(params.get("regParam", 0.1)),
        "alpha": float(params.get("alpha", 10.0)),
        "maxIter": int(params.get("maxIter", 10)),
        "nonnegative": bool(params.get("nonnegative", False)),
    }
    if typed["rank"] < 1 or typed["maxIter"] < 1 or typed["regParam"] < 0 or typed["alpha"] < 0:
        raise RecommenderError(f"ALS parameters out of range: {typed}")
    return typed


def fit_als(indexed_interactions: DataFrame, params: Mapping, *, seed: int) -> ALSModel:
    """Implicit ALS on ``(user_index, track_id, strength)``."""
    typed = check_als_params(params)
    als = ALS(
        userCol=USER_INDEX, itemCol=TRACK_ID, ratingCol=STRENGTH, implicitPrefs=True,
        coldStartStrategy="drop", seed=seed, **typed,
    )
    data = indexed_interactions.select(USER_INDEX, F.col(TRACK_ID).cast("int").alias(TRACK_ID), STRENGTH)
    return als.fit(data)


def user_factors(model: ALSModel, users: DataFrame) -> DataFrame:
    """``(user_id, features)``: the model's user factors keyed by the string user id."""
    factors = model.userFactors.select(F.col("id").alias(USER_INDEX), F.col(FEATURES))
    return factors.join(users, USER_INDEX).select(USER_ID, FEATURES)


def item_factors(model: ALSModel) -> DataFrame:
    """``(track_id, features)``: the model's item factors."""
    return model.itemFactors.select(F.col("id").cast("long").alias(TRACK_ID), F.col(FEATURES))


def item_factor_matrix(factors: pd.DataFrame, catalogue: Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """Item factors aligned to the catalogue, and which rows have factors."""
    factors = factors[np.isin(factors[TRACK_ID].to_numpy(dtype=np.int64), catalogue.track_ids)]
    if factors.empty:
        raise RecommenderError("no item factor belongs to a catalogue track")
    matrix = np.zeros((catalogue.size, len(factors[FEATURES].iloc[0])))
    rows = catalogue.positions(factors[TRACK_ID])
    matrix[rows] = np.stack(factors[FEATURES].to_numpy())
    known = np.zeros(catalogue.size, dtype=bool)
    known[rows] = True
    return matrix, known


def _als_scores(batch: pd.DataFrame, matrix: np.ndarray, known: np.ndarray) -> np.ndarray:
    scores = np.full((len(batch), matrix.shape[0]), -np.inf)
    for row, features in enumerate(batch[FEATURES]):
        if features is not None and len(features):
            scores[row, known] = matrix[known] @ np.asarray(features, dtype=np.float64)
    return scores


def als_recommendations(user_features: DataFrame, played: DataFrame, *, catalogue: Catalogue,
                        items: pd.DataFrame, n: int) -> DataFrame:
    """Top ``n`` by ALS score for the users of ``user_features`` (``user_id``, ``features``)."""
    matrix, known = item_factor_matrix(items, catalogue)
    return rank_unplayed(user_features.select(USER_ID, FEATURES), played, catalogue=catalogue,
                         score_batch=lambda batch: _als_scores(batch, matrix, known), n=n)


def _z_scores(scores: np.ndarray) -> np.ndarray:
    """Per row: finite scores as z-scores, the rest 0 (the row's mean)."""
    out = np.zeros_like(scores)
    for row in range(scores.shape[0]):
        finite = np.isfinite(scores[row])
        if finite.sum() < 2:
            continue
        values = scores[row, finite]
        spread = values.std()
        out[row, finite] = (values - values.mean()) / spread if spread > 0 else 0.0
    return out


def hybrid_weight(n_interactions: np.ndarray, *, shrink: float = HYBRID_SHRINK) -> np.ndarray:
    """Share of ALS in the hybrid: ``n / (n + shrink)`` (0 without history)."""
    n = np.asarray(n_interactions, dtype=np.float64)
    return n / (n + shrink)


def hybrid_recommendations(users: DataFrame, played: DataFrame, *, catalogue: Catalogue, items: pd.DataFrame,
                           n: int, shrink: float = HYBRID_SHRINK) -> DataFrame:
    """Blend of ALS and content (module doc); ``users``: user_id, features, positive, n_interactions."""
    matrix, known = item_factor_matrix(items, catalogue)
    reachable = known | catalogue.has_embedding

    def score(batch: pd.DataFrame) -> np.ndarray:
        als = _als_scores(batch, matrix, known)
        has_factors = np.isfinite(als).any(axis=1)
        weight = np.where(has_factors, hybrid_weight(batch[N_INTERACTIONS].fillna(0).to_numpy(), shrink=shrink), 0.0)
        blended = weight[:, None] * _z_scores(als) + (1 - weight[:, None]) * _z_scores(_content_scores(batch, catalogue))
        blended[:, ~reachable] = -np.inf
        return blended

    columns = users.select(USER_ID, FEATURES, POSITIVE, N_INTERACTIONS)
    return rank_unplayed(columns, played, catalogue=catalogue, score_batch=score, n=n)


def recommendation_lists(recommendations: DataFrame) -> dict[str, list[int]]:
    """``{user_id: [track_id, ...]}`` best first (the metrics' representation)."""
    frame = recommendations.select(USER_ID, TRACK_ID, "rank").toPandas().sort_values([USER_ID, "rank"])
    return {user: group[TRACK_ID].astype(int).tolist() for user, group in frame.groupby(USER_ID, sort=False)}
