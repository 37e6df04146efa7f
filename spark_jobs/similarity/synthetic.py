"""Make clustered unit embeddings whose clusters stand for genres: a catalogue with known right answers.

Each synthetic genre is a random direction plus variation in a few latent directions of
its own, so a track's nearest neighbours are (almost always) of its genre, as similar
music should be, while a random track shares its genre 1 time in ``clusters``. The
similarity benchmark measures recall and genre precision on it; the tests use it too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fma_platform.embeddings import EMBEDDING, TRACK_ID, TrackEmbeddings, embeddings_from_frame


def clustered_unit_vectors(n: int, *, dim: int = 32, clusters: int = 16, latent: int = 4, spread: float = 0.35,
                           noise: float = 0.03, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(track_ids 1..n, unit vectors float32 (n, dim), genre 0..clusters-1 per track)``.

    A genre is a random direction plus ``latent`` directions of its own along which its
    tracks vary (``spread``), plus small isotropic ``noise``.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    bases = rng.standard_normal((clusters, latent, dim)) / np.sqrt(latent)
    genres = rng.integers(0, clusters, n)
    offsets = np.einsum("nl,nld->nd", rng.standard_normal((n, latent)) * spread, bases[genres]) * 0.5
    vectors = centres[genres] + offsets + noise * rng.standard_normal((n, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.arange(1, n + 1, dtype=np.int64), vectors.astype(np.float32), genres


def clustered_embeddings(n: int, *, seed: int = 0, **shape) -> tuple[TrackEmbeddings, dict[int, int]]:
    """:func:`clustered_unit_vectors` as ``TrackEmbeddings`` and ``{track_id: genre}``."""
    ids, vectors, genres = clustered_unit_vectors(n, seed=seed, **shape)
    embeddings = embeddings_from_frame(pd.DataFrame({TRACK_ID: ids, EMBEDDING: list(vectors)}))
    return embeddings, dict(zip(ids.tolist(), genres.tolist()))
