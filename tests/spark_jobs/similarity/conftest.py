"""Clustered unit embeddings whose cluster is the genre, shared by the similarity tests."""

from __future__ import annotations

import pytest

from spark_jobs.similarity.neighbours import embeddings_frame
from spark_jobs.similarity.synthetic import clustered_embeddings


@pytest.fixture(scope="module")
def clustered():
    """1,500 tracks in 16 genres: ``(TrackEmbeddings, {track_id: genre})``."""
    return clustered_embeddings(1500, seed=3)


@pytest.fixture(scope="module")
def clustered_df(spark, clustered):
    df = embeddings_frame(spark, clustered[0]).cache()
    yield df
    df.unpersist()
