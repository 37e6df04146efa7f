"""Track embeddings: one loader and one rule for every reader.

The ETL stores each track's L2-normalised PCA embedding in ``track_features.embedding``
(with the transform's ``model_version``). Similar tracks, the recommenders, the stream,
the simulator and the dashboards all read them through ``load_track_embeddings`` (or
``embeddings_from_frame`` for Parquet/test data), so they agree on which tracks have a
usable vector.

The rule, applied per track so one broken document never stops a job:

* left out, with the reason counted in ``left_out``: no embedding (``missing_embedding``),
  NaN/inf values (``non_finite_values``), a zero vector (``zero_vector``), a norm further
  than ``UNIT_NORM_TOLERANCE`` from 1 (``not_unit_length``: the ETL writes unit vectors,
  so another norm means a damaged document), and a length other than the most common
  one (``other_dimension``: documents left from an older transform version while a new
  one is being loaded);
* the kept vectors are re-normalised exactly, sorted by ``track_id``.

Only problems of the whole input raise ``EmbeddingsError``: missing columns and
duplicated track ids.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from pymongo.database import Database

from fma_platform.contracts import Collection
from fma_platform.errors import ReasonedError

log = logging.getLogger(__name__)

TRACK_ID = "track_id"
EMBEDDING = "embedding"
MODEL_VERSION = "model_version"
UNIT_NORM_TOLERANCE = 1e-3

REASON_MISSING_COLUMNS = "missing_columns"
REASON_DUPLICATE_TRACK_IDS = "duplicate_track_ids"
REASON_MISSING_EMBEDDING = "missing_embedding"
REASON_NON_FINITE = "non_finite_values"
REASON_ZERO_VECTOR = "zero_vector"
REASON_NOT_UNIT_LENGTH = "not_unit_length"
REASON_OTHER_DIMENSION = "other_dimension"
EXAMPLES_KEPT = 10


class EmbeddingsError(ReasonedError):
    """The embeddings as a whole cannot be used (``reason``: missing_columns, duplicate_track_ids)."""


@dataclass(frozen=True)
class TrackEmbeddings:
    """Usable unit embeddings, sorted by track id, and what was left out and why.

    ``left_out`` maps a reason to ``{"count": n, "examples": [up to 10 track ids]}``;
    ``fingerprint`` hashes ids and vectors, so a model version can follow the data.
    """

    ids: np.ndarray  # int64, sorted, unique
    vectors: np.ndarray  # float32 (n, d), unit rows
    left_out: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_versions: tuple[str, ...] = ()
    fingerprint: str = ""

    @property
    def size(self) -> int:
        return int(self.ids.size)

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0

    @cached_property
    def index_of(self) -> dict[int, int]:
        """``{track_id: row}`` (built once, on first use)."""
        return {int(t): row for row, t in enumerate(self.ids.tolist())}

    def positions(self, track_ids: Iterable[int]) -> np.ndarray:
        """Row of each of ``track_ids`` (int64), -1 for a track without a usable embedding."""
        wanted = np.fromiter((int(t) for t in track_ids), dtype=np.int64)
        rows = np.searchsorted(self.ids, wanted)
        rows = np.minimum(rows, max(self.size - 1, 0))
        found = (self.size > 0) & (self.ids[rows] == wanted) if self.size else np.zeros(wanted.size, dtype=bool)
        return np.where(found, rows, -1)

    def aligned_to(self, track_ids: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Float64 rows aligned to ``track_ids`` (zero rows where a track has no usable
        embedding) and which rows have one; the matrix is None when none has."""
        rows = self.positions(track_ids)
        found = rows >= 0
        if not found.any():
            return None, found
        matrix = np.zeros((found.size, self.dimension), dtype=np.float64)
        matrix[found] = self.vectors[rows[found]]
        return matrix, found

    def restricted_to(self, track_ids: Iterable[int]) -> TrackEmbeddings:
        """Only the rows of ``track_ids`` (others dropped, ``left_out`` kept as loaded)."""
        keep = np.isin(self.ids, np.fromiter((int(t) for t in track_ids), dtype=np.int64))
        if keep.all():
            return self
        ids, vectors = self.ids[keep], self.vectors[keep]
        return TrackEmbeddings(ids=ids, vectors=vectors, left_out=self.left_out,
                               model_versions=self.model_versions, fingerprint=_fingerprint(ids, vectors))

    def frame(self) -> pd.DataFrame:
        """``track_id, embedding`` (one float32 array per row)."""
        return pd.DataFrame({TRACK_ID: self.ids, EMBEDDING: list(self.vectors)})


