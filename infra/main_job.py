"""The main job ``make up`` runs on the embedded stack, through the real Airflow scheduler.

Each stage is a DAG triggered over Airflow's REST API, so every run, task and log is
visible in the UI afterwards. Re-running is safe: the DAGs are idempotent.
"""

from __future__ import annotations

import sys
import time

from fma_platform.settings import get_settings
from infra.airflow_api import AirflowApi
from infra.process import StackError

# (dag_id, conf) in order; later stages join as the platform grows.
MAIN_JOB_DAGS: list[tuple[str, dict]] = [
    ("platform_health", {}),
    ("fma_etl", {"dataset": "sample"}),
]


def main() -> int:
    settings = get_settings()
    api = AirflowApi.from_settings(settings)
    for dag_id, conf in MAIN_JOB_DAGS:
        started = time.monotonic()
        print(f"main job: running DAG {dag_id} ...", flush=True)
        try:
            run_id = api.run_dag(dag_id, conf)
        except StackError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"main job: {dag_id} succeeded in {time.monotonic() - started:.0f}s (run {run_id})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
