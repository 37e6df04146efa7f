"""Synthetic features with a known structure: 518 columns from 3 latent factors plus small noise.

A correct standardise + PCA finds 3 components that explain nearly all the variance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audio_features.fma_schema import FLAT_FEATURE_NAMES

N_FACTORS = 3


def latent_features(n_rows: int, *, seed: int = 0, noise: float = 0.01, first_id: int = 2) -> pd.DataFrame:
    """``track_id`` + 518 features = 3 latent factors x random loadings + offsets + noise."""
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((n_rows, N_FACTORS))
    loadings = rng.standard_normal((N_FACTORS, len(FLAT_FEATURE_NAMES)))
    offsets = rng.uniform(-50, 50, len(FLAT_FEATURE_NAMES))  # raw scales differ; standardisation must cope
    values = factors @ loadings + offsets + noise * rng.standard_normal((n_rows, len(FLAT_FEATURE_NAMES)))
    frame = pd.DataFrame(values, columns=list(FLAT_FEATURE_NAMES))
    frame.insert(0, "track_id", np.arange(first_id, first_id + n_rows, dtype="int64"))
    return frame


def with_extras(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the extra columns extraction writes after the features."""
    return frame.assign(duration_seconds=30.0, sample_rate=44100, analysis_sample_rate=22050,
                        tempo_bpm=120.0, extract_seconds=1.0)


def write_extraction_chunks(out_dir, frame: pd.DataFrame) -> None:
    """Chunk files as extraction writes them, including an all-failed (empty, untyped) chunk."""
    chunks = out_dir / "chunks"
    chunks.mkdir(parents=True)
    empty = pd.DataFrame.from_records([], columns=list(with_extras(frame.head(0)).columns))
    empty.astype({"track_id": "int64"}).to_parquet(chunks / "chunk-00000.parquet", index=False)
    half = len(frame) // 2
    with_extras(frame.iloc[:half]).to_parquet(chunks / "chunk-00001.parquet", index=False)
    with_extras(frame.iloc[half:]).to_parquet(chunks / "chunk-00002.parquet", index=False)
    for index in range(3):
        (chunks / f"chunk-{index:05d}.failures.csv").write_text("track_id,reason\n")


def embeddings_by_track(embeddings) -> dict[int, np.ndarray]:
    """``{track_id: vector}`` of a Spark ``track_id, embedding`` DataFrame."""
    return {row["track_id"]: np.array(row["embedding"]) for row in embeddings.collect()}
