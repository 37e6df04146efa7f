"""Check track features are fit for the transform: their schema, then one profiling pass over the rows.

The profile counts rows, null track ids and null/NaN/infinite values per feature column,
lists a few duplicated track ids, and fingerprints the content (the default model
version follows it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import NumericType

from audio_features.fma_schema import FLAT_FEATURE_NAMES
from fma_platform.embeddings import TRACK_ID
from spark_jobs.features.errors import (
    REASON_DUPLICATE_TRACK_IDS,
    REASON_INVALID_VALUES,
    REASON_MISSING_COLUMNS,
    REASON_NON_NUMERIC_COLUMNS,
    REASON_NULL_TRACK_IDS,
    REASON_TOO_FEW_ROWS,
    TransformInputError,
)

# The 518 flat FMA feature names, in the order the fitted model reads them.


@dataclass(frozen=True)
class FeatureProfile:
    """What one pass over the input found: size, bad values per column, a fingerprint.

    ``fingerprint`` is an order-independent hash of every row's content (xor of
    per-row xxhash64), so the same data in any partitioning gives the same value.
    """

    rows: int
    null_track_ids: int
    invalid_counts: dict[str, int] = field(default_factory=dict)
    duplicate_track_ids: tuple[int, ...] = ()
    fingerprint: int = 0


def check_feature_schema(features_df: DataFrame) -> None:
    """Raise ``TransformInputError`` if a feature column is missing or not numeric."""
    present = {f.name: f.dataType for f in features_df.schema.fields}
    missing = [name for name in (TRACK_ID, *FLAT_FEATURE_NAMES) if name not in present]
    if missing:
        raise TransformInputError(REASON_MISSING_COLUMNS, f"{len(missing)} missing: {name_some(missing)}")
    non_numeric = [name for name in (TRACK_ID, *FLAT_FEATURE_NAMES) if not isinstance(present[name], NumericType)]
    if non_numeric:
        raise TransformInputError(REASON_NON_NUMERIC_COLUMNS, name_some(non_numeric))


def profile_track_features(features_df: DataFrame) -> FeatureProfile:
    """Count rows, null track ids and null/NaN/infinite values per feature in one pass.

    A second small job lists up to 5 duplicated track ids.
    """
    check_feature_schema(features_df)
    aggregates = [
        F.count(F.lit(1)).alias("rows"),
        F.count(F.when(F.col(TRACK_ID).isNull(), 1)).alias("null_track_ids"),
        F.bit_xor(F.xxhash64(TRACK_ID, *FLAT_FEATURE_NAMES)).alias("fingerprint"),
        *(F.count(F.when(_is_invalid(name), 1)).alias(name) for name in FLAT_FEATURE_NAMES),
    ]
    row = features_df.agg(*aggregates).first().asDict()
    duplicates = (
        features_df.where(F.col(TRACK_ID).isNotNull())
        .groupBy(TRACK_ID).count().where(F.col("count") > 1)
        .orderBy(TRACK_ID).limit(5).collect()
    )
    return FeatureProfile(
        rows=row["rows"],
        null_track_ids=row["null_track_ids"],
        invalid_counts={name: row[name] for name in FLAT_FEATURE_NAMES if row[name]},
        duplicate_track_ids=tuple(r[TRACK_ID] for r in duplicates),
        fingerprint=row["fingerprint"] or 0,
    )


def check_feature_profile(profile: FeatureProfile) -> None:
    """Raise ``TransformInputError`` naming the first problem the profile shows."""
    if profile.invalid_counts:
        described = [f"{name}={count}" for name, count in profile.invalid_counts.items()]
        raise TransformInputError(
            REASON_INVALID_VALUES,
            f"null/NaN/infinite values in {len(described)} feature column(s): {name_some(described)}",
        )
    if profile.null_track_ids:
        raise TransformInputError(REASON_NULL_TRACK_IDS, f"{profile.null_track_ids} row(s) have no track_id")
    if profile.duplicate_track_ids:
        raise TransformInputError(
            REASON_DUPLICATE_TRACK_IDS, f"e.g. {list(profile.duplicate_track_ids)} appear more than once"
        )
    if profile.rows < 2:
        raise TransformInputError(REASON_TOO_FEW_ROWS, f"{profile.rows} row(s); PCA needs at least 2")


def validate_track_features(features_df: DataFrame) -> FeatureProfile:
    """Profile ``features_df`` and raise ``TransformInputError`` if it cannot be fitted."""
    profile = profile_track_features(features_df)
    check_feature_profile(profile)
    return profile


def name_some(items: Sequence[str], limit: int = 10) -> str:
    """Up to ``limit`` of ``items``, comma-separated, then how many more."""
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... ({len(items) - limit} more)"


def _is_invalid(name: str):
    column = F.col(name)
    return column.isNull() | F.isnan(column) | column.isin(math.inf, -math.inf)
