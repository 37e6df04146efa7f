"""Exact and LSH neighbours: hand-made geometry, and LSH against exact kNN on clustered embeddings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fma_platform.embeddings import embeddings_from_frame
from spark_jobs.similarity.errors import REASON_TOO_FEW_TRACKS, SimilarityError, SimilarityInputError
from spark_jobs.similarity.neighbours import (
    LshParams,
    approx_neighbours,
    check_enough_tracks,
    exact_top_k,
    fit_lsh,
    neighbour_lists,
)
from spark_jobs.similarity.quality import genre_precision, random_neighbours, recall_at_k

K = 10


def test_exact_neighbours_of_a_hand_made_case():
    # Tracks 1..5 at 0, 10, 30, 90, 180 degrees: chord length 2 sin(angle / 2).
    radians = np.radians([0, 10, 30, 90, 180])
    vectors = np.stack([np.cos(radians), np.sin(radians)], axis=1).astype(np.float32)
    top = exact_top_k(vectors, np.arange(1, 6), k=2)
    got = {(r.track_id, r.rank): (r.neighbour_id, round(r.distance, 4)) for r in top.itertuples()}
    chord = lambda deg: round(2 * math.sin(math.radians(deg) / 2), 4)  # noqa: E731
    assert got[(1, 1)] == (2, chord(10)) and got[(1, 2)] == (3, chord(30))
    assert got[(3, 1)] == (2, chord(20)) and got[(3, 2)] == (1, chord(30))
    assert got[(5, 1)] == (4, chord(90)) and got[(5, 2)] == (3, chord(150))
    assert len(top) == 10  # 5 tracks x 2, nobody its own neighbour


def test_identical_tracks_are_each_others_nearest_and_ties_break_by_id():
    vectors = np.array([[1, 0], [1, 0], [0, 1], [-1, 0]], dtype=np.float32)
    top = exact_top_k(vectors, np.array([7, 3, 5, 9]), k=2)
    lists = neighbour_lists(top)
    assert lists[7] == [3, 5] and lists[3] == [7, 5]  # identical twin first, never itself
    assert lists[5] == [3, 7]  # 3 and 7 tie at sqrt(2): smaller id first
    assert top.loc[top.track_id == 7, "distance"].iloc[0] == pytest.approx(0.0)


def test_too_few_usable_tracks_raise_naming_what_was_left_out():
    rows = pd.DataFrame({"track_id": [1, 2, 3, 4], "embedding": [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], None]})
    embeddings = embeddings_from_frame(rows)
    with pytest.raises(SimilarityInputError) as too_few:
        check_enough_tracks(embeddings, K)
    assert isinstance(too_few.value, SimilarityError) and isinstance(too_few.value, ValueError)
    assert too_few.value.reason == REASON_TOO_FEW_TRACKS
    assert "2 usable" in str(too_few.value) and "k=10" in str(too_few.value)
    assert "'zero_vector': 1" in str(too_few.value) and "'missing_embedding': 1" in str(too_few.value)
    check_enough_tracks(embeddings, 1)  # 2 tracks are enough for one neighbour each


@pytest.mark.slow
def test_lsh_neighbours_of_every_track_match_exact_and_genres(clustered_df, clustered):
    embeddings, genres = clustered
    index = fit_lsh(clustered_df, LshParams(0.2, 16, 3), seed=5)
    approx = approx_neighbours(index, clustered_df, k=K).toPandas()
    exact = exact_top_k(embeddings.vectors, embeddings.ids, k=K)

    assert approx.groupby("track_id").size().eq(K).all() and approx.track_id.nunique() == embeddings.size
    assert (approx.track_id != approx.neighbour_id).all()
    assert recall_at_k(approx, exact, K) >= 0.95
    merged = approx.merge(exact, on=["track_id", "neighbour_id"], suffixes=("", "_exact"))
    assert np.allclose(merged.distance, merged.distance_exact, atol=1e-5)  # distances are exact, only candidates approximate
    lsh_precision = genre_precision(neighbour_lists(approx), genres, K)
    random_precision = genre_precision(random_neighbours(embeddings.ids, k=K, seed=1), genres, K)
    assert lsh_precision > 0.9 and random_precision < 0.15
