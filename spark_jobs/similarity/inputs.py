"""Read what the similarity job needs: usable track embeddings (MongoDB or Parquet) and top-level genres.

Embeddings go through ``fma_platform.embeddings``, the one rule every reader applies:
tracks without a usable unit vector (or of another dimension) are left out and counted
by reason; only a broken input as a whole raises ``EmbeddingsError``.
"""

from __future__ import annotations

from pymongo.database import Database
from pyspark.sql import SparkSession

from fma_platform.contracts import Collection
from fma_platform.embeddings import (
    EMBEDDING,
    MODEL_VERSION,
    TRACK_ID,
    TrackEmbeddings,
    embeddings_from_frame,
    load_track_embeddings,
)

TOP_GENRE_ID = "top_genre_id"


def read_embeddings(spark: SparkSession, db: Database, parquet_path: str | None = None) -> TrackEmbeddings:
    """The usable embeddings of ``track_features``, or of the Parquet at ``parquet_path`` when given."""
    return read_embeddings_parquet(spark, parquet_path) if parquet_path else load_track_embeddings(db)


def read_embeddings_parquet(spark: SparkSession, path: str) -> TrackEmbeddings:
    """The usable embeddings of a ``track_id, embedding[, model_version]`` Parquet (``transform_features`` output)."""
    raw = spark.read.parquet(path)
    columns = [name for name in (TRACK_ID, EMBEDDING, MODEL_VERSION) if name in raw.columns]
    return embeddings_from_frame(raw.select(*columns).toPandas())


def read_track_genres(db: Database) -> dict[int, int]:
    """``{track_id: top_genre_id}`` of the tracks that have a top-level genre."""
    cursor = db[Collection.TRACKS].find({TOP_GENRE_ID: {"$ne": None}}, {"_id": 0, TRACK_ID: 1, TOP_GENRE_ID: 1})
    return {int(doc[TRACK_ID]): int(doc[TOP_GENRE_ID]) for doc in cursor if TOP_GENRE_ID in doc}
