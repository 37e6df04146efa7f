"""Measure neighbour lists: recall against exact kNN, genre precision, and the random-neighbours baseline.

The measures themselves are :mod:`spark_jobs.metrics` (shared with the recommenders);
this module adapts neighbour DataFrames to them and holds what a similarity run measured.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from spark_jobs import metrics
from spark_jobs.similarity.neighbours import DEFAULT_K, neighbour_lists

NeighbourLists = Mapping[Hashable, Sequence[Hashable]]


def recall_at_k(approx: DataFrame | pd.DataFrame | NeighbourLists, exact: DataFrame | pd.DataFrame | NeighbourLists,
                k: int = DEFAULT_K) -> float:
    """Mean share of each query's exact top ``k`` found in its approximate top ``k``.

    Averages over the tracks of ``exact`` (a query the approximation missed scores 0).
    """
    approx_lists = approx if isinstance(approx, Mapping) else neighbour_lists(approx)
    exact_lists = exact if isinstance(exact, Mapping) else neighbour_lists(exact)
    relevant = {seed: set(list(items)[:k]) for seed, items in exact_lists.items()}
    return metrics.recall_at_k(approx_lists, relevant, k=k)


def random_neighbours(ids: np.ndarray, *, k: int, seed: int, queries: Iterable[int] | None = None) -> dict[int, list[int]]:
    """The baseline: ``k`` distinct random other tracks per query (seeded)."""
    rng = np.random.default_rng(seed)
    picks = {}
    for query in (ids if queries is None else queries):
        chosen = rng.choice(ids, size=min(k + 1, ids.size), replace=False)
        picks[int(query)] = [int(t) for t in chosen if t != query][:k]
    return picks


def genre_precision(lists: NeighbourLists, track_genres: Mapping[int, Hashable] | None, k: int) -> float | None:
    """Genre precision@k of ``lists``; None without genres (nothing to measure against)."""
    if not track_genres:
        return None
    return metrics.genre_precision_at_k(lists, track_genres=track_genres, k=k)


@dataclass(frozen=True)
class RunEvaluation:
    """What a similarity run measured at ``k``: the chosen LSH against exact kNN and random neighbours.

    ``lsh_recall`` is over the tuning's query sample (exact top k over the whole
    catalogue). Genre precisions are over every track, except ``exact_genre_precision``
    when exact kNN was only computed for the sample (``exact_seconds_measured`` False:
    ``exact_seconds`` is then extrapolated from the sample).
    """

    k: int
    lsh_recall: float
    recall_queries: int
    lsh_seconds: float
    lsh_genre_precision: float | None
    tracks_with_fewer_than_k: int
    exact_seconds: float
    exact_seconds_measured: bool
    exact_sample_seconds: float
    exact_genre_precision: float | None
    random_genre_precision: float | None
    tracks_with_genre: int
