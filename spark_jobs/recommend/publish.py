"""The champion's lists as ``recommendations`` documents (one per user, upserted by ``user_id``).

Which recommender serves a user:

* ``als``: users the champion knows with at least ``shrink`` training interactions;
* ``hybrid``: users the champion knows with fewer (ALS + content, ``fma_platform.listening``);
* ``content``: users the champion does not know (when tracks have embeddings);
* ``popular``: registered users with chosen genres and no listening events (cold start).

Each item carries its reason in words (``fma_platform.listening``'s texts, as the stream's).
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from pymongo.database import Database
from pyspark.sql import DataFrame, SparkSession, functions as F

from fma_platform.contracts import Collection
from fma_platform.listening import (
    REASON_LIKES_GENRE, REASON_LISTENERS_LIKE_YOU, REASON_POPULAR_IN_GENRE, REASON_SOUNDS_LIKE,
)
from fma_platform.mongo import upsert_by
from spark_jobs.recommend.events import TRACK_ID, USER_ID
from spark_jobs.recommend.recommenders import (
    FEATURES, GENRES, N_INTERACTIONS, als_recommendations, content_based, genre_popular, hybrid_recommendations,
    played_genres, popularity_vector, positive_tracks, track_popularity,
)
from spark_jobs.recommend.tracks import RecommendableTracks

SOURCE_ALS = "als"
SOURCE_HYBRID = "hybrid"
SOURCE_CONTENT = "content"
SOURCE_POPULAR = "popular"


def publish_recommendations(db: Database, interactions: DataFrame, *, tracks: RecommendableTracks,
                            user_factors: DataFrame, items: pd.DataFrame, version: str, n: int, shrink: float,
                            as_of, job_run_id: str) -> dict[str, int]:
    """The top ``n`` of every user into ``recommendations``; how many users per source."""
    spark = interactions.sparkSession
    profiles = positive_tracks(interactions).join(user_factors, USER_ID, "left").cache()
    known = profiles.filter(F.col(FEATURES).isNotNull())
    unknown = profiles.filter(F.col(FEATURES).isNull())
    lists = {
        SOURCE_ALS: als_recommendations(known.filter(F.col(N_INTERACTIONS) >= shrink), interactions, tracks=tracks,
                                        items=items, n=n),
        SOURCE_HYBRID: hybrid_recommendations(known.filter(F.col(N_INTERACTIONS) < shrink), interactions,
                                              tracks=tracks, items=items, n=n, shrink=shrink),
    }
    if tracks.embeddings is not None:
        lists[SOURCE_CONTENT] = content_based(unknown, interactions, tracks=tracks, n=n)
    cold = registered_users_without_events(spark, db, interactions)
    if cold is not None:
        plays = popularity_vector(track_popularity(interactions), tracks)
        lists[SOURCE_POPULAR] = genre_popular(cold, interactions, tracks=tracks, plays=plays, n=n)
    genres = {row[USER_ID]: list(row[GENRES]) for row in played_genres(interactions, tracks).collect()}
    counts = {}
    for source, recommendations in lists.items():
        documents = recommendation_documents(recommendations.toPandas(), source=source, tracks=tracks,
                                             user_genres=genres, version=version, as_of=as_of,
                                             job_run_id=job_run_id)
        counts[source] = upsert_by(db[Collection.RECOMMENDATIONS], documents, keys=(USER_ID,)).written
    profiles.unpersist()
    return counts


def registered_users_without_events(spark: SparkSession, db: Database, interactions: DataFrame) -> DataFrame | None:
    """``(user_id, genres)`` of ``users`` with chosen genres and no listening events (cold start)."""
    documents = [
        {USER_ID: str(doc[USER_ID]), GENRES: [int(g) for g in doc.get("genres") or []]}
        for doc in db[Collection.USERS].find({USER_ID: {"$exists": True}}, {"_id": 0, USER_ID: 1, "genres": 1})
    ]
    documents = [doc for doc in documents if doc[GENRES]]
    if not documents:
        return None
    users = spark.createDataFrame(pd.DataFrame(documents), f"{USER_ID} string, {GENRES} array<long>")
    return users.join(interactions.select(USER_ID).distinct(), USER_ID, "left_anti")


def item_reason(source: str, genre_id: int, user_genres: list[int], tracks: RecommendableTracks) -> str:
    """Why a track is recommended, in words."""
    if source == SOURCE_POPULAR:
        return REASON_POPULAR_IN_GENRE.format(genre=tracks.genre_title(genre_id))
    if source in (SOURCE_HYBRID, SOURCE_CONTENT) and genre_id in user_genres:
        return REASON_LIKES_GENRE.format(genre=tracks.genre_title(genre_id))
    return REASON_SOUNDS_LIKE if source == SOURCE_CONTENT else REASON_LISTENERS_LIKE_YOU


def recommendation_documents(frame: pd.DataFrame, *, source: str, tracks: RecommendableTracks,
                             user_genres: dict[str, list[int]], version: str, as_of,
                             job_run_id: str) -> Iterator[dict]:
    """One ``recommendations`` document per user (contract shape); ``generated_at`` = the data's as-of."""
    genre_of = dict(zip(tracks.track_ids.tolist(), tracks.genre_ids.tolist()))
    for user, group in frame.sort_values([USER_ID, "rank"]).groupby(USER_ID, sort=True):
        yield {
            USER_ID: user,
            "items": [
                {"track_id": int(t), "score": float(s),
                 "reason": item_reason(source, genre_of.get(int(t), -1), user_genres.get(user, []), tracks)}
                for t, s in zip(group[TRACK_ID], group["score"])
            ],
            "model_version": version,
            "source": source,
            "generated_at": as_of,
            "job_run_id": job_run_id,
        }
