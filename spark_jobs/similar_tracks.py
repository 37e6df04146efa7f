"""spark-submit entrypoint: the k most similar tracks of every track, by LSH, measured honestly.

``spark-submit spark_jobs/similar_tracks.py --k 10 --run-id R [--grid "bucket_lengths=...;tables=..."]``

Input: unit-length track embeddings (``track_features.embedding`` in MongoDB, or a
Parquet file with ``track_id, embedding`` via ``--embeddings``) and top-level genres
(``tracks.top_genre_id``) for genre precision. For unit vectors ``||a-b||^2 = 2 - 2 cos``,
so Euclidean distance ranks like cosine and ``score = 1 - distance^2 / 2`` is the cosine.

How neighbours are found (``approx_neighbours``)
  Spark ML's ``BucketedRandomProjectionLSH`` gives every track ``num_hash_tables x
  hashes_per_table`` hashes ``floor(x . v / bucket_length)`` over random unit vectors
  ``v``. A *table* is ``hashes_per_table`` consecutive hashes (AND: two tracks share the
  table's bucket only if all of them agree); two tracks are candidates when they share a
  bucket in any table (OR). ``hashes_per_table=1`` is exactly the candidate set of
  ``approxSimilarityJoin``. Spark's own join materialises every candidate pair as a row
  and needs a distance threshold (a track whose k-th neighbour lies beyond it gets fewer
  than k); here the rows of each bucket are brought together (sorted within partitions,
  ``mapInPandas``), distances within a bucket are one BLAS matrix product, and only each
  track's k best per bucket leave it. No threshold: every track with at least k
  candidates gets k neighbours. A single projection per table separates unit vectors
  poorly (in 32 dimensions a projection spreads the catalogue over only a few bucket
  widths), which is why ``hashes_per_table`` exists: with 3-4 hashes per table a bucket
  holds a few percent of the catalogue, not a third.

How it is measured (``tune_lsh``)
  A seeded sample of query tracks (``--sample-fraction``) gets its exact top k over the
  *full* catalogue (numpy on the driver, ``exact_top_k``: the honest brute-force baseline,
  a Spark cross join of n^2 rows would be far slower and so flatter LSH). Every grid
  configuration is scored by recall@k of its neighbours for those queries, the comparisons it made
  (``candidate_pairs``, deterministic) and wall seconds (noisy on a shared machine). The
  chosen configuration is the cheapest (fewest comparisons, then seconds) whose recall
  meets the target; if none does, the one with the best recall, flagged
  ``target_met: false``. Genre precision@k of the final neighbours is reported beside a
  random-neighbours baseline.

Scale
  Brute force costs n^2 x dim multiply-adds: for a small catalogue (FMA small, 8k) it
  takes about a second on the driver and is exact, while LSH only pays off at a scale
  where a bucket holds a small share of the catalogue. ``--method auto`` writes exact
  neighbours up to ``--exact-max-tracks`` and LSH above; the default ``lsh`` follows the
  ``similar_tracks`` contract (method "lsh"). Both are always timed and reported (exact
  time measured up to ``--exact-max-tracks``, extrapolated from the sample above it).

Writes: ``similar_tracks`` (upsert by track_id), ``model_runs`` (one "trial" per
configuration, one "final", baselines "random_neighbours" and "exact_knn", upsert by
run_id), the chosen model under ``models_dir/lsh/<version>/{model,metadata.json}`` with a
``CURRENT`` pointer. Prints one JSON summary line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import sys
import time
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml.feature import BucketedRandomProjectionLSH, BucketedRandomProjectionLSHModel
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StructField, StructType

from fma_platform.contracts import SIMILARITY_MODELS, Collection
from fma_platform.errors import ReasonedError
from fma_platform.files import write_text_atomic
from fma_platform.settings import Settings, get_settings
from spark_jobs import metrics
from spark_jobs.session import spark_session
from spark_jobs.transform_features import safe_version

log = logging.getLogger(__name__)

APP_NAME = "similar-tracks"
METHOD_LSH = "lsh"
METHOD_EXACT = "exact"
METHOD_AUTO = "auto"
TRACK_ID = "track_id"
NEIGHBOUR_ID = "neighbour_id"
DISTANCE = "distance"
RANK = "rank"
EMBEDDING = "embedding"
TOP_GENRE_ID = "top_genre_id"
MODEL_SUBDIR = "model"
METADATA_FILE = "metadata.json"
CURRENT_FILE = "CURRENT"

DEFAULT_K = 10
DEFAULT_TARGET_RECALL = 0.95
DEFAULT_SEED = 42
DEFAULT_SAMPLE_FRACTION = 0.02
MIN_QUERIES = 200
DEFAULT_EXACT_MAX_TRACKS = 20_000
# Bucket widths for unit vectors: a projection on a random unit vector has a standard
# deviation of about 1/sqrt(dim) (0.18 at 32 dims), so useful widths are below that. On
# clustered synthetic data (20k x 32) one hash per table needed more comparisons than
# brute force for recall 0.95; 3-4 hashes per table and 16-32 tables needed 4-9 %.
DEFAULT_GRID = "bucket_lengths=0.1,0.2;tables=8,16,32;hashes=3,4"
UNIT_NORM_TOLERANCE = 1e-3
_QUERY_BLOCK_ROWS = 256  # rows of the distance matrix computed at once (memory ~ rows x catalogue)

# Hidden column names.
_FEATURES, _HASHES, _TABLE, _BUCKET, _IS_QUERY = "features_vector", "hashes", "lsh_table", "lsh_bucket", "is_query"

NEIGHBOUR_SCHEMA = StructType([
    StructField(TRACK_ID, LongType(), False),
    StructField(NEIGHBOUR_ID, LongType(), False),
    StructField(DISTANCE, DoubleType(), False),
])

REASON_NO_EMBEDDINGS = "no_embeddings"
REASON_MISSING_COLUMNS = "missing_columns"
REASON_MIXED_DIMENSIONS = "mixed_dimensions"
REASON_DUPLICATE_TRACK_IDS = "duplicate_track_ids"
REASON_TOO_FEW_TRACKS = "too_few_tracks"
REASON_BAD_GRID = "bad_grid"
REASON_BAD_ARGUMENT = "bad_argument"
REASON_NO_CURRENT_MODEL = "no_current_model"
# Per-track reasons: such tracks are left out of the catalogue and counted in the run.
REASON_MISSING_EMBEDDING = "missing_embedding"
REASON_NON_FINITE = "non_finite_values"
REASON_ZERO_VECTOR = "zero_vector"
REASON_NOT_UNIT_LENGTH = "not_unit_length"


class SimilarTracksInputError(ReasonedError):
    """Input the similarity job cannot use; ``reason`` is one of the ``REASON_*`` codes."""


# -- the catalogue ---------------------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    """The usable embeddings, as numpy arrays, and what was left out and why.

    ``skipped`` maps a per-track reason to up to 10 example track ids and a count.
    ``fingerprint``: hash of ids and vectors, so a version can follow the data.
    """

    ids: np.ndarray  # int64, sorted
    vectors: np.ndarray  # float32, one unit-length row per id
    skipped: dict[str, dict[str, Any]] = field(default_factory=dict)
    fingerprint: str = ""

    @property
    def size(self) -> int:
        return int(self.ids.size)

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])


def build_catalogue(embeddings: pd.DataFrame) -> Catalogue:
    """Validate ``track_id, embedding`` rows into a :class:`Catalogue`.

    Raises :class:`SimilarTracksInputError` for a problem of the whole input (missing
    columns, duplicated ids, vectors of different lengths, nothing usable). Single bad
    tracks (no embedding, NaN, zero or non-unit vector) are left out and reported in
    ``skipped``, so one broken track does not stop the run.
    """
    missing = [c for c in (TRACK_ID, EMBEDDING) if c not in embeddings.columns]
    if missing:
        raise SimilarTracksInputError(REASON_MISSING_COLUMNS, f"embeddings lack {missing}")
    if embeddings.empty:
        raise SimilarTracksInputError(REASON_NO_EMBEDDINGS, "no track has an embedding")
    ids = embeddings[TRACK_ID].astype("int64").to_numpy()
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise SimilarTracksInputError(
            REASON_DUPLICATE_TRACK_IDS, f"e.g. {unique[counts > 1][:5].tolist()} appear more than once"
        )
    present = embeddings[EMBEDDING].map(lambda v: v is not None and len(v) > 0).to_numpy(dtype=bool)
    lengths = {len(v) for v in embeddings[EMBEDDING][present]}
    if len(lengths) > 1:
        raise SimilarTracksInputError(REASON_MIXED_DIMENSIONS, f"embedding lengths {sorted(lengths)}")
    skipped: dict[str, list[int]] = {REASON_MISSING_EMBEDDING: ids[~present].tolist()}
    ids = ids[present]
    if ids.size == 0:
        raise SimilarTracksInputError(REASON_NO_EMBEDDINGS, "every embedding is empty or missing")
    vectors = np.stack([np.asarray(v, dtype=np.float64) for v in embeddings[EMBEDDING][present]])
    finite = np.isfinite(vectors).all(axis=1)
    norms = np.linalg.norm(np.where(finite[:, None], vectors, 0.0), axis=1)
    zero = finite & (norms == 0.0)
    not_unit = finite & ~zero & (np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE)
    skipped[REASON_NON_FINITE] = ids[~finite].tolist()
    skipped[REASON_ZERO_VECTOR] = ids[zero].tolist()
    skipped[REASON_NOT_UNIT_LENGTH] = ids[not_unit].tolist()
    keep = finite & ~zero & ~not_unit
    order = np.argsort(ids[keep], kind="stable")
    kept_ids, kept_vectors = ids[keep][order], vectors[keep][order].astype(np.float32)
    report = {reason: {"count": len(bad), "examples": sorted(bad)[:10]} for reason, bad in skipped.items() if bad}
    for reason, info in report.items():
        log.warning("left out %d track(s): %s, e.g. %s", info["count"], reason, info["examples"])
    digest = hashlib.sha256(kept_ids.tobytes() + kept_vectors.tobytes()).hexdigest()[:16]
    return Catalogue(ids=kept_ids, vectors=kept_vectors, skipped=report, fingerprint=digest)


def check_catalogue_size(catalogue: Catalogue, k: int) -> None:
    """Raise unless every track can have ``k`` neighbours (``k + 1`` tracks at least)."""
    if k < 1:
        raise SimilarTracksInputError(REASON_BAD_ARGUMENT, f"k must be >= 1, got {k}")
    if catalogue.size < k + 1:
        raise SimilarTracksInputError(
            REASON_TOO_FEW_TRACKS, f"{catalogue.size} usable track(s); k={k} needs at least {k + 1}"
        )


def catalogue_frame(spark: SparkSession, catalogue: Catalogue) -> DataFrame:
    """``track_id`` (long), ``embedding`` (array<float>) as a Spark DataFrame."""
    pdf = pd.DataFrame({TRACK_ID: catalogue.ids, EMBEDDING: list(catalogue.vectors)})
    return spark.createDataFrame(pdf, schema=f"{TRACK_ID} long, {EMBEDDING} array<float>")


def collect_catalogue(embeddings_df: DataFrame) -> Catalogue:
    """The rows of a Spark ``track_id, embedding`` DataFrame as a validated catalogue."""
    return build_catalogue(embeddings_df.select(TRACK_ID, EMBEDDING).toPandas())


def sample_queries(ids: np.ndarray, *, fraction: float, seed: int, minimum: int = MIN_QUERIES) -> np.ndarray:
    """A seeded sample of track ids (sorted): ``fraction`` of them, at least ``minimum``."""
    if not 0.0 < fraction <= 1.0:
        raise SimilarTracksInputError(REASON_BAD_ARGUMENT, f"sample fraction must be in (0, 1], got {fraction}")
    size = min(ids.size, max(minimum, round(ids.size * fraction)))
    return np.sort(np.random.default_rng(seed).choice(ids, size=size, replace=False))


# -- exact neighbours: the ground truth ----------------------------------------------------


def exact_top_k(
    vectors: np.ndarray, ids: np.ndarray, *, k: int, query_rows: np.ndarray | None = None,
    block_rows: int = _QUERY_BLOCK_ROWS,
) -> pd.DataFrame:
    """Brute-force top ``k`` by Euclidean distance of each query row among all rows.

    A track is never its own neighbour (by row, so identical vectors of two tracks are
    still neighbours). Ties are broken by the smaller neighbour id. Fewer than ``k`` rows
    besides the query give all of them. Columns: track_id, neighbour_id, distance, rank.
    """
    query_rows = np.arange(ids.size) if query_rows is None else np.asarray(query_rows, dtype=np.int64)
    return _neighbour_frame(*_nearest(vectors, ids, query_rows, k=k, block_rows=block_rows))


def _nearest(vectors: np.ndarray, ids: np.ndarray, query_rows: np.ndarray, *, k: int,
             block_rows: int = _QUERY_BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(seed ids, neighbour ids, distances)``, k per query row, best first.

    Candidates are ranked on float32 squared distances from one matrix product per
    block of queries; the k kept get their distance recomputed in float64 from the
    difference vectors, so a pair has the same distance in whatever block it was found
    (LSH buckets, the exact baseline) and near-duplicates do not lose precision.
    """
    k_eff = min(k, ids.size - 1)
    if k_eff < 1 or query_rows.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    vectors32 = np.ascontiguousarray(vectors, dtype=np.float32)
    squared_norms = np.einsum("ij,ij->i", vectors32, vectors32)
    seeds, neighbours, distances = [], [], []
    for start in range(0, query_rows.size, block_rows):
        rows = query_rows[start:start + block_rows]
        squared = vectors32[rows] @ vectors32.T
        squared *= -2.0
        squared += squared_norms[None, :]
        squared += squared_norms[rows, None]
        squared[np.arange(rows.size), rows] = np.inf
        nearest = np.argpartition(squared, k_eff - 1, axis=1)[:, :k_eff]
        difference = vectors[nearest].astype(np.float64) - vectors[rows, None, :].astype(np.float64)
        exact = np.sqrt(np.einsum("qkd,qkd->qk", difference, difference))
        order = np.lexsort((ids[nearest], exact), axis=1)
        seeds.append(np.repeat(ids[rows], k_eff))
        neighbours.append(ids[np.take_along_axis(nearest, order, axis=1)].ravel())
        distances.append(np.take_along_axis(exact, order, axis=1).ravel())
    return np.concatenate(seeds), np.concatenate(neighbours), np.concatenate(distances)


