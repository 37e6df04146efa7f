"""Choose the LSH configuration: score a grid by recall@k against exact kNN and take the cheapest that meets the target.

A seeded sample of query tracks (``sample_fraction``, at least ``MIN_QUERIES``) gets its
exact top k over the *full* catalogue (numpy on the driver: the honest brute-force
baseline; a Spark cross join of n^2 rows would be far slower and so flatter LSH). Every
configuration is scored by recall@k of its neighbours for those queries, the comparisons
it made (``candidate_pairs``, deterministic) and wall seconds (noisy on a shared
machine). The chosen configuration is the cheapest (fewest comparisons, then seconds)
whose recall meets the target; if none does, the one with the best recall, flagged
``target_met: False``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from fma_platform.embeddings import TRACK_ID, TrackEmbeddings
from spark_jobs.similarity.errors import REASON_BAD_ARGUMENT, REASON_BAD_GRID, SimilarityInputError
from spark_jobs.similarity.neighbours import (
    DEFAULT_K,
    DEFAULT_SEED,
    LshParams,
    approx_neighbours,
    candidate_pairs,
    check_enough_tracks,
    exact_top_k,
    fit_lsh,
    neighbour_lists,
    rows_of,
)
from spark_jobs.similarity.quality import genre_precision, recall_at_k

log = logging.getLogger(__name__)

DEFAULT_TARGET_RECALL = 0.95
DEFAULT_SAMPLE_FRACTION = 0.02
MIN_QUERIES = 200
# Bucket widths for unit vectors: a projection on a random unit vector has a standard
# deviation of about 1/sqrt(dim) (0.18 at 32 dims), so useful widths are below that. On
# clustered synthetic data (20k x 32) one hash per table needed more comparisons than
# brute force for recall 0.95; 3-4 hashes per table and 16-32 tables needed 4-9 %.
DEFAULT_GRID = "bucket_lengths=0.1,0.2;tables=8,16,32;hashes=3,4"


def parse_grid(text: str) -> list[LshParams]:
    """``"bucket_lengths=0.05,0.1;tables=4,8[;hashes=1,2]"`` -> every combination."""
    parts: dict[str, list[str]] = {}
    for item in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, values = item.partition("=")
        if not sep or not values.strip():
            raise SimilarityInputError(REASON_BAD_GRID, f"{item!r} is not name=v1,v2")
        parts[name.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    unknown = set(parts) - {"bucket_lengths", "tables", "hashes"}
    if unknown or not {"bucket_lengths", "tables"} <= set(parts):
        raise SimilarityInputError(
            REASON_BAD_GRID, f"need bucket_lengths= and tables= (optional hashes=), got {sorted(parts)}")
    try:
        return [
            LshParams(float(b), int(t), int(h))
            for b in parts["bucket_lengths"] for t in parts["tables"] for h in parts.get("hashes", ["1"])
        ]
    except SimilarityInputError:
        raise
    except ValueError as exc:
        raise SimilarityInputError(REASON_BAD_GRID, f"{text!r}: {exc}") from exc


def sample_queries(ids: np.ndarray, *, fraction: float, seed: int, minimum: int = MIN_QUERIES) -> np.ndarray:
    """A seeded sample of track ids (sorted): ``fraction`` of them, at least ``minimum``."""
    if not 0.0 < fraction <= 1.0:
        raise SimilarityInputError(REASON_BAD_ARGUMENT, f"sample fraction must be in (0, 1], got {fraction}")
    size = min(ids.size, max(minimum, round(ids.size * fraction)))
    return np.sort(np.random.default_rng(seed).choice(ids, size=size, replace=False))


@dataclass(frozen=True)
class Trial:
    """What one configuration achieved on the query sample."""

    params: LshParams
    recall: float
    seconds: float
    candidate_pairs: int
    work_fraction: float  # candidate_pairs / (queries x (catalogue - 1)): 1.0 = brute force
    genre_precision: float | None = None

    @property
    def cost(self) -> tuple[int, float]:
        return (self.candidate_pairs, self.seconds)


@dataclass(frozen=True)
class Tuning:
    """All trials, the chosen one, and whether it met the recall target."""

    trials: list[Trial]
    chosen: Trial
    target_recall: float
    target_met: bool
    exact: pd.DataFrame  # exact top k of the queries (ground truth)
    exact_seconds: float
    queries: np.ndarray

    @property
    def note(self) -> str:
        chosen = self.chosen
        if self.target_met:
            return (f"{chosen.params.label}: cheapest of {len(self.trials)} configuration(s) with recall "
                    f">= {self.target_recall} ({chosen.recall:.3f})")
        return (f"no configuration reached recall {self.target_recall}; {chosen.params.label} has the best "
                f"recall ({chosen.recall:.3f}): widen the grid (more tables, wider buckets)")


def choose_trial(trials: Sequence[Trial], *, target_recall: float) -> tuple[Trial, bool]:
    """The cheapest trial meeting ``target_recall``; else the best recall (and False)."""
    if not trials:
        raise SimilarityInputError(REASON_BAD_GRID, "the grid is empty")
    meeting = [t for t in trials if t.recall >= target_recall]
    if meeting:
        return min(meeting, key=lambda t: t.cost), True
    return max(trials, key=lambda t: (t.recall, -t.candidate_pairs, -t.seconds)), False


def tune_lsh(
    embeddings: TrackEmbeddings,
    df: DataFrame,
    *,
    grid: Sequence[LshParams] | str,
    k: int = DEFAULT_K,
    target_recall: float = DEFAULT_TARGET_RECALL,
    queries: Sequence[int] | None = None,
    sample_fraction: float = DEFAULT_SAMPLE_FRACTION,
    seed: int = DEFAULT_SEED,
    track_genres: Mapping[int, Hashable] | None = None,
) -> Tuning:
    """Score every configuration of ``grid`` by recall@k against exact kNN; pick the cheapest.

    ``df`` is ``embeddings`` as a Spark DataFrame (``neighbours.embeddings_frame``), cached
    by the caller: every trial reads it. ``queries`` default to a seeded
    ``sample_fraction`` of the catalogue; their exact top ``k`` is computed over all of it.
    """
    grid = parse_grid(grid) if isinstance(grid, str) else list(grid)
    check_enough_tracks(embeddings, k)
    queries = np.asarray(queries if queries is not None else
                         sample_queries(embeddings.ids, fraction=sample_fraction, seed=seed), dtype=np.int64)
    started = time.perf_counter()
    exact = exact_top_k(embeddings.vectors, embeddings.ids, k=k, query_rows=rows_of(embeddings.ids, queries))
    exact_seconds = time.perf_counter() - started
    exact_lists = neighbour_lists(exact)
    _warm_up_python_workers(df)
    trials = [_run_trial(df, params, k=k, seed=seed, queries=queries, exact_lists=exact_lists,
                         catalogue_size=embeddings.size, track_genres=track_genres) for params in grid]
    chosen, met = choose_trial(trials, target_recall=target_recall)
    return Tuning(trials, chosen, target_recall, met, exact, exact_seconds, queries)


def _warm_up_python_workers(df: DataFrame) -> None:
    """Start the Python workers once, so the first trial's seconds are not inflated by it."""
    df.select(TRACK_ID).repartition(2).mapInPandas(lambda batches: batches, schema=f"{TRACK_ID} long").count()


def _run_trial(df, params: LshParams, *, k, seed, queries, exact_lists, catalogue_size, track_genres) -> Trial:
    started = time.perf_counter()
    index = fit_lsh(df, params, seed=seed)
    lists = neighbour_lists(approx_neighbours(index, df, k=k, queries=queries.tolist()))
    seconds = time.perf_counter() - started
    pairs = candidate_pairs(index, df, queries=queries.tolist())
    trial = Trial(
        params=params, recall=recall_at_k(lists, exact_lists, k), seconds=seconds, candidate_pairs=pairs,
        work_fraction=pairs / (len(queries) * (catalogue_size - 1)),
        genre_precision=genre_precision(lists, track_genres, k),
    )
    log.info("trial %s: recall %.3f, %.1f s, work %.3f", params.label, trial.recall, seconds, trial.work_fraction)
    return trial
