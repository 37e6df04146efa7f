"""The main job ``make up`` runs on the embedded stack, through the real Airflow scheduler.

Each stage is a DAG triggered over Airflow's REST API, so every run, task and log is
visible in the UI afterwards. Re-running is safe: the DAGs are idempotent.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone

import requests

from fma_platform.settings import get_settings
from infra.airflow_api import AirflowApi
from infra.process import StackError


def main() -> int:
    settings = get_settings()
    api = AirflowApi.from_settings(settings)
    try:
        run_stage(api, "platform_health", {})
        # fma_training is scheduled on the asset fma_etl publishes: unpause it first, then
        # wait for the run the scheduler creates when the ETL's load task succeeds.
        api.wait_for_dag("fma_training")
        etl_started = datetime.now(timezone.utc).isoformat()
        run_stage(api, "fma_etl", {"dataset": "sample"})
        started = time.monotonic()
        print("main job: waiting for fma_training (scheduled on the fma_track_features asset) ...", flush=True)
        run_id = api.wait_for_triggered_run("fma_training", queued_after=etl_started, timeout=5400)
        print(f"main job: fma_training succeeded in {time.monotonic() - started:.0f}s (run {run_id})", flush=True)
        stream_live_listeners(settings)
    except (StackError, requests.RequestException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def stream_live_listeners(settings, *, listeners: int = 20, events: int = 400, rate: int = 50) -> None:
    """Play simulated listeners through Kafka so the streaming job updates their
    recommendations live (watch ``realtime_recommendations`` or the player)."""
    from fma_platform.contracts import Collection
    from fma_platform.mongo import platform_db
    from simulator import SimulationOptions, SimulatorError, Sink, run_simulation

    print(f"main job: streaming {events} simulated events at {rate}/s through Kafka ...", flush=True)
    options = SimulationOptions(listeners=listeners, events=events, seed=2026, sink=Sink.KAFKA, rate_per_s=rate,
                                start=datetime(2026, 11, 1, 18, tzinfo=timezone.utc))
    try:
        run_simulation(settings, options)
    except SimulatorError as exc:
        raise StackError(f"sending simulated events through Kafka failed: {exc}") from exc
    realtime = platform_db(settings)[Collection.REALTIME_RECOMMENDATIONS]
    deadline = time.monotonic() + 60
    while realtime.count_documents({}) == 0 and time.monotonic() < deadline:
        time.sleep(1)
    count = realtime.count_documents({})
    if count == 0:
        raise StackError("the streaming job wrote no realtime recommendations within 60 s; see its log")
    print(f"main job: {count} listeners have live recommendations", flush=True)


def run_stage(api: AirflowApi, dag_id: str, conf: dict) -> str:
    started = time.monotonic()
    print(f"main job: running DAG {dag_id} ...", flush=True)
    run_id = api.run_dag(dag_id, conf)
    print(f"main job: {dag_id} succeeded in {time.monotonic() - started:.0f}s (run {run_id})", flush=True)
    return run_id


if __name__ == "__main__":
    sys.exit(main())
