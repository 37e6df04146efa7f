"""Top-N recommenders over the recommendable tracks: implicit ALS, baselines, content, hybrid, cold start.

Every recommender is one function returning a DataFrame ``(user_id, track_id, score,
rank)``, rank 1 best, at most ``n`` rows per user, never a track the user played in
training. They share one engine, :func:`rank_unplayed`: per batch of users (Spark
``mapInPandas``) a score function turns user rows into a ``(users, tracks)`` score
matrix over the recommendable tracks (``-inf`` = cannot be recommended), played tracks
are masked, and the best ``n`` are kept, ties broken by track id.

Models:

* ``most_popular``: training plays per track.
* ``random``: a uniform shuffle per user, seeded by (seed, user_id): reproducible.
* ``content``: cosine of each track's embedding with the mean embedding of the user's
  positively played (strength > 0) training tracks; tracks without embedding unreachable.
* ``als``: dot product of Spark implicit-ALS user and item factors; tracks never played
  in training have no factors and are unreachable.
* ``hybrid``: ``fma_platform.listening.blend_scores`` of ALS and content with the nightly
  ALS share ``history_als_weight(n)`` (``n`` the user's training interactions; 0 for a
  user without factors). Heavy users are ALS-driven; users with few events lean on
  content, and never-played tracks (no ALS factors) can still be reached through content.
* ``genre_popular``: cold start: the most played tracks of each genre the user chose or
  played, interleaved genre by genre.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import pandas as pd
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, functions as F

from fma_platform.listening import HYBRID_SHRINK, blend_scores, history_als_weight
from spark_jobs.recommend.errors import RecommenderError
from spark_jobs.recommend.events import TRACK_ID, USER_ID
from spark_jobs.recommend.interactions import PLAYS, STRENGTH, USER_INDEX
from spark_jobs.recommend.tracks import UNKNOWN_GENRE, RecommendableTracks

RECOMMENDATION_SCHEMA = "user_id string, track_id long, score double, rank int"
FEATURES = "features"
PLAYED = "played"
POSITIVE = "positive"
N_INTERACTIONS = "n_interactions"
GENRES = "genres"
ALS_PARAMS = ("rank", "regParam", "alpha", "maxIter")

ScoreBatch = Callable[[pd.DataFrame], np.ndarray]


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


def rank_unplayed(users: DataFrame, played: DataFrame, *, tracks: RecommendableTracks, score_batch: ScoreBatch,
                  n: int) -> DataFrame:
    """Top ``n`` unplayed tracks per row of ``users`` (``user_id`` + what ``score_batch`` reads)."""
    if n < 1:
        raise RecommenderError(f"n must be at least 1, got {n}")
    track_ids = tracks.track_ids
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


def recommendation_lists(recommendations: DataFrame) -> dict[str, list[int]]:
    """``{user_id: [track_id, ...]}`` best first (the metrics' representation)."""
    frame = recommendations.select(USER_ID, TRACK_ID, "rank").toPandas().sort_values([USER_ID, "rank"])
    return {user: group[TRACK_ID].astype(int).tolist() for user, group in frame.groupby(USER_ID, sort=False)}


# --- baselines ------------------------------------------------------------------------------

def track_popularity(train_interactions: DataFrame) -> DataFrame:
    """``(track_id, plays)``: training plays per track (a pair without a play event counts 1)."""
    return train_interactions.groupBy(TRACK_ID).agg(
        F.sum(F.greatest(F.col(PLAYS), F.lit(1))).cast("long").alias(PLAYS)
    )


def popularity_vector(popularity: DataFrame, tracks: RecommendableTracks) -> np.ndarray:
    """Training plays aligned to the recommendable tracks (0 for never-played tracks)."""
    frame = popularity.toPandas()
    vector = np.zeros(tracks.size)
    vector[tracks.positions(frame[TRACK_ID])] = frame[PLAYS].to_numpy(dtype=np.float64)
    return vector


def most_popular(users: DataFrame, played: DataFrame, *, tracks: RecommendableTracks, plays: np.ndarray,
                 n: int) -> DataFrame:
    """The most played tracks of the training data the user has not played."""
    def score(batch: pd.DataFrame) -> np.ndarray:
        return np.broadcast_to(plays, (len(batch), plays.size))

    return rank_unplayed(users.select(USER_ID), played, tracks=tracks, score_batch=score, n=n)


def random_tracks(users: DataFrame, played: DataFrame, *, tracks: RecommendableTracks, seed: int,
                  n: int) -> DataFrame:
    """A reproducible uniform shuffle of the recommendable tracks per user."""
    size = tracks.size

    def score(batch: pd.DataFrame) -> np.ndarray:
        return np.stack([
            np.random.default_rng([seed, zlib.crc32(str(user).encode())]).random(size) for user in batch[USER_ID]
        ]) if len(batch) else np.zeros((0, size))

    return rank_unplayed(users.select(USER_ID), played, tracks=tracks, score_batch=score, n=n)


def positive_tracks(train_interactions: DataFrame) -> DataFrame:
    """``(user_id, positive, n_interactions)``: positively played track ids and the pair count."""
    return train_interactions.groupBy(USER_ID).agg(
        F.collect_list(F.when(F.col(STRENGTH) > 0, F.col(TRACK_ID))).alias(POSITIVE),
        F.count("*").alias(N_INTERACTIONS),
    )


def _content_scores(batch: pd.DataFrame, tracks: RecommendableTracks) -> np.ndarray:
    """Cosine of every embedded track with each user's mean positive embedding; -inf elsewhere."""
    embedded = tracks.has_embedding
    scores = np.full((len(batch), tracks.size), -np.inf)
    if tracks.embeddings is None:
        return scores
    for row, positive in enumerate(batch[POSITIVE]):
        if positive is None or not len(positive):
            continue
        rows = tracks.positions(positive)
        rows = rows[embedded[rows]]
        if not rows.size:
            continue
        profile = tracks.embeddings[rows].mean(axis=0)
        norm = np.linalg.norm(profile)
        if norm == 0.0:
            continue
        scores[row, embedded] = tracks.embeddings[embedded] @ (profile / norm)
    return scores


def content_based(profiles: DataFrame, played: DataFrame, *, tracks: RecommendableTracks, n: int) -> DataFrame:
    """Tracks nearest (cosine) to the mean embedding of the user's positively played tracks."""
    if tracks.embeddings is None:
        raise RecommenderError("content recommendations need track embeddings (track_features.embedding)")
    return rank_unplayed(profiles.select(USER_ID, POSITIVE), played, tracks=tracks,
                         score_batch=lambda batch: _content_scores(batch, tracks), n=n)


def genre_popular(user_genres: DataFrame, played: DataFrame, *, tracks: RecommendableTracks, plays: np.ndarray,
                  n: int) -> DataFrame:
    """Cold start: per user (``user_id``, ``genres`` list), popular tracks of each genre in turn."""
    within_genre_rank = np.zeros(tracks.size)
    for genre in np.unique(tracks.genre_ids):
        rows = np.flatnonzero(tracks.genre_ids == genre)
        order = rows[np.lexsort((tracks.track_ids[rows], -plays[rows]))]
        within_genre_rank[order] = np.arange(order.size)

    def score(batch: pd.DataFrame) -> np.ndarray:
        scores = np.full((len(batch), tracks.size), -np.inf)
        for row, genres in enumerate(batch[GENRES]):
            genres = [] if genres is None else [int(g) for g in genres]
            for turn, genre in enumerate(genres):  # round robin: rank r of genre j -> r * m + j
                in_genre = tracks.genre_ids == genre
                scores[row, in_genre] = -(within_genre_rank[in_genre] * len(genres) + turn)
        return scores

    return rank_unplayed(user_genres.select(USER_ID, GENRES), played, tracks=tracks, score_batch=score, n=n)


def played_genres(train_interactions: DataFrame, tracks: RecommendableTracks, *, top: int = 2) -> DataFrame:
    """``(user_id, genres)``: the user's ``top`` genres by positive strength (for reasons)."""
    spark = train_interactions.sparkSession
    genre_of = spark.createDataFrame(
        pd.DataFrame({TRACK_ID: tracks.track_ids, "genre_id": tracks.genre_ids})
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


def item_factor_matrix(factors: pd.DataFrame, tracks: RecommendableTracks) -> tuple[np.ndarray, np.ndarray]:
    """Item factors aligned to the recommendable tracks, and which rows have factors."""
    factors = factors[np.isin(factors[TRACK_ID].to_numpy(dtype=np.int64), tracks.track_ids)]
    if factors.empty:
        raise RecommenderError("no item factor belongs to a recommendable track")
    matrix = np.zeros((tracks.size, len(factors[FEATURES].iloc[0])))
    rows = tracks.positions(factors[TRACK_ID])
    matrix[rows] = np.stack(factors[FEATURES].to_numpy())
    known = np.zeros(tracks.size, dtype=bool)
    known[rows] = True
    return matrix, known


def _als_scores(batch: pd.DataFrame, matrix: np.ndarray, known: np.ndarray) -> np.ndarray:
    scores = np.full((len(batch), matrix.shape[0]), -np.inf)
    for row, features in enumerate(batch[FEATURES]):
        if features is not None and len(features):
            scores[row, known] = matrix[known] @ np.asarray(features, dtype=np.float64)
    return scores


def als_recommendations(user_features: DataFrame, played: DataFrame, *, tracks: RecommendableTracks,
                        items: pd.DataFrame, n: int) -> DataFrame:
    """Top ``n`` by ALS score for the users of ``user_features`` (``user_id``, ``features``)."""
    matrix, known = item_factor_matrix(items, tracks)
    return rank_unplayed(user_features.select(USER_ID, FEATURES), played, tracks=tracks,
                         score_batch=lambda batch: _als_scores(batch, matrix, known), n=n)


def hybrid_recommendations(users: DataFrame, played: DataFrame, *, tracks: RecommendableTracks,
                           items: pd.DataFrame, n: int, shrink: float = HYBRID_SHRINK) -> DataFrame:
    """ALS and content blended (module doc); ``users``: user_id, features, positive, n_interactions."""
    matrix, known = item_factor_matrix(items, tracks)

    def score(batch: pd.DataFrame) -> np.ndarray:
        als = _als_scores(batch, matrix, known)
        has_factors = np.isfinite(als).any(axis=1)
        weight = np.where(has_factors, history_als_weight(batch[N_INTERACTIONS].fillna(0).to_numpy(), shrink=shrink),
                          0.0)
        return blend_scores(als, _content_scores(batch, tracks), als_weight=weight)

    columns = users.select(USER_ID, FEATURES, POSITIVE, N_INTERACTIONS)
    return rank_unplayed(columns, played, tracks=tracks, score_batch=score, n=n)
