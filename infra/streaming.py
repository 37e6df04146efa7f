"""Lifecycle of the real-time recommendation job: how to run it, and whether it is alive.

``streaming_spec`` is the ``ServiceSpec`` that ``infra.process.start/stop`` run: the
spark-submit entry ``spark_jobs/streaming_recommendations.py``, named by its path only
(``spark-submit --master local[2]``). The job keeps a heartbeat in ``stream_metrics``
(``fma_platform.stream_status``: refreshed every couple of seconds while its query runs,
with the query's lag per partition). ``streaming_health`` reads it: the Airflow DAG calls
``keep_streaming_alive``, which restarts the job when it raises ``StreamingDeadError``.
Under compose (``settings.deployment == "compose"``) the job belongs to the standalone
master, not to this machine: the watchdog resubmits it there (``resubmit_to_cluster``), and
only when the master's status page shows no application of the job's name, so it never
starts a second copy. Nothing here imports Spark or the job's code.
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import datetime, timezone
from typing import Any

from pymongo.database import Database

from fma_platform.contracts import Collection
from fma_platform.settings import PROJECT_ROOT, Settings
from fma_platform.stream_status import QUERY_NAME, Heartbeat, heartbeat_id
from infra.process import ProcessRecord, ServiceSpec, StackError

JOB_PATH = PROJECT_ROOT / "spark_jobs" / "streaming_recommendations.py"
# The job's application name on a Spark master (spark_jobs/streaming/job.py APP_NAME).
APP_NAME = "streaming-recommendations"
DEFAULT_MAX_STALENESS_S = 30.0
# Under compose: a job the master started this recently may not have written its first
# heartbeat yet (JVM, Kafka source, models): starting, not hung.
DEFAULT_START_GRACE_S = 300.0
DEFAULT_MAX_LAG = 10_000


class StreamingHealthError(StackError):
    """The streaming job is not healthy; ``report`` holds what was seen."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


class StreamingDeadError(StreamingHealthError):
    """No live query: never started, stopped, failed, or its heartbeat is stale."""


