"""The stream's ``stream_metrics`` documents: one contract for the job that writes them
(``spark_jobs.streaming``), the health check that reads the heartbeat (``infra.streaming``)
and the pages that chart the batches (``dashboards``).

Two kinds of document, told apart by ``kind``:

``heartbeat`` (``_id = "heartbeat/<query name>"``, one per query name), refreshed every
``HEARTBEAT_INTERVAL_S`` while the query runs: query_name, query_id, run_id, is_active,
error, status, last_batch_id, end_offsets {partition: offset}, lag {partition: records},
total_lag, started_at_epoch, updated_at. When the job stops it sets is_active False,
status "stopped" and its error (the last lag stays as it was).

``batch`` (``_id = "<query id>/<batch id>"``, one per micro-batch, so a replayed batch
overwrites its own document): the fields of ``BatchMetrics`` plus query_id, query_name
and batch_time; the supervisor later adds end_offsets, lag and spark_duration_ms
(``batch_progress_fields``) once Spark has reported the batch's progress.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

QUERY_NAME = "streaming_recommendations"  # the platform's one recommendation query
HEARTBEAT_KIND = "heartbeat"
BATCH_KIND = "batch"
HEARTBEAT_INTERVAL_S = 2.0
STATUS_STOPPED = "stopped"

# Field names readers select or filter on.
KIND = "kind"
BATCH_TIME = "batch_time"
INPUT_ROWS = "input_rows"
LATENCY_SECONDS = "latency_seconds"  # {"p50", "p95", "max"} of the batch, seconds
LAG = "lag"
TOTAL_LAG = "total_lag"
UPDATED_AT = "updated_at"
LATENCY_KEYS = ("p50", "p95", "max")


def heartbeat_id(query_name: str = QUERY_NAME) -> str:
    """``_id`` of the heartbeat of ``query_name``."""
    return f"{HEARTBEAT_KIND}/{query_name}"


def batch_metrics_id(query_id: str, batch_id: int) -> str:
    """``_id`` of the metrics of micro-batch ``batch_id`` of query ``query_id``."""
    return f"{query_id}/{int(batch_id)}"


# --- heartbeat ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Heartbeat:
    """One heartbeat document, as the job writes it and the health check reads it."""

    query_name: str
    is_active: bool
    updated_at: datetime
    status: str | None = None
    error: str | None = None
    query_id: str | None = None
    run_id: str | None = None
    last_batch_id: int | None = None
    end_offsets: dict[str, int] = field(default_factory=dict)
    lag: dict[str, int] = field(default_factory=dict)
    total_lag: int | None = None
    started_at_epoch: float | None = None

    def document(self) -> dict[str, Any]:
        """The document to upsert under ``heartbeat_id(query_name)``."""
        return {"_id": heartbeat_id(self.query_name), KIND: HEARTBEAT_KIND, **asdict(self)}

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Heartbeat:
        """Read a stored heartbeat; fields it lacks take their defaults (``updated_at`` is required).

        A naive ``updated_at`` (a client without ``tz_aware``) is taken as UTC.
        """
        updated_at = document[UPDATED_AT]
        if updated_at.tzinfo is None:
            updated_at = updated_at.replace(tzinfo=timezone.utc)
        return cls(
            query_name=document.get("query_name") or str(document["_id"]).removeprefix(f"{HEARTBEAT_KIND}/"),
            is_active=bool(document.get("is_active", False)),
            updated_at=updated_at,
            status=document.get("status"),
            error=document.get("error"),
            query_id=document.get("query_id"),
            run_id=document.get("run_id"),
            last_batch_id=document.get("last_batch_id"),
            end_offsets=dict(document.get("end_offsets") or {}),
            lag=dict(document.get(LAG) or {}),
            total_lag=document.get(TOTAL_LAG),
            started_at_epoch=document.get("started_at_epoch"),
        )


def running_heartbeat(*, query_name: str, query_id: str, run_id: str, is_active: bool, status: str | None,
                      error: str | None, last_batch_id: int | None, end_offsets: dict[str, int],
                      lag: dict[str, int], started_at_epoch: float, now: datetime | None = None) -> Heartbeat:
    """The heartbeat of a running query; ``total_lag`` is the sum of ``lag`` (None without lag)."""
    return Heartbeat(
        query_name=query_name, is_active=is_active, updated_at=now or datetime.now(timezone.utc), status=status,
        error=error, query_id=query_id, run_id=run_id, last_batch_id=last_batch_id, end_offsets=dict(end_offsets),
        lag=dict(lag), total_lag=sum(lag.values()) if lag else None, started_at_epoch=started_at_epoch,
    )


def stopped_heartbeat_fields(*, query_name: str, error: str | None, now: datetime | None = None) -> dict[str, Any]:
    """The fields to ``$set`` in the heartbeat when the job stops (its last lag stays)."""
    return {KIND: HEARTBEAT_KIND, "query_name": query_name, "is_active": False, "error": error,
            "status": STATUS_STOPPED, UPDATED_AT: now or datetime.now(timezone.utc)}


# --- per-batch metrics ----------------------------------------------------------------------------
@dataclass
class BatchMetrics:
    """What one micro-batch did; the job fills it in while it processes the batch."""

    batch_id: int
    input_rows: int = 0  # Kafka records of the batch
    valid_events: int = 0  # records that are valid events of a known track
    new_events: int = 0  # of those, events this batch stored first (replays and re-sends excluded)
    dead_letters: int = 0
    users_updated: int = 0  # listeners whose recommendations were rewritten
    processing_seconds: float = 0.0  # the batch function, after reading the records
    collect_seconds: float | None = None  # reading the batch's records into the driver
    latency_seconds: dict = field(default_factory=dict)  # ``latency_summary`` of the batch's events
    step_seconds: dict = field(default_factory=dict)  # where the batch's time went, step by step
    offsets: dict = field(default_factory=dict)  # {partition: next offset} after the batch
    active_listeners: dict | None = None  # {window_start, window_end, users} of the newest window
    model_version: str | None = None  # the models that ranked the batch's listeners
    als_error: str | None = None  # why the ALS champion could not be used, if it could not

    def document(self, *, query_id: str, query_name: str, batch_time: datetime) -> dict[str, Any]:
        """The batch's document (to upsert under ``batch_metrics_id(query_id, batch_id)``)."""
        return {"_id": batch_metrics_id(query_id, self.batch_id), KIND: BATCH_KIND, "query_id": query_id,
                "query_name": query_name, BATCH_TIME: batch_time, **asdict(self)}


def batch_progress_fields(*, end_offsets: dict[str, int], lag: dict[str, int],
                          spark_duration_ms: dict[str, int]) -> dict[str, Any]:
    """Fields Spark's progress report adds to a batch document once the batch is committed."""
    return {"end_offsets": end_offsets, LAG: lag, "spark_duration_ms": spark_duration_ms}


def latency_summary(latencies_s) -> dict[str, float | None]:
    """``{"p50", "p95", "max"}`` of ``latencies_s`` (seconds, 4 decimals); None values when empty."""
    if len(latencies_s) == 0:
        return dict.fromkeys(LATENCY_KEYS)
    values = np.asarray(latencies_s, dtype=np.float64)
    return {"p50": round(float(np.percentile(values, 50)), 4), "p95": round(float(np.percentile(values, 95)), 4),
            "max": round(float(values.max()), 4)}
