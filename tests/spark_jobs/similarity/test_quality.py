"""Recall against exact neighbours and the random baseline's genre precision."""

from __future__ import annotations

import numpy as np
import pytest

from spark_jobs.similarity.quality import genre_precision, random_neighbours, recall_at_k

K = 10


def test_recall_is_the_share_of_exact_neighbours_found():
    exact = {1: [2, 3, 4], 2: [1, 3, 6], 3: [1, 2, 4]}
    approx = {1: [2, 3, 9], 2: [5, 1, 7]}  # 3 was not answered at all: counts 0
    assert recall_at_k(approx, exact, 3) == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert recall_at_k(exact, exact, 3) == 1.0
    assert recall_at_k({1: [4, 3, 2]}, {1: [2, 3, 4]}, 3) == 1.0  # order inside the top k does not matter


def test_random_neighbours_are_distinct_others_with_chance_genre_precision():
    ids = np.arange(1, 4001)
    lists = random_neighbours(ids, k=K, seed=1)
    assert all(len(v) == K and len(set(v)) == K and t not in v for t, v in lists.items())
    genres = {int(t): int(t) % 16 for t in ids}
    assert genre_precision(lists, genres, K) == pytest.approx(1 / 16, abs=0.01)
    assert genre_precision(lists, {}, K) is None  # no genres: nothing measured, not zero