def _neighbour_frame(seeds: np.ndarray, neighbours: np.ndarray, distances: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({TRACK_ID: seeds, NEIGHBOUR_ID: neighbours, DISTANCE: distances.astype(np.float64)})
    frame[RANK] = frame.groupby(TRACK_ID, sort=False).cumcount() + 1 if len(frame) else pd.Series(dtype="int64")
    return frame


def exact_neighbours(df: DataFrame, *, k: int, queries: Sequence[int] | None = None) -> DataFrame:
    """Exact top ``k`` (track_id, neighbour_id, distance, rank) of ``queries`` (default: all).

    Collects ``df`` (track_id, embedding) to the driver and runs :func:`exact_top_k`: for a
    catalogue of FMA's size (<= 106,574 x 32 floats, 14 MB) a numpy matrix product is the
    fastest honest baseline; a Spark cross join would move n^2 rows.
    """
    catalogue = collect_catalogue(df)
    query_rows = None if queries is None else _rows_of(catalogue.ids, queries)
    pdf = exact_top_k(catalogue.vectors, catalogue.ids, k=k, query_rows=query_rows)
    return df.sparkSession.createDataFrame(
        pdf, schema=f"{TRACK_ID} long, {NEIGHBOUR_ID} long, {DISTANCE} double, {RANK} int"
    )


def _rows_of(ids: np.ndarray, wanted: Iterable[int]) -> np.ndarray:
    wanted = np.asarray(sorted(set(int(w) for w in wanted)), dtype=np.int64)
    rows = np.searchsorted(ids, wanted)
    unknown = wanted[(rows >= ids.size) | (ids[np.minimum(rows, ids.size - 1)] != wanted)]
    if unknown.size:
        raise SimilarTracksInputError(REASON_BAD_ARGUMENT, f"query track ids not in the catalogue: {unknown[:5].tolist()}")
    return rows


# -- LSH ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LshParams:
    """One configuration: bucket width, OR-tables, AND-hashes per table."""

    bucket_length: float
    num_hash_tables: int
    hashes_per_table: int = 1

    def __post_init__(self) -> None:
        if not (self.bucket_length > 0 and math.isfinite(self.bucket_length)):
            raise SimilarTracksInputError(REASON_BAD_GRID, f"bucket_length must be > 0, got {self.bucket_length}")
        if self.num_hash_tables < 1 or self.hashes_per_table < 1:
            raise SimilarTracksInputError(
                REASON_BAD_GRID, f"tables and hashes must be >= 1, got {self.num_hash_tables}, {self.hashes_per_table}"
            )

    @property
    def label(self) -> str:
        """``b0.1:t8`` (``:h2`` appended when tables AND several hashes)."""
        text = f"b{self.bucket_length:g}:t{self.num_hash_tables}"
        return text if self.hashes_per_table == 1 else f"{text}:h{self.hashes_per_table}"


@dataclass(frozen=True)
class LshIndex:
    """A fitted Spark LSH model and how its hashes group into tables."""

    model: BucketedRandomProjectionLSHModel
    params: LshParams
    seed: int


def with_feature_vector(embeddings_df: DataFrame) -> DataFrame:
    """``embeddings_df`` plus the ``Vectors.dense`` column Spark ML's LSH reads."""
    return embeddings_df.withColumn(_FEATURES, array_to_vector(F.col(EMBEDDING)))


def fit_lsh(
    embeddings_df: DataFrame, *, bucket_length: float, num_hash_tables: int, seed: int = DEFAULT_SEED,
    hashes_per_table: int = 1,
) -> LshIndex:
    """Fit ``BucketedRandomProjectionLSH`` with ``num_hash_tables x hashes_per_table`` hashes.

    Fitting only draws the random unit vectors (it reads the dimension from the data).
    """
    params = LshParams(float(bucket_length), int(num_hash_tables), int(hashes_per_table))
    lsh = BucketedRandomProjectionLSH(
        inputCol=_FEATURES, outputCol=_HASHES, bucketLength=params.bucket_length,
        numHashTables=params.num_hash_tables * params.hashes_per_table, seed=seed,
    )
    return LshIndex(lsh.fit(with_feature_vector(embeddings_df).select(_FEATURES)), params, seed)


def hash_buckets(index: LshIndex, df: DataFrame) -> DataFrame:
    """``df``'s columns plus ``lsh_table, lsh_bucket``: one row per (track, table), no shuffle.

    A table's bucket is its ``hashes_per_table`` hash values joined by commas.
    """
    tables, per_table = index.params.num_hash_tables, index.params.hashes_per_table
    hashed = index.model.transform(with_feature_vector(df)).select(
        *df.columns,
        F.transform(_HASHES, lambda h: vector_to_array(h)[0].cast("long").cast("string")).alias("hash_values"),
    )
    keys = F.transform(
        F.sequence(F.lit(0), F.lit(tables - 1)),
        lambda t: F.concat_ws(",", F.slice(F.col("hash_values"), t * per_table + 1, F.lit(per_table))),
    )
    return hashed.select(*df.columns, F.posexplode(keys).alias(_TABLE, _BUCKET))


def _with_query_flag(df: DataFrame, queries: Sequence[int] | None) -> DataFrame:
    """``track_id, embedding, is_query``: a broadcast join with the query ids (or all True)."""
    base = df.select(TRACK_ID, EMBEDDING)
    if queries is None:
        return base.withColumn(_IS_QUERY, F.lit(True))
    wanted = df.sparkSession.createDataFrame([(int(q),) for q in queries], f"{TRACK_ID} long")
    flagged = base.join(F.broadcast(wanted.withColumn(_IS_QUERY, F.lit(True))), TRACK_ID, "left")
    return flagged.select(TRACK_ID, EMBEDDING, F.coalesce(F.col(_IS_QUERY), F.lit(False)).alias(_IS_QUERY))


def approx_neighbours(
    index: LshIndex, df: DataFrame, *, k: int = DEFAULT_K, queries: Sequence[int] | None = None
) -> DataFrame:
    """Top ``k`` (track_id, neighbour_id, distance, rank) among each track's LSH candidates.

    ``queries``: only these tracks get neighbours (any catalogue track can be one); default
    all. Distances are exact; only the candidate set is approximate. A track with fewer
    than ``k`` candidates gets fewer neighbours. Two shuffles: rows to their bucket (each
    bucket sorted into one stream of Arrow batches, numpy per bucket), then each track's
    per-table best to the track (duplicates across tables dropped, best ``k`` kept).
    """
    if k < 1:
        raise SimilarTracksInputError(REASON_BAD_ARGUMENT, f"k must be >= 1, got {k}")
    buckets = hash_buckets(index, _with_query_flag(df, queries))
    per_bucket = (
        buckets.repartition(_TABLE, _BUCKET).sortWithinPartitions(_TABLE, _BUCKET)
        .mapInPandas(_bucket_top_k(k), schema=NEIGHBOUR_SCHEMA)
    )
    candidates = F.array_distinct(F.collect_list(F.struct(DISTANCE, NEIGHBOUR_ID)))
    best = per_bucket.groupBy(TRACK_ID).agg(F.slice(F.array_sort(candidates), 1, k).alias("best"))
    return best.select(TRACK_ID, F.posexplode("best").alias("position", "neighbour")).select(
        TRACK_ID, F.col("neighbour")[NEIGHBOUR_ID].alias(NEIGHBOUR_ID), F.col("neighbour")[DISTANCE].alias(DISTANCE),
        (F.col("position") + 1).alias(RANK),
    )


def _bucket_top_k(k: int):
    """mapInPandas function: rows sorted by bucket in, each query's k best per bucket out.

    A bucket can straddle two Arrow batches: the last bucket of a batch waits for the next.
    """
    def top_k(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        pending = None
        for batch in batches:
            if pending is not None:
                batch = pd.concat([pending, batch], ignore_index=True)
            if batch.empty:
                continue
            last = (batch[_TABLE].to_numpy() == batch[_TABLE].iat[-1]) & (batch[_BUCKET].to_numpy() == batch[_BUCKET].iat[-1])
            pending = batch[last]
            if not last.all():
                yield _top_k_per_bucket(batch[~last].reset_index(drop=True), k)
        if pending is not None and not pending.empty:
            yield _top_k_per_bucket(pending.reset_index(drop=True), k)
    return top_k


def _top_k_per_bucket(rows: pd.DataFrame, k: int) -> pd.DataFrame:
    ids = rows[TRACK_ID].to_numpy(dtype=np.int64)
    is_query = rows[_IS_QUERY].to_numpy(dtype=bool)
    vectors = np.stack(rows[EMBEDDING].to_numpy()).astype(np.float32)
    seeds, neighbours, distances = [], [], []
    for members in rows.groupby([_TABLE, _BUCKET], sort=False).indices.values():
        query_rows = np.flatnonzero(is_query[members])
        if members.size < 2 or query_rows.size == 0:
            continue
        found = _nearest(vectors[members], ids[members], query_rows, k=k)
        seeds.append(found[0]), neighbours.append(found[1]), distances.append(found[2])
    if not seeds:
        return pd.DataFrame({TRACK_ID: np.empty(0, np.int64), NEIGHBOUR_ID: np.empty(0, np.int64),
                             DISTANCE: np.empty(0)})
    return pd.DataFrame({TRACK_ID: np.concatenate(seeds), NEIGHBOUR_ID: np.concatenate(neighbours),
                         DISTANCE: np.concatenate(distances)})


def candidate_pairs(index: LshIndex, df: DataFrame, *, queries: Sequence[int] | None = None) -> int:
    """Distances computed by :func:`approx_neighbours`: sum over buckets of queries x (size - 1).

    The deterministic cost of a configuration (wall time on a shared machine is noisy).
    """
    sizes = hash_buckets(index, _with_query_flag(df, queries)).groupBy(_TABLE, _BUCKET).agg(
        F.count("*").alias("size"), F.sum(F.col(_IS_QUERY).cast("long")).alias("queries"))
    total = sizes.agg(F.sum(F.col("queries") * (F.col("size") - 1))).first()[0]
    return int(total or 0)


# -- metrics -----------------------------------------------------------------------------


NeighbourLists = Mapping[Hashable, Sequence[Hashable]]


def neighbour_lists(neighbours: DataFrame | pd.DataFrame) -> dict[int, list[int]]:
    """``{track_id: [neighbour_id, ...]}`` best first, from a neighbours DataFrame."""
    pdf = neighbours if isinstance(neighbours, pd.DataFrame) else neighbours.select(TRACK_ID, NEIGHBOUR_ID, RANK).toPandas()
    pdf = pdf.sort_values([TRACK_ID, RANK])
    return {int(t): [int(n) for n in group] for t, group in pdf.groupby(TRACK_ID, sort=False)[NEIGHBOUR_ID]}


def recall_at_k(approx: DataFrame | pd.DataFrame | NeighbourLists, exact: DataFrame | pd.DataFrame | NeighbourLists,
                k: int = DEFAULT_K) -> float:
    """Mean share of each query's exact top ``k`` found in its approximate top ``k``.

    Averages over the tracks of ``exact`` (a query the approximation missed scores 0);
    delegates to :func:`spark_jobs.metrics.recall_at_k`.
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
    """Genre precision@k of ``lists`` (None without genres), via :mod:`spark_jobs.metrics`."""
    if not track_genres:
        return None
    return metrics.genre_precision_at_k(lists, track_genres=track_genres, k=k)


# -- tuning ------------------------------------------------------------------------------


def parse_grid(text: str) -> list[LshParams]:
    """``"bucket_lengths=0.05,0.1;tables=4,8[;hashes=1,2]"`` -> every combination."""
    parts: dict[str, list[str]] = {}
    for item in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, values = item.partition("=")
        if not sep or not values.strip():
            raise SimilarTracksInputError(REASON_BAD_GRID, f"{item!r} is not name=v1,v2")
        parts[name.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    unknown = set(parts) - {"bucket_lengths", "tables", "hashes"}
    if unknown or not {"bucket_lengths", "tables"} <= set(parts):
        raise SimilarTracksInputError(
            REASON_BAD_GRID, f"need bucket_lengths= and tables= (optional hashes=), got {sorted(parts)}")
    try:
        return [
            LshParams(float(b), int(t), int(h))
            for b in parts["bucket_lengths"] for t in parts["tables"] for h in parts.get("hashes", ["1"])
        ]
    except ValueError as exc:
        if isinstance(exc, SimilarTracksInputError):
            raise
        raise SimilarTracksInputError(REASON_BAD_GRID, f"{text!r}: {exc}") from exc


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
        raise SimilarTracksInputError(REASON_BAD_GRID, "the grid is empty")
    meeting = [t for t in trials if t.recall >= target_recall]
    if meeting:
        return min(meeting, key=lambda t: t.cost), True
    return max(trials, key=lambda t: (t.recall, -t.candidate_pairs, -t.seconds)), False


def tune_lsh(
    df: DataFrame,
    *,
    grid: Sequence[LshParams] | str,
    k: int = DEFAULT_K,
    target_recall: float = DEFAULT_TARGET_RECALL,
    queries: Sequence[int] | None = None,
    sample_fraction: float = DEFAULT_SAMPLE_FRACTION,
    seed: int = DEFAULT_SEED,
    track_genres: Mapping[int, Hashable] | None = None,
    catalogue: Catalogue | None = None,
) -> Tuning:
    """Score every configuration of ``grid`` by recall@k against exact kNN; pick the cheapest.

    ``queries`` default to a seeded ``sample_fraction`` of the catalogue; their exact top
    ``k`` is computed over the whole catalogue. ``catalogue``: ``df`` already collected
    (saves a pass). ``df`` should be cached by the caller: every trial reads it.
    """
    grid = parse_grid(grid) if isinstance(grid, str) else list(grid)
    catalogue = catalogue or collect_catalogue(df)
    check_catalogue_size(catalogue, k)
    queries = np.asarray(queries if queries is not None else
                         sample_queries(catalogue.ids, fraction=sample_fraction, seed=seed), dtype=np.int64)
    started = time.perf_counter()
    exact = exact_top_k(catalogue.vectors, catalogue.ids, k=k, query_rows=_rows_of(catalogue.ids, queries))
    exact_seconds = time.perf_counter() - started
    exact_lists = neighbour_lists(exact)
    _warm_up_python_workers(df)
    trials = [_run_trial(df, params, k=k, seed=seed, queries=queries, exact_lists=exact_lists,
                         catalogue_size=catalogue.size, track_genres=track_genres) for params in grid]
    chosen, met = choose_trial(trials, target_recall=target_recall)
    return Tuning(trials, chosen, target_recall, met, exact, exact_seconds, queries)


def _warm_up_python_workers(df: DataFrame) -> None:
    """Start the Python workers once, so the first trial's seconds are not inflated by it."""
    df.select(TRACK_ID).repartition(2).mapInPandas(lambda batches: batches, schema=f"{TRACK_ID} long").count()


def _run_trial(df, params: LshParams, *, k, seed, queries, exact_lists, catalogue_size, track_genres) -> Trial:
    started = time.perf_counter()
    index = fit_lsh(df, bucket_length=params.bucket_length, num_hash_tables=params.num_hash_tables,
                    seed=seed, hashes_per_table=params.hashes_per_table)
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


# -- reading -----------------------------------------------------------------------------


def read_embeddings_from_mongo(db) -> pd.DataFrame:
    """``track_id, embedding, model_version`` of every ``track_features`` document."""
    cursor = db[Collection.TRACK_FEATURES].find({}, {"_id": 0, TRACK_ID: 1, EMBEDDING: 1, "model_version": 1})
    return pd.DataFrame(list(cursor), columns=[TRACK_ID, EMBEDDING, "model_version"])


def read_embeddings_parquet(spark: SparkSession, path: str) -> pd.DataFrame:
    """``track_id, embedding`` from the Parquet written by ``transform_features``."""
    raw = spark.read.parquet(path)
    missing = [c for c in (TRACK_ID, EMBEDDING) if c not in raw.columns]
    if missing:
        raise SimilarTracksInputError(REASON_MISSING_COLUMNS, f"{path} lacks {missing}")
    columns = [TRACK_ID, EMBEDDING] + (["model_version"] if "model_version" in raw.columns else [])
    return raw.select(*columns).toPandas()


def read_track_genres(db) -> dict[int, int]:
    """``{track_id: top_genre_id}`` of the tracks that have a top-level genre."""
    cursor = db[Collection.TRACKS].find({TOP_GENRE_ID: {"$ne": None}}, {"_id": 0, TRACK_ID: 1, TOP_GENRE_ID: 1})
    return {int(doc[TRACK_ID]): int(doc[TOP_GENRE_ID]) for doc in cursor if TOP_GENRE_ID in doc}


# -- documents ---------------------------------------------------------------------------


def similar_track_documents(
    neighbours: pd.DataFrame, *, k: int, model_version: str, method: str, computed_at: datetime
) -> Iterator[dict]:
    """One ``similar_tracks`` document per track, neighbours best first, score = cosine."""
    ordered = neighbours.sort_values([TRACK_ID, RANK])
    for track_id, group in ordered.groupby(TRACK_ID, sort=True):
        yield {
            TRACK_ID: int(track_id),
            "neighbours": [
                {TRACK_ID: int(n), DISTANCE: float(d), "score": float(1.0 - d * d / 2.0)}
                for n, d in zip(group[NEIGHBOUR_ID], group[DISTANCE])
            ],
            "k": k,
            "model_version": model_version,
            "method": method,
            "computed_at": computed_at,
        }


def model_run_document(run_id: str, *, model: str, kind: str, params: dict, metrics_: dict, data_snapshot: dict,
                       model_version: str, created_at: datetime, champion: bool = False,
                       promotion: dict | None = None) -> dict:
    """A ``model_runs`` document in the contract's shape."""
    return {
        "run_id": run_id, "model": model, "kind": kind, "params": params, "metrics": metrics_,
        "data_snapshot": data_snapshot, "model_version": model_version, "champion": champion,
        "promotion": promotion or {"promoted": False, "reason": f"{kind} run"}, "created_at": created_at,
    }


def trial_run_id(run_id: str, params: LshParams) -> str:
    return f"{run_id}:lsh:{params.label}"


def _params_doc(params: LshParams, *, k: int, seed: int) -> dict:
    return {**asdict(params), "k": k, "seed": seed}


# -- the model on disk -------------------------------------------------------------------


def default_model_dir(settings: Settings) -> Path:
    """``settings.models_dir / "lsh"``."""
    return settings.models_dir / SIMILARITY_MODELS


def save_lsh_model(index: LshIndex, metadata: dict[str, Any], model_dir: str | Path) -> Path:
    """Write ``model_dir/<version>/{model,metadata.json}``, then point ``CURRENT`` at it (atomically)."""
    target = Path(model_dir) / safe_version(metadata["version"])
    target.mkdir(parents=True, exist_ok=True)
    index.model.write().overwrite().save(str(target / MODEL_SUBDIR))
    write_text_atomic(target / METADATA_FILE, json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n")
    write_text_atomic(Path(model_dir) / CURRENT_FILE, target.name + "\n")
    return target


def load_current_lsh(model_dir: str | Path) -> tuple[LshIndex, dict[str, Any]]:
    """The model ``CURRENT`` names and its metadata (needs an active SparkSession)."""
    pointer = Path(model_dir) / CURRENT_FILE
    if not pointer.is_file():
        raise SimilarTracksInputError(REASON_NO_CURRENT_MODEL, f"no {pointer}: run similar_tracks first")
    target = Path(model_dir) / pointer.read_text().strip()
    metadata = json.loads((target / METADATA_FILE).read_text())
    params = LshParams(**metadata["params"])
    model = BucketedRandomProjectionLSHModel.load(str(target / MODEL_SUBDIR))
    return LshIndex(model, params, metadata["seed"]), metadata


@dataclass(frozen=True)
class JobOptions:
    """Everything ``main`` reads from its arguments."""

    run_id: str
    k: int = DEFAULT_K
    grid: str = DEFAULT_GRID
    target_recall: float = DEFAULT_TARGET_RECALL
    sample_fraction: float = DEFAULT_SAMPLE_FRACTION
    seed: int = DEFAULT_SEED
    model_version: str | None = None
    embeddings: str | None = None
    model_dir: Path | None = None
    method: str = METHOD_LSH
    exact_max_tracks: int = DEFAULT_EXACT_MAX_TRACKS


def choose_method(method: str, catalogue_size: int, exact_max_tracks: int) -> str:
    """``auto``: exact kNN up to ``exact_max_tracks`` tracks (it is cheap there), else LSH."""
    if method == METHOD_AUTO:
        return METHOD_EXACT if catalogue_size <= exact_max_tracks else METHOD_LSH
    if method not in (METHOD_LSH, METHOD_EXACT):
        raise SimilarTracksInputError(REASON_BAD_ARGUMENT, f"method must be lsh, exact or auto, got {method!r}")
    return method


def default_model_version(catalogue: Catalogue, params: LshParams, *, k: int, seed: int) -> str:
    """12 hex digits of the data and parameters: a rerun overwrites its own version."""
    identity = {"fingerprint": catalogue.fingerprint, "params": asdict(params), "k": k, "seed": seed}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def run_similar_tracks(spark: SparkSession, db, options: JobOptions, *, settings: Settings | None = None) -> dict:
    """Everything ``main`` does but argument parsing and the session's life cycle; returns the summary."""
    settings = settings or get_settings()
    raw = read_embeddings_parquet(spark, options.embeddings) if options.embeddings else read_embeddings_from_mongo(db)
    catalogue = build_catalogue(raw)
    check_catalogue_size(catalogue, options.k)
    track_genres = read_track_genres(db)
    if not track_genres:
        log.warning("no track has a top_genre_id: genre precision is not measured")
    df = catalogue_frame(spark, catalogue).cache()
    try:
        tuning = tune_lsh(df, grid=options.grid, k=options.k, target_recall=options.target_recall,
                          sample_fraction=options.sample_fraction, seed=options.seed,
                          track_genres=track_genres, catalogue=catalogue)
        chosen = tuning.chosen.params
        index = fit_lsh(df, bucket_length=chosen.bucket_length, num_hash_tables=chosen.num_hash_tables,
                        seed=options.seed, hashes_per_table=chosen.hashes_per_table)
        started = time.perf_counter()
        lsh_pdf = approx_neighbours(index, df, k=options.k).select(TRACK_ID, NEIGHBOUR_ID, DISTANCE, RANK).toPandas()
        lsh_seconds = time.perf_counter() - started
    finally:
        df.unpersist()
    method = choose_method(options.method, catalogue.size, options.exact_max_tracks)
    exact_pdf, exact_seconds, exact_measured = _exact_for_all(catalogue, tuning, options, method)
    version = safe_version(options.model_version) if options.model_version else \
        default_model_version(catalogue, chosen, k=options.k, seed=options.seed)
    written = exact_pdf if method == METHOD_EXACT else lsh_pdf
    report = _final_report(catalogue, tuning, lsh_pdf, written, track_genres, options,
                           lsh_seconds=lsh_seconds, exact_seconds=exact_seconds, exact_measured=exact_measured)
    now = datetime.now(timezone.utc)
    from pipeline.load import upsert_by

    upsert_by(db, Collection.SIMILAR_TRACKS, similar_track_documents(
        written, k=options.k, model_version=version, method=method, computed_at=now), keys=(TRACK_ID,))
    upsert_by(db, Collection.MODEL_RUNS, _run_documents(tuning, report, options, catalogue, raw, version, method, now),
              keys=("run_id",))
    model_dir = options.model_dir or default_model_dir(settings)
    save_lsh_model(index, {
        "version": version, "params": asdict(chosen), "seed": options.seed, "k": options.k,
        "run_id": options.run_id, "catalogue_size": catalogue.size, "dimension": catalogue.dimension,
        "input_fingerprint": catalogue.fingerprint, "metrics": report, "target_met": tuning.target_met,
        "note": tuning.note, "trials": [_trial_summary(t) for t in tuning.trials],
    }, model_dir)
    return {"run_id": options.run_id, "model_version": version, "method": method, "tracks": catalogue.size,
            "documents": int(written[TRACK_ID].nunique()), "chosen": asdict(chosen),
            "target_met": tuning.target_met, "note": tuning.note, **report}


def _exact_for_all(catalogue: Catalogue, tuning: Tuning, options: JobOptions, method: str):
    """Exact top k of every track when cheap or asked for (timed); else the time extrapolated from the sample."""
    if method == METHOD_EXACT or catalogue.size <= options.exact_max_tracks:
        started = time.perf_counter()
        exact = exact_top_k(catalogue.vectors, catalogue.ids, k=options.k)
        return exact, time.perf_counter() - started, True
    estimate = tuning.exact_seconds * catalogue.size / len(tuning.queries)
    return None, estimate, False


def _final_report(catalogue, tuning, lsh_pdf, written, track_genres, options, *, lsh_seconds, exact_seconds,
                  exact_measured) -> dict:
    k = options.k
    lsh_lists, written_lists = neighbour_lists(lsh_pdf), neighbour_lists(written)
    sample_lsh = {q: lsh_lists.get(int(q), []) for q in tuning.queries}
    random_lists = random_neighbours(catalogue.ids, k=k, seed=options.seed)
    return {
        f"recall_at_{k}": recall_at_k(sample_lsh, neighbour_lists(tuning.exact), k),
        "recall_queries": int(len(tuning.queries)),
        "lsh_seconds": round(lsh_seconds, 3),
        "exact_seconds": round(exact_seconds, 3),
        "exact_seconds_measured": exact_measured,
        "exact_sample_seconds": round(tuning.exact_seconds, 3),
        "tracks_with_fewer_than_k": sum(len(v) < k for v in lsh_lists.values()) + catalogue.size - len(lsh_lists),
        f"genre_precision_at_{k}": genre_precision(written_lists, track_genres, k),
        f"lsh_genre_precision_at_{k}": genre_precision(lsh_lists, track_genres, k),
        f"random_genre_precision_at_{k}": genre_precision(random_lists, track_genres, k),
        "tracks_with_genre": sum(t in track_genres for t in catalogue.ids.tolist()),
        "skipped_tracks": catalogue.skipped,
    }


def _trial_summary(trial: Trial) -> dict:
    return {**asdict(trial.params), "recall": trial.recall, "seconds": round(trial.seconds, 3),
            "candidate_pairs": trial.candidate_pairs, "work_fraction": trial.work_fraction}


def _run_documents(tuning: Tuning, report: dict, options: JobOptions, catalogue: Catalogue, raw: pd.DataFrame,
                   version: str, method: str, now: datetime) -> Iterator[dict]:
    k, run_id = options.k, options.run_id
    snapshot = {
        "source": options.embeddings or Collection.TRACK_FEATURES.value, "tracks": catalogue.size,
        "dimension": catalogue.dimension, "fingerprint": catalogue.fingerprint,
        "embedding_model_versions": sorted(str(v) for v in raw["model_version"].dropna().unique())
        if "model_version" in raw.columns else [],
        "query_tracks": int(len(tuning.queries)), "skipped_tracks": catalogue.skipped,
    }
    for trial in tuning.trials:
        yield model_run_document(
            trial_run_id(run_id, trial.params), model=METHOD_LSH, kind="trial",
            params=_params_doc(trial.params, k=k, seed=options.seed),
            metrics_={f"recall_at_{k}": trial.recall, "seconds": round(trial.seconds, 3),
                      f"genre_precision_at_{k}": trial.genre_precision, "candidate_pairs": trial.candidate_pairs,
                      "work_fraction": trial.work_fraction},
            data_snapshot=snapshot, model_version=version, created_at=now)
    yield model_run_document(
        f"{run_id}:lsh:final", model=METHOD_LSH, kind="final",
        params={**_params_doc(tuning.chosen.params, k=k, seed=options.seed), "method": method,
                "target_recall": options.target_recall, "grid": options.grid},
        metrics_={**report, "target_met": tuning.target_met}, data_snapshot=snapshot, model_version=version,
        created_at=now, champion=True, promotion={"promoted": True, "reason": tuning.note})
    yield model_run_document(
        f"{run_id}:random_neighbours", model="random_neighbours", kind="baseline", params={"k": k, "seed": options.seed},
        metrics_={f"genre_precision_at_{k}": report[f"random_genre_precision_at_{k}"]},
        data_snapshot=snapshot, model_version=version, created_at=now)
    yield model_run_document(
        f"{run_id}:exact_knn", model="exact_knn", kind="baseline", params={"k": k},
        metrics_={f"recall_at_{k}": 1.0, "seconds": report["exact_seconds"],
                  "seconds_measured": report["exact_seconds_measured"]},
        data_snapshot=snapshot, model_version=version, created_at=now)


def summary_line(summary: dict, k: int) -> str:
    """The one JSON line: chosen params, recall, LSH vs exact seconds, genre precision vs random."""
    return json.dumps({
        "run_id": summary["run_id"], "model_version": summary["model_version"], "method": summary["method"],
        "tracks": summary["tracks"], "chosen": summary["chosen"], "target_met": summary["target_met"],
        f"recall_at_{k}": round(summary[f"recall_at_{k}"], 4),
        "lsh_seconds": summary["lsh_seconds"], "exact_seconds": summary["exact_seconds"],
        "exact_seconds_measured": summary["exact_seconds_measured"],
        f"genre_precision_at_{k}": summary[f"genre_precision_at_{k}"],
        f"random_genre_precision_at_{k}": summary[f"random_genre_precision_at_{k}"],
    })


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-id", required=True, help="natural key of this run's model_runs documents")
    parser.add_argument("--k", type=int, default=DEFAULT_K, help="neighbours per track")
    parser.add_argument("--grid", default=DEFAULT_GRID, help='"bucket_lengths=..;tables=..[;hashes=..]"')
    parser.add_argument("--target-recall", type=float, default=DEFAULT_TARGET_RECALL)
    parser.add_argument("--sample-fraction", type=float, default=DEFAULT_SAMPLE_FRACTION,
                        help=f"query tracks for recall (at least {MIN_QUERIES})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--model-version", default=None, help="default: hash of data + chosen params")
    parser.add_argument("--embeddings", default=None, help="Parquet track_id, embedding (default: track_features)")
    parser.add_argument("--model-dir", type=Path, default=None, help="default: <models_dir>/lsh")
    parser.add_argument("--method", choices=(METHOD_LSH, METHOD_EXACT, METHOD_AUTO), default=METHOD_LSH,
                        help="neighbours written: lsh, exact, or auto (exact up to --exact-max-tracks)")
    parser.add_argument("--exact-max-tracks", type=int, default=DEFAULT_EXACT_MAX_TRACKS,
                        help="up to this size exact kNN of every track is computed and timed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    options = JobOptions(**{name: value for name, value in vars(args).items()})
    settings = get_settings()
    from fma_platform.mongo import platform_db

    spark = spark_session(APP_NAME, settings=settings)
    try:
        summary = run_similar_tracks(spark, platform_db(settings), options, settings=settings)
    except SimilarTracksInputError as exc:
        print(json.dumps({"error": exc.reason, "detail": exc.detail}), file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(summary_line(summary, options.k), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
