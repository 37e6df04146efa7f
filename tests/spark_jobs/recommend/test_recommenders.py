"""The recommenders over one ranking engine, on tiny hand-made data, and the reasons they give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fma_platform.embeddings import embeddings_from_frame
from fma_platform.listening import REASON_LIKES_GENRE, REASON_LISTENERS_LIKE_YOU, REASON_SOUNDS_LIKE
from spark_jobs.recommend.errors import RecommenderError
from spark_jobs.recommend.publish import item_reason
from spark_jobs.recommend.recommenders import (
    content_based, genre_popular, hybrid_recommendations, most_popular, random_tracks, recommendation_lists,
    top_unplayed,
)
from spark_jobs.recommend.tracks import recommendable_tracks

VECTORS = {1: [1, 0], 2: [0.9, 0.1], 3: [0.8, 0.2], 4: [0, 1], 5: [0.1, 0.9], 6: [0.2, 0.8]}


@pytest.fixture(scope="module")
def tracks():
    unit = {t: (np.array(v, dtype=float) / np.linalg.norm(v)).tolist() for t, v in VECTORS.items()}
    embeddings = embeddings_from_frame(pd.DataFrame({"track_id": list(unit), "embedding": list(unit.values())}))
    return recommendable_tracks(pd.DataFrame({
        "track_id": [1, 2, 3, 4, 5, 6], "top_genre_id": [10, 10, 10, 20, 20, 20],
        "top_genre_title": ["Rock"] * 3 + ["Jazz"] * 3,
    }), embeddings)


def test_top_unplayed_excludes_played_and_breaks_ties_by_track_id():
    rows, scores = top_unplayed(np.array([1.0, 3.0, 3.0, -np.inf, 2.0]), np.array([10, 20, 30, 40, 50]), [1], 3)
    assert rows.tolist() == [2, 4, 0] and scores.tolist() == [3.0, 2.0, 1.0]


def test_tracks_outside_the_recommendable_ones_are_refused(tracks):
    with pytest.raises(RecommenderError, match=r"\[99\]"):
        tracks.positions([1, 99])
    assert tracks.genre_title(20) == "Jazz" and tracks.genre_title(7) == "genre 7"


def test_baselines_on_tiny_data(spark, tracks):
    users = spark.createDataFrame(pd.DataFrame({"user_id": ["a", "b"]}))
    played = spark.createDataFrame(pd.DataFrame({"user_id": ["a", "b"], "track_id": [4, 1]}))
    plays = np.array([5.0, 1.0, 3.0, 9.0, 0.0, 2.0])
    popular = recommendation_lists(most_popular(users, played, tracks=tracks, plays=plays, n=3))
    assert popular == {"a": [1, 3, 6], "b": [4, 3, 6]}
    profiles = spark.createDataFrame(pd.DataFrame({"user_id": ["a"], "positive": [[4]]}),
                                     "user_id string, positive array<long>")
    assert recommendation_lists(content_based(profiles, played, tracks=tracks, n=2)) == {"a": [5, 6]}
    genres = spark.createDataFrame(pd.DataFrame({"user_id": ["c"], "genres": [[20, 10]]}),
                                   "user_id string, genres array<long>")
    assert recommendation_lists(genre_popular(genres, played, tracks=tracks, plays=plays, n=4)) == {"c": [4, 1, 6, 3]}
    shuffle = recommendation_lists(random_tracks(users, played, tracks=tracks, seed=3, n=5))
    assert shuffle == recommendation_lists(random_tracks(users, played, tracks=tracks, seed=3, n=5))
    assert sorted(shuffle["a"]) == [1, 2, 3, 5, 6]


def test_hybrid_blends_als_with_content_and_falls_back_to_content(spark, tracks):
    # ALS knows tracks 1-4 only and likes track 3 best; content (positive track 4) prefers 5, 6.
    items = pd.DataFrame({"track_id": [1, 2, 3, 4], "features": [[0.1], [0.2], [0.9], [0.0]]})
    users = spark.createDataFrame(
        pd.DataFrame({"user_id": ["heavy", "light", "new"], "features": [[1.0], [1.0], None],
                      "positive": [[4], [4], [4]], "n_interactions": [1000, 1, 1]}),
        "user_id string, features array<double>, positive array<long>, n_interactions long")
    played = spark.createDataFrame(pd.DataFrame({"user_id": ["heavy", "light", "new"], "track_id": [4, 4, 4]}))
    lists = recommendation_lists(hybrid_recommendations(users, played, tracks=tracks, items=items, n=5))
    assert lists["heavy"][0] == 3  # ALS share 1000 / 1020: ALS's favourite first
    assert lists["light"][:2] == [5, 6]  # ALS share 1 / 21: content's favourites first
    content = recommendation_lists(content_based(users.filter("user_id = 'new'"), played, tracks=tracks, n=5))
    assert lists["new"] == content["new"]  # no factors: content alone


def test_reasons_use_the_shared_texts(tracks):
    assert item_reason("popular", 10, [], tracks) == "popular in Rock"
    assert item_reason("hybrid", 20, [20], tracks) == REASON_LIKES_GENRE.format(genre="Jazz")
    assert item_reason("content", 10, [20], tracks) == REASON_SOUNDS_LIKE
    assert item_reason("als", 20, [20], tracks) == REASON_LISTENERS_LIKE_YOU