class StreamingLagError(StreamingHealthError):
    """The query runs but is more than ``max_lag`` records behind the topic."""


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
    updated_at, started_at}`` (``started_at``: epoch seconds the job started). Raises
    ``StreamingDeadError`` when there is no heartbeat, it is older than ``max_staleness_s``,
    or it says the query is not active (with its error), and ``StreamingLagError`` when
    the total lag exceeds ``max_lag`` records.
    """
    document = db[Collection.STREAM_METRICS].find_one({"_id": heartbeat_id(query_name)})
    if document is None:
        raise StreamingDeadError(f"{query_name}: no heartbeat in {Collection.STREAM_METRICS}: the job never ran",
                                 {"status": "dead"})
    heartbeat = Heartbeat.from_document(document)
    age_s = ((now or datetime.now(timezone.utc)) - heartbeat.updated_at).total_seconds()
    report = {
        "status": "ok",
        "query_id": heartbeat.query_id,
        "run_id": heartbeat.run_id,
        "age_s": round(age_s, 3),
        "lag": heartbeat.lag,
        "total_lag": heartbeat.total_lag,
        "last_batch_id": heartbeat.last_batch_id,
        "updated_at": heartbeat.updated_at,
        "started_at": heartbeat.started_at_epoch,
    }
    if not heartbeat.is_active:
        report["status"] = "dead"
        raise StreamingDeadError(f"{query_name}: the query stopped ({heartbeat.error or 'no error recorded'})",
                                 report)
    if age_s > max_staleness_s:
        report["status"] = "dead"
        raise StreamingDeadError(
            f"{query_name}: last heartbeat {age_s:.1f} s ago (limit {max_staleness_s:g} s): the job is dead or hung",
            report,
        )
    if heartbeat.total_lag is not None and heartbeat.total_lag > max_lag:
        report["status"] = "lagging"
        raise StreamingLagError(f"{query_name}: {heartbeat.total_lag} records behind (limit {max_lag})", report)
    return report


def streaming_command(
    settings: Settings,
    *,
    trigger_seconds: float | None = None,
    max_offsets_per_trigger: int | None = None,
    master: str = "local[2]",
    extra_args: list[str] | None = None,
) -> list[str]:
    """``spark-submit`` command line of the job (the venv's spark-submit); options left None
    take the job's own defaults."""
    from infra.services import VENV_BIN

    command = [
        str(VENV_BIN / "spark-submit"), "--master", master,
        "--driver-memory", settings.spark_driver_memory,
        "--conf", "spark.ui.enabled=false",
        *(["--jars", settings.spark_jars] if settings.spark_jars else []),
        str(JOB_PATH),
    ]
    if trigger_seconds is not None:
        command += ["--trigger-seconds", str(trigger_seconds)]
    if max_offsets_per_trigger is not None:
        command += ["--max-offsets-per-trigger", str(max_offsets_per_trigger)]
    return command + list(extra_args or [])


def streaming_spec(
    settings: Settings,
    *,
    trigger_seconds: float | None = None,
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
                         max_staleness_s: float = DEFAULT_MAX_STALENESS_S,
                         job_settings: Settings | None = None,
                         start_grace_s: float = DEFAULT_START_GRACE_S) -> dict[str, Any]:
    """Check the job; restart it when it is dead; raise ``StreamingLagError`` when it lags.

    Returns the health report, with ``restarted: True`` when the job had to be restarted.
    ``job_settings`` are the restarted job's own (under compose: the streaming service's
    logins, not the caller's); default ``settings``.
    """
    from fma_platform.mongo import platform_db
    from infra import process

    db = platform_db(settings, timeout_ms=3000)
    try:
        return streaming_health(db, max_lag=max_lag, max_staleness_s=max_staleness_s) | {"restarted": False}
    except StreamingDeadError as dead:
        if settings.deployment == "compose":
            return resubmit_to_cluster(settings, job_settings or settings, dead,
                                       max_staleness_s=max_staleness_s, start_grace_s=start_grace_s)
        spec = streaming_spec(settings)
        process.stop(spec)  # a hung job still holds its pid record
        process.start(spec)
        report = streaming_health(db, max_lag=2**62, max_staleness_s=max_staleness_s)
        return report | {"restarted": True, "was": str(dead)}


def _started_within(app: dict[str, Any], seconds: float) -> bool:
    """Whether the master started ``app`` (its ``starttime``, epoch ms) less than ``seconds`` ago."""
    started = app.get("starttime")
    return isinstance(started, (int, float)) and time.time() - started / 1000 < seconds


def _await_first_heartbeat(db, starting: list[dict[str, Any]], *, grace_s: float,
                           max_staleness_s: float) -> dict[str, Any] | None:
    """Wait, until the oldest of ``starting`` is ``grace_s`` old, for a live heartbeat: the
    health report (``starting``: the application ids), or None when none came."""
    until = min(app["starttime"] for app in starting) / 1000 + grace_s
    while True:
        try:
            report = streaming_health(db, max_lag=2**62, max_staleness_s=max_staleness_s)
            return report | {"restarted": False, "starting": ", ".join(app["id"] for app in starting)}
        except StreamingDeadError:
            if time.time() >= until:
                return None
        time.sleep(2)


def resubmit_to_cluster(settings: Settings, job_settings: Settings, dead: StreamingDeadError, *,
                        max_staleness_s: float = DEFAULT_MAX_STALENESS_S,
                        start_timeout: float = 240.0,
                        start_grace_s: float = DEFAULT_START_GRACE_S) -> dict[str, Any]:
    """Under compose: submit the job to the standalone master again, unless it still runs there.

    The master's status page (``infra.spark_cluster``) is the one place that knows every
    running copy, wherever its driver lives. An application of the job's name that is still
    RUNNING or WAITING while the heartbeat is dead is hung: the watchdog cannot kill it (the
    master's UI kills nothing) and never starts a second one beside it, so it raises
    ``StreamingDeadError`` naming the application (an alert for a person) -- unless every such
    application started less than ``start_grace_s`` ago: a starting job (compose just came
    up) is given until then to write a live heartbeat, and is only hung if it does not. Otherwise it
    starts ``spark-submit`` in client mode as a detached process (its driver outlives the
    task) and waits for the new run's heartbeat. Raises ``StreamingDeadError`` when the new
    job exits or shows no live heartbeat within ``start_timeout``.
    """
    from fma_platform.mongo import platform_db
    from infra.spark_cluster import active_apps, master_status, master_ui_url

    webui = settings.spark_master_webui_url or master_ui_url(job_settings.spark_master)
    db = platform_db(settings, timeout_ms=3000)
    running = active_apps(master_status(webui), APP_NAME)
    if running and start_grace_s > 0 and all(_started_within(app, start_grace_s) for app in running):
        report = _await_first_heartbeat(db, running, grace_s=start_grace_s,
                                        max_staleness_s=max_staleness_s)
        if report is not None:
            return report
    if running:
        ids = ", ".join(app["id"] for app in running)
        raise StreamingDeadError(f"{dead} and the master still runs {APP_NAME} ({ids}): the job is hung; "
                                 "not starting a second copy (stop that application, the watchdog then "
                                 "resubmits it)", dead.report | {"running_apps": ids})
    log_path = job_settings.logs_dir / f"{APP_NAME}-resubmitted.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = streaming_command(job_settings, master=job_settings.spark_master)
    submitted_at = time.time()
    with log_path.open("ab") as log:
        log.write(f"\n--- resubmitted at {time.ctime()}: {' '.join(command)}\n".encode())
        popen = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 cwd=PROJECT_ROOT, env={**os.environ, **job_settings.as_env()},
                                 start_new_session=True)
    deadline = time.monotonic() + start_timeout
    reason = str(dead)
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise StreamingDeadError(f"the resubmitted {APP_NAME} exited with status {popen.returncode}; "
                                     f"log: {log_path}", dead.report)
        try:
            report = streaming_health(db, max_lag=2**62, max_staleness_s=max_staleness_s)
            if report["started_at"] is not None and report["started_at"] >= submitted_at:
                return report | {"restarted": True, "was": str(dead), "pid": popen.pid, "log": str(log_path)}
            reason = "the heartbeat is from the dead run"
        except StreamingDeadError as still:
            reason = str(still)
        time.sleep(2)
    raise StreamingDeadError(f"the resubmitted {APP_NAME} (pid {popen.pid}) shows no live heartbeat after "
                             f"{start_timeout:.0f} s ({reason}); log: {log_path}", dead.report)
