"""Lifecycle of the real-time recommendation job: how to run it, and whether it is alive.

``streaming_spec`` is the ``ServiceSpec`` that ``infra.process.start/stop`` run (the job
under ``spark-submit --master local[2]``). The job keeps a heartbeat document in
``stream_metrics`` (``_id = heartbeat/<query name>``, ``kind = "heartbeat"``), refreshed
every couple of seconds while its query runs, with the query's lag per partition.
``streaming_health`` reads it: the Airflow DAG calls it and restarts the job when it
raises ``StreamingDeadError``. Nothing here imports Spark.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pymongo.database import Database

from fma_platform.contracts import Collection
from fma_platform.settings import PROJECT_ROOT, Settings
from infra.process import ProcessRecord, ServiceSpec, StackError

QUERY_NAME = "streaming_recommendations"
JOB_PATH = PROJECT_ROOT / "spark_jobs" / "streaming_recommendations.py"
HEARTBEAT_KIND = "heartbeat"
BATCH_KIND = "batch"
HEARTBEAT_INTERVAL_S = 2.0
DEFAULT_MAX_STALENESS_S = 30.0
DEFAULT_MAX_LAG = 10_000
# Micro-batch interval. Below the batch's own duration, batches run back to back while
# events flow (no wait for a trigger); when idle the job looks for new offsets this often.
DEFAULT_TRIGGER_S = 0.1


class StreamingHealthError(StackError):
    """The streaming job is not healthy; ``report`` holds what was seen."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


class StreamingDeadError(StreamingHealthError):
    """No live query: never started, stopped, failed, or its heartbeat is stale."""


class StreamingLagError(StreamingHealthError):
    """The query runs but is more than ``max_lag`` records behind the topic."""


def heartbeat_id(query_name: str = QUERY_NAME) -> str:
    return f"{HEARTBEAT_KIND}/{query_name}"


def streaming_health(
    db: Database,
    *,
    max_lag: int = DEFAULT_MAX_LAG,
    max_staleness_s: float = DEFAULT_MAX_STALENESS_S,
    query_name: str = QUERY_NAME,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The job's state from its heartbeat; raise when it is dead or lagging.

    Returns ``{status: "ok", query_id, run_id, age_s, lag, total_lag, last_batch_id,
    updated_at}``. Raises ``StreamingDeadError`` when there is no heartbeat, it is older
    than ``max_staleness_s``, or it says the query is not active (with its error), and
    ``StreamingLagError`` when the total lag exceeds ``max_lag`` records.
    """
    heartbeat = db[Collection.STREAM_METRICS].find_one({"_id": heartbeat_id(query_name)})
    if heartbeat is None:
        raise StreamingDeadError(f"{query_name}: no heartbeat in {Collection.STREAM_METRICS}: the job never ran",
                                 {"status": "dead"})
    now = now or datetime.now(timezone.utc)
    updated_at = heartbeat["updated_at"]
    if updated_at.tzinfo is None:
        updated_at = updated_at.replace(tzinfo=timezone.utc)
    age_s = (now - updated_at).total_seconds()
    report = {
        "status": "ok",
        "query_id": heartbeat.get("query_id"),
        "run_id": heartbeat.get("run_id"),
        "age_s": round(age_s, 3),
        "lag": heartbeat.get("lag", {}),
        "total_lag": heartbeat.get("total_lag"),
        "last_batch_id": heartbeat.get("last_batch_id"),
        "updated_at": updated_at,
        "started_at": heartbeat.get("started_at_epoch"),
    }
    if not heartbeat.get("is_active", False):
        report["status"] = "dead"
        raise StreamingDeadError(f"{query_name}: the query stopped ({heartbeat.get('error') or 'no error recorded'})",
                                 report)
    if age_s > max_staleness_s:
        report["status"] = "dead"
        raise StreamingDeadError(
            f"{query_name}: last heartbeat {age_s:.1f} s ago (limit {max_staleness_s:g} s): the job is dead or hung",
            report,
        )
    total_lag = heartbeat.get("total_lag")
    if total_lag is not None and total_lag > max_lag:
        report["status"] = "lagging"
        raise StreamingLagError(f"{query_name}: {total_lag} records behind (limit {max_lag})", report)
    return report


def streaming_command(
    settings: Settings,
    *,
    trigger_seconds: float = DEFAULT_TRIGGER_S,
    max_offsets_per_trigger: int | None = None,
    master: str = "local[2]",
    extra_args: list[str] | None = None,
) -> list[str]:
    """``spark-submit`` command line of the job (the venv's spark-submit)."""
    from infra.services import VENV_BIN

    command = [
        str(VENV_BIN / "spark-submit"), "--master", master,
        "--driver-memory", settings.spark_driver_memory,
        "--conf", "spark.ui.enabled=false",
        str(JOB_PATH),
        "--trigger-seconds", str(trigger_seconds),
    ]
    if max_offsets_per_trigger is not None:
        command += ["--max-offsets-per-trigger", str(max_offsets_per_trigger)]
    return command + list(extra_args or [])


def streaming_spec(
    settings: Settings,
    *,
    trigger_seconds: float = DEFAULT_TRIGGER_S,
    max_offsets_per_trigger: int | None = None,
    max_staleness_s: float = DEFAULT_MAX_STALENESS_S,
    extra_args: list[str] | None = None,
    start_timeout: float = 180.0,
    name: str = "streaming-recommendations",
) -> ServiceSpec:
    """The job as a service of the embedded stack: healthy once its heartbeat is fresh and active.

    Lag does not count against start-up health (a job catching up is starting, not dead).
    """
    from fma_platform.mongo import platform_db
    from infra.services import spark_env

    run_dir = settings.run_dir

    def health() -> None:
        report = streaming_health(platform_db(settings, timeout_ms=2000), max_lag=2**62,
                                  max_staleness_s=max_staleness_s)
        record = ProcessRecord.read(run_dir / f"{name}.json")
        if record is not None and report["started_at"] is not None and report["started_at"] < record.started_at:
            raise StreamingDeadError(f"{QUERY_NAME}: the heartbeat is from an earlier run of the job", report)

    return ServiceSpec(
        name=name,
        command=streaming_command(settings, trigger_seconds=trigger_seconds,
                                  max_offsets_per_trigger=max_offsets_per_trigger, extra_args=extra_args),
        log_path=settings.logs_dir / f"{name}.log",
        run_dir=settings.run_dir,
        health=health,
        env={**settings.as_env(), **spark_env(settings)},
        cwd=PROJECT_ROOT,
        start_timeout=start_timeout,
    )


def keep_streaming_alive(settings: Settings, *, max_lag: int = DEFAULT_MAX_LAG,
                         max_staleness_s: float = DEFAULT_MAX_STALENESS_S) -> dict[str, Any]:
    """Check the job; restart it when it is dead; raise ``StreamingLagError`` when it lags.

    Returns the health report, with ``restarted: True`` when the job had to be restarted.
    """
    from fma_platform.mongo import platform_db
    from infra import process

    db = platform_db(settings, timeout_ms=3000)
    try:
        return streaming_health(db, max_lag=max_lag, max_staleness_s=max_staleness_s) | {"restarted": False}
    except StreamingDeadError as dead:
        spec = streaming_spec(settings)
        process.stop(spec)  # a hung job still holds its pid record
        process.start(spec)
        report = streaming_health(db, max_lag=2**62, max_staleness_s=max_staleness_s)
        return report | {"restarted": True, "was": str(dead)}