def empty_embeddings() -> TrackEmbeddings:
    """No usable embedding (before the first ETL run)."""
    return TrackEmbeddings(ids=np.zeros(0, dtype=np.int64), vectors=np.zeros((0, 0), dtype=np.float32))


def embeddings_from_frame(frame: pd.DataFrame) -> TrackEmbeddings:
    """Apply the module's rule to ``track_id, embedding[, model_version]`` rows."""
    missing = [name for name in (TRACK_ID, EMBEDDING) if name not in frame.columns]
    if missing:
        raise EmbeddingsError(REASON_MISSING_COLUMNS, f"embeddings lack {missing}")
    if frame.empty:
        return empty_embeddings()
    ids = frame[TRACK_ID].astype("int64").to_numpy()
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise EmbeddingsError(REASON_DUPLICATE_TRACK_IDS,
                              f"e.g. {unique[counts > 1][:5].tolist()} appear more than once")
    raw = frame[EMBEDDING].tolist()
    lengths = np.array([_length(v) for v in raw], dtype=np.int64)
    left_out: dict[str, np.ndarray] = {REASON_MISSING_EMBEDDING: ids[lengths == 0]}
    present = lengths > 0
    modal = _modal(lengths[present])
    left_out[REASON_OTHER_DIMENSION] = ids[present & (lengths != modal)]
    keep = present & (lengths == modal)
    kept_ids = ids[keep]
    vectors = (np.array([raw[i] for i in np.flatnonzero(keep)], dtype=np.float64).reshape(-1, modal)
               if keep.any() else np.zeros((0, modal), dtype=np.float64))
    finite = np.isfinite(vectors).all(axis=1)
    norms = np.linalg.norm(np.where(finite[:, None], vectors, 0.0), axis=1)
    zero = finite & (norms == 0.0)
    not_unit = finite & ~zero & (np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE)
    left_out[REASON_NON_FINITE] = kept_ids[~finite]
    left_out[REASON_ZERO_VECTOR] = kept_ids[zero]
    left_out[REASON_NOT_UNIT_LENGTH] = kept_ids[not_unit]
    good = finite & ~zero & ~not_unit
    order = np.argsort(kept_ids[good], kind="stable")
    final_ids = kept_ids[good][order]
    final_vectors = (vectors[good] / norms[good][:, None])[order].astype(np.float32)
    report = {reason: {"count": int(bad.size), "examples": sorted(bad.tolist())[:EXAMPLES_KEPT]}
              for reason, bad in left_out.items() if bad.size}
    for reason, info in report.items():
        log.warning("left out %d track embedding(s): %s, e.g. %s", info["count"], reason, info["examples"])
    versions = (tuple(sorted({str(v) for v in frame[MODEL_VERSION].dropna()}))
                if MODEL_VERSION in frame.columns else ())
    return TrackEmbeddings(ids=final_ids, vectors=final_vectors, left_out=report, model_versions=versions,
                           fingerprint=_fingerprint(final_ids, final_vectors))


def load_track_embeddings(db: Database, *, track_ids: Iterable[int] | None = None) -> TrackEmbeddings:
    """The usable embeddings of ``track_features`` (all tracks, or only ``track_ids``)."""
    selector: dict[str, Any] = {}
    if track_ids is not None:
        selector[TRACK_ID] = {"$in": [int(t) for t in track_ids]}
    cursor = db[Collection.TRACK_FEATURES].find(selector, {"_id": 0, TRACK_ID: 1, EMBEDDING: 1, MODEL_VERSION: 1})
    return embeddings_from_frame(pd.DataFrame(list(cursor), columns=[TRACK_ID, EMBEDDING, MODEL_VERSION]))


def _fingerprint(ids: np.ndarray, vectors: np.ndarray) -> str:
    return hashlib.sha256(ids.tobytes() + vectors.tobytes()).hexdigest()[:16]


def _length(value: Any) -> int:
    if value is None:
        return 0
    try:
        return len(value)
    except TypeError:  # a scalar where a list belongs: unusable
        return 0


def _modal(lengths: np.ndarray) -> int:
    """The most common length (the larger one on a tie); 0 when there is none."""
    if lengths.size == 0:
        return 0
    values, counts = np.unique(lengths, return_counts=True)
    return int(values[counts == counts.max()].max())
