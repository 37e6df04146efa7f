"""Find each track's k nearest neighbours by embedding: exactly (numpy) or among Spark LSH candidates.

Embeddings are unit vectors, so ``||a-b||^2 = 2 - 2 cos``: Euclidean distance ranks like
cosine similarity.

Exact (``exact_top_k``)
  Brute force on the driver: one BLAS matrix product per block of queries. For a
  catalogue of FMA's size (<= 106,574 x 32 floats, 14 MB) this is the fastest honest
  baseline; a Spark cross join would move n^2 rows.

LSH (``fit_lsh``, ``approx_neighbours``)
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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.ml.feature import BucketedRandomProjectionLSH, BucketedRandomProjectionLSHModel
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StructField, StructType

from fma_platform.embeddings import EMBEDDING, TRACK_ID, TrackEmbeddings
from spark_jobs.similarity.errors import (
    REASON_BAD_ARGUMENT,
    REASON_BAD_GRID,
    REASON_TOO_FEW_TRACKS,
    SimilarityInputError,
)

NEIGHBOUR_ID = "neighbour_id"
DISTANCE = "distance"
RANK = "rank"
DEFAULT_K = 10
DEFAULT_SEED = 42
_QUERY_BLOCK_ROWS = 256  # rows of the distance matrix computed at once (memory ~ rows x catalogue)

# Hidden column names.
_FEATURES, _HASHES, _TABLE, _BUCKET, _IS_QUERY = "features_vector", "hashes", "lsh_table", "lsh_bucket", "is_query"

NEIGHBOUR_SCHEMA = StructType([
    StructField(TRACK_ID, LongType(), False),
    StructField(NEIGHBOUR_ID, LongType(), False),
    StructField(DISTANCE, DoubleType(), False),
])


def check_enough_tracks(embeddings: TrackEmbeddings, k: int) -> None:
    """Raise unless every track can have ``k`` neighbours (``k + 1`` usable tracks at least)."""
    if k < 1:
        raise SimilarityInputError(REASON_BAD_ARGUMENT, f"k must be >= 1, got {k}")
    if embeddings.size < k + 1:
        left_out = {reason: info["count"] for reason, info in embeddings.left_out.items()}
        raise SimilarityInputError(
            REASON_TOO_FEW_TRACKS,
            f"{embeddings.size} usable track(s); k={k} needs at least {k + 1} (left out: {left_out or 'none'})",
        )


def embeddings_frame(spark: SparkSession, embeddings: TrackEmbeddings) -> DataFrame:
    """``track_id`` (long), ``embedding`` (array<float>) as a Spark DataFrame."""
    return spark.createDataFrame(embeddings.frame(), schema=f"{TRACK_ID} long, {EMBEDDING} array<float>")


def neighbour_lists(neighbours: DataFrame | pd.DataFrame) -> dict[int, list[int]]:
    """``{track_id: [neighbour_id, ...]}`` best first, from a neighbours DataFrame."""
    pdf = neighbours if isinstance(neighbours, pd.DataFrame) else neighbours.select(TRACK_ID, NEIGHBOUR_ID, RANK).toPandas()
    pdf = pdf.sort_values([TRACK_ID, RANK])
    return {int(t): [int(n) for n in group] for t, group in pdf.groupby(TRACK_ID, sort=False)[NEIGHBOUR_ID]}


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


def rows_of(ids: np.ndarray, wanted: Iterable[int]) -> np.ndarray:
    """Rows of ``wanted`` track ids in the sorted ``ids``; raises for an id not among them."""
    wanted = np.asarray(sorted({int(w) for w in wanted}), dtype=np.int64)
    rows = np.searchsorted(ids, wanted)
    unknown = wanted[(rows >= ids.size) | (ids[np.minimum(rows, ids.size - 1)] != wanted)]
    if unknown.size:
        raise SimilarityInputError(REASON_BAD_ARGUMENT, f"query track ids not in the catalogue: {unknown[:5].tolist()}")
    return rows


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


# -- LSH ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LshParams:
    """One configuration: bucket width, OR-tables, AND-hashes per table."""

    bucket_length: float
    num_hash_tables: int
    hashes_per_table: int = 1

    def __post_init__(self) -> None:
        if not (self.bucket_length > 0 and math.isfinite(self.bucket_length)):
            raise SimilarityInputError(REASON_BAD_GRID, f"bucket_length must be > 0, got {self.bucket_length}")
        if self.num_hash_tables < 1 or self.hashes_per_table < 1:
            raise SimilarityInputError(
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


def fit_lsh(embeddings_df: DataFrame, params: LshParams, *, seed: int = DEFAULT_SEED) -> LshIndex:
    """Fit ``BucketedRandomProjectionLSH`` with ``num_hash_tables x hashes_per_table`` hashes.

    Fitting only draws the random unit vectors (it reads the dimension from the data).
    """
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
        raise SimilarityInputError(REASON_BAD_ARGUMENT, f"k must be >= 1, got {k}")
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
