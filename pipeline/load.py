"""The load step's pieces: the failure tolerance, the ``track_features`` and ``quarantine``
documents and their indexes, and the run's ``etl_runs`` summary.

``pipeline.etl.load`` upserts the documents on their natural keys
(``fma_platform.mongo.upsert_by``), so a retried task or a re-run DAG leaves the same
documents; a track that now loads cleanly leaves quarantine.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime

import pandas as pd
from pymongo import ASCENDING
from pymongo.database import Database

from audio_features.fma_schema import (
    EXTRA_FEATURE_COLUMNS,
    EXTRACT_SECONDS_COLUMN,
    feature_columns,
    flat_feature_name,
)
from fma_platform.contracts import Collection
from pipeline.errors import PipelineError

FEATURE_NAMES: tuple[str, ...] = tuple(flat_feature_name(c) for c in feature_columns())
# Columns of the extractor's tables stored beside the features (when the table has them).
STORED_EXTRAS: tuple[str, ...] = (*EXTRA_FEATURE_COLUMNS, EXTRACT_SECONDS_COLUMN)


class ToleranceExceededError(PipelineError):
    """More tracks failed than the run's failure tolerance allows."""


class LoadInputError(PipelineError):
    """The load step's inputs disagree (features of tracks the transform gave no embedding)."""


def failures_by_reason(quarantine: Iterable[dict]) -> dict[str, int]:
    """How many quarantined tracks per reason code (``reason`` up to its first ':')."""
    return dict(Counter(str(item["reason"]).split(":", 1)[0] for item in quarantine).most_common())


def check_tolerance(*, failed: list[dict], total: int, max_failure_fraction: float) -> None:
    """Raise ``ToleranceExceededError`` (how many, why) when too many tracks failed."""
    if total <= 0:
        raise ToleranceExceededError("the dataset has no tracks to process")
    fraction = len(failed) / total
    if fraction > max_failure_fraction:
        reasons = ", ".join(f"{reason} {count}" for reason, count in failures_by_reason(failed).items())
        raise ToleranceExceededError(
            f"{len(failed)} of {total} tracks ({fraction:.1%}) failed, above the "
            f"{max_failure_fraction:.1%} tolerance: {reasons}"
        )


def feature_documents(
    features: pd.DataFrame, embeddings: pd.DataFrame, *, run_id: str, model_version: str, loaded_at: datetime
) -> Iterator[dict]:
    """One ``track_features`` document per track: 518 FMA features, extras, embedding."""
    by_track = embeddings.set_index("track_id")["embedding"]
    missing = sorted(set(features["track_id"]) - set(by_track.index))
    if missing:
        raise LoadInputError(f"{len(missing)} tracks have features but no embedding, e.g. {missing[:5]}")
    extras = [name for name in STORED_EXTRAS if name in features.columns]
    for row in features.itertuples(index=False):
        values = row._asdict()
        track_id = int(values["track_id"])
        yield {
            "track_id": track_id,
            "features": {name: float(values[name]) for name in FEATURE_NAMES},
            **{name: _number(values[name]) for name in extras},
            "embedding": [float(x) for x in by_track[track_id]],
            "model_version": model_version,
            "etl_run_id": run_id,
            "loaded_at": loaded_at,
        }


def ensure_load_indexes(db: Database) -> None:
    db[Collection.TRACK_FEATURES].create_index([("track_id", ASCENDING)], unique=True, name="track_id_unique")
    db[Collection.QUARANTINE].create_index(
        [("dataset", ASCENDING), ("track_id", ASCENDING), ("stage", ASCENDING)], unique=True, name="natural_key"
    )
    db[Collection.ETL_RUNS].create_index([("run_id", ASCENDING)], unique=True, name="run_id_unique")


def quarantine_documents(failures: Iterable[dict], *, dataset: str, run_id: str, recorded_at: datetime) -> list[dict]:
    """Quarantine records: one per (dataset, track, stage) with the reason."""
    return [
        {
            "dataset": dataset,
            "track_id": item.get("track_id"),
            "stage": item["stage"],
            "reason": str(item["reason"]),
            "detail": item.get("detail"),
            "etl_run_id": run_id,
            "recorded_at": recorded_at,
        }
        for item in failures
    ]


def release_from_quarantine(db: Database, *, dataset: str, track_ids: Iterable[int]) -> int:
    """Drop quarantine records of tracks that now load cleanly (a fixed file)."""
    result = db[Collection.QUARANTINE].delete_many({"dataset": dataset, "track_id": {"$in": list(track_ids)}})
    return result.deleted_count


def update_etl_run(db: Database, run_id: str, fields: dict) -> None:
    """Merge ``fields`` (dotted paths allowed) into the ETL run's ``etl_runs`` summary, upserted by ``run_id``."""
    db[Collection.ETL_RUNS].update_one({"run_id": run_id}, {"$set": fields}, upsert=True)


def close_interrupted_runs(db: Database, current_run_id: str, *, at: datetime) -> int:
    """Mark runs still "running" other than ``current_run_id`` as interrupted; how many.

    The ETL DAG allows one active run, so when a run starts, an earlier one that still
    says "running" was killed (stack stopped, task process lost) and will never finish.
    """
    result = db[Collection.ETL_RUNS].update_many(
        {"status": "running", "run_id": {"$ne": current_run_id}},
        {"$set": {"status": "interrupted", "finished_at": at,
                  "failure": f"stopped before finishing; found by run {current_run_id}"}},
    )
    return result.modified_count


def _number(value) -> float | None:
    """A plain float, None for a missing value (NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)
