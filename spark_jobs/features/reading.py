"""Read the extractor's chunk Parquet files as ``track_id`` plus the 518 feature columns (doubles).

Other columns of the extraction output (duration, tempo, timings) are dropped. Files are
resolved on the driver's file system first, so files Spark cannot read together (an
all-failed chunk is written with untyped columns) can be inspected and left out.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Sequence
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fma_platform.embeddings import TRACK_ID
from spark_jobs.features.errors import (
    REASON_MISSING_COLUMNS,
    REASON_NO_INPUT_FILES,
    REASON_TOO_FEW_ROWS,
    TransformInputError,
)
from audio_features.fma_schema import FLAT_FEATURE_NAMES
from spark_jobs.features.validation import check_feature_schema, name_some

log = logging.getLogger(__name__)


def feature_files(path: str | Path) -> list[str]:
    """The Parquet files behind ``path``: a file, a folder (searched recursively) or a glob, sorted."""
    text = str(path)
    if glob.has_magic(text):
        files = glob.glob(text, recursive=True)
    elif Path(text).is_dir():
        files = [str(p) for p in Path(text).rglob("*.parquet") if not p.name.startswith((".", "_"))]
    else:
        files = [text] if Path(text).is_file() else []
    files = sorted(f for f in files if Path(f).is_file())
    if not files:
        raise TransformInputError(REASON_NO_INPUT_FILES, f"no Parquet files at {text!r}")
    return files


def non_empty_feature_files(files: Sequence[str]) -> list[str]:
    """``files`` without the zero-row ones, after checking each has every feature column.

    Reads only Parquet footers. A chunk whose tracks all failed extraction is written
    with untyped (null) columns, and Spark refuses to read it together with typed
    chunks; it holds no rows, so leaving it out loses nothing (the count is logged).
    """
    import pyarrow.parquet as pq

    kept = []
    for name in files:
        metadata = pq.read_metadata(name)
        if metadata.num_rows == 0:
            continue
        missing = sorted(set((TRACK_ID, *FLAT_FEATURE_NAMES)) - set(metadata.schema.names))
        if missing:
            raise TransformInputError(REASON_MISSING_COLUMNS, f"{name} lacks {name_some(missing)}")
        kept.append(name)
    if len(kept) < len(files):
        log.warning("skipped %d Parquet file(s) with no rows", len(files) - len(kept))
    if not kept:
        raise TransformInputError(REASON_TOO_FEW_ROWS, f"all {len(files)} Parquet file(s) are empty")
    return kept


def read_track_features(spark: SparkSession, path: str | Path) -> DataFrame:
    """``track_id`` and the 518 features (as double) from the Parquet at ``path``."""
    return select_track_features(spark.read.parquet(*non_empty_feature_files(feature_files(path))))


def select_track_features(raw: DataFrame) -> DataFrame:
    """``track_id`` (long) and the feature columns (double), in the model's column order."""
    check_feature_schema(raw)
    return raw.select(
        F.col(TRACK_ID).cast("long").alias(TRACK_ID),
        *(F.col(name).cast("double").alias(name) for name in FLAT_FEATURE_NAMES),
    )
