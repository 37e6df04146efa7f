"""Start, stop and inspect the embedded stack: ``python -m infra.stack up|down|status``.

``topics`` only creates the Kafka topics (used by the compose stack too).

``up`` is idempotent: services already running (by their recorded pids) are checked and
reused. Every start waits on a real health check and, on failure, names the service and
its log. ``down`` stops exactly the processes this project recorded.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from audio_features.server import stop_server
from fma_platform.settings import Settings, get_settings
from infra import process
from infra.process import ServiceSpec, StackError
from infra.services import (
    airflow_secrets,
    airflow_specs,
    check_java,
    create_topics,
    data_docs_spec,
    kafka_spec,
    migrate_airflow_db,
    mongo_spec,
    streamlit_spec,
)

SERVICE_GROUPS = ("mongo", "kafka", "streaming", "airflow", "streamlit", "data_docs")


@dataclass(frozen=True)
class Step:
    """One service of the stack with what must happen before and after it starts."""

    group: str
    spec: ServiceSpec
    before: Callable[[], None] | None = None
    after: Callable[[], object] | None = None
    after_fresh_start: Callable[[], object] | None = None


def stack_steps(settings: Settings, groups: Iterable[str] = SERVICE_GROUPS) -> list[Step]:
    """The services of ``groups`` in start order."""
    groups = list(groups)
    unknown = set(groups) - set(SERVICE_GROUPS)
    if unknown:
        raise StackError(f"unknown service(s) {sorted(unknown)}; known: {', '.join(SERVICE_GROUPS)}")
    steps: list[Step] = []
    if "mongo" in groups:
        steps.append(Step("mongo", mongo_spec(settings)))
    if "kafka" in groups:
        steps.append(Step("kafka", kafka_spec(settings), after=lambda: create_topics(settings),
                          after_fresh_start=lambda: reset_streaming_checkpoint(settings)))
    if "streaming" in groups:
        from infra.streaming import streaming_spec

        steps.append(Step("streaming", streaming_spec(settings)))
    if "airflow" in groups:
        for index, spec in enumerate(airflow_specs(settings)):
            before = (lambda: migrate_airflow_db(settings)) if index == 0 else None
            steps.append(Step("airflow", spec, before=before))
    if "streamlit" in groups:
        steps.append(Step("streamlit", streamlit_spec(settings)))
    if "data_docs" in groups:
        steps.append(Step("data_docs", data_docs_spec(settings)))
    return steps


def up(settings: Settings, groups: Iterable[str] = SERVICE_GROUPS, *, out=sys.stdout) -> None:
    """Start (or reuse) every service of ``groups``; raise ``StackError`` naming a failure."""
    print(f"java for Spark: {check_java()}", file=out)
    for step in stack_steps(settings, groups):
        if step.before and process.running_record(step.spec) is None:
            step.before()
        record, started = process.start(step.spec)
        if step.after:
            step.after()
        if started and step.after_fresh_start:
            step.after_fresh_start()
        verb = "started" if started else "already running"
        print(f"{step.spec.name:<24} {verb} (pid {record.pid})", file=out, flush=True)


def reset_streaming_checkpoint(settings: Settings) -> bool:
    """Forget the streaming job's Kafka offsets after a fresh start of the embedded broker.

    Tansu keeps nothing across restarts, so offsets checkpointed against the previous
    broker point past the new, empty topic. Processed events are already in MongoDB.
    """
    checkpoint = settings.streaming_checkpoint_dir
    if not checkpoint.exists():
        return False
    shutil.rmtree(checkpoint)
    print(f"kafka: a fresh (empty) embedded broker: streaming checkpoint {checkpoint} reset", flush=True)
    return True


def down(settings: Settings, groups: Iterable[str] = SERVICE_GROUPS, *, out=sys.stdout) -> None:
    """Stop, in reverse start order, the processes this project started."""
    groups = tuple(groups)
    for step in reversed(stack_steps(settings, groups)):
        stopped = process.stop(step.spec)
        print(f"{step.spec.name:<24} {'stopped' if stopped else 'not running'}", file=out, flush=True)
    if "airflow" in groups:  # the ETL's chunk tasks start the warm extraction server
        stopped = stop_server(settings.cache_dir)
        print(f"{'extraction server':<24} {'stopped' if stopped else 'not running'}", file=out, flush=True)


def status_rows(settings: Settings, groups: Iterable[str] = SERVICE_GROUPS) -> list[dict[str, str]]:
    """One row per service: name, state, pid, endpoint and health."""
    rows = []
    for step in stack_steps(settings, groups):
        record = process.running_record(step.spec)
        healthy, reason = process.is_healthy(step.spec) if record else (False, "not running")
        rows.append({
            "service": step.spec.name,
            "state": "running" if record else "stopped",
            "pid": str(record.pid) if record else "-",
            "endpoint": step.spec.url or "-",
            "health": "healthy" if healthy else reason,
        })
    try:
        spark_health = f"java {check_java()}"
    except StackError as exc:
        spark_health = str(exc)
    rows.append({
        "service": "spark", "state": "on demand", "pid": "-",
        "endpoint": settings.spark_master, "health": spark_health,
    })
    return rows


def print_status(settings: Settings, *, out=sys.stdout) -> None:
    rows = status_rows(settings)
    widths = {key: max(len(key), *(len(row[key]) for row in rows)) for key in rows[0]}
    print("  ".join(key.ljust(width) for key, width in widths.items()), file=out)
    for row in rows:
        print("  ".join(row[key].ljust(width) for key, width in widths.items()), file=out)


def print_access(settings: Settings, *, out=sys.stdout) -> None:
    """URLs and logins a newcomer needs."""
    secret = airflow_secrets(settings)
    print(
        "\nThe embedded stack is up:\n"
        f"  Airflow UI     http://{settings.host}:{settings.airflow_port}"
        f"   login {settings.airflow_admin_user} / {secret['admin_password']}\n"
        f"  Music player   http://{settings.host}:{settings.streamlit_port}\n"
        f"  Data Docs      {settings.data_docs_url}  (the quality gate's reports)\n"
        f"  MongoDB        {settings.mongo_url_redacted}  (database {settings.mongo_db})\n"
        f"  Kafka          {settings.kafka_bootstrap}  (topic {settings.kafka_events_topic})\n"
        f"  Spark          {settings.spark_master} via spark-submit\n"
        f"  State and logs {settings.state_dir}",
        file=out,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.stack", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "access", "topics"])
    parser.add_argument(
        "--only", default=",".join(SERVICE_GROUPS),
        help=f"comma-separated subset of {','.join(SERVICE_GROUPS)}",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    groups = [group.strip() for group in args.only.split(",") if group.strip()]
    try:
        if args.command == "up":
            up(settings, groups)
            print_access(settings)
        elif args.command == "down":
            down(settings, groups)
        elif args.command == "status":
            print_status(settings)
        elif args.command == "topics":
            created = create_topics(settings)
            print(f"topics created: {', '.join(created) or 'none (all exist)'}")
        else:
            print_access(settings)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
