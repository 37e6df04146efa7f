"""A small client of Airflow 3's REST API: trigger a DAG run and wait for its outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests

from fma_platform.settings import Settings
from infra.process import StackError
from infra.services import airflow_secrets


class DagRunFailedError(StackError):
    """A DAG run ended in a state other than success (or never ended in time)."""


@dataclass
class AirflowApi:
    base_url: str
    username: str
    password: str
    timeout: float = 15.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AirflowApi:
        return cls(
            base_url=f"http://{settings.host}:{settings.airflow_port}",
            username=settings.airflow_admin_user,
            password=airflow_secrets(settings)["admin_password"],
        )

    def _headers(self) -> dict[str, str]:
        response = requests.post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=self.timeout,
        )
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method, f"{self.base_url}/api/v2{path}", headers=self._headers(), timeout=self.timeout, **kwargs
        )

    def wait_for_dag(self, dag_id: str, *, timeout: float = 180) -> None:
        """Wait until the DAG processor has parsed ``dag_id``, then unpause it."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.request("GET", f"/dags/{dag_id}")
            if response.status_code == 200:
                break
            if time.monotonic() > deadline:
                raise DagRunFailedError(f"DAG {dag_id} was not parsed within {timeout:.0f}s (see import errors in the UI)")
            time.sleep(2)
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        response = self.request("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def wait_for_run(self, dag_id: str, run_id: str, *, timeout: float = 3600, poll: float = 3) -> str:
        """Poll the run until it ends; return its state, raise unless it succeeded."""
        deadline = time.monotonic() + timeout
        state = "queued"
        while time.monotonic() < deadline:
            state = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
            if state in ("success", "failed"):
                break
            time.sleep(poll)
        if state != "success":
            failed = self.failed_tasks(dag_id, run_id)
            raise DagRunFailedError(
                f"DAG run {dag_id}/{run_id} ended {state}; failed tasks: {', '.join(failed) or 'none'}; "
                f"see {self.base_url}/dags/{dag_id}/runs/{run_id}"
            )
        return state

    def failed_tasks(self, dag_id: str, run_id: str) -> list[str]:
        response = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        if response.status_code != 200:
            return []
        return [ti["task_id"] for ti in response.json()["task_instances"] if ti["state"] in ("failed", "upstream_failed")]

    def wait_for_triggered_run(self, dag_id: str, *, queued_after: str, timeout: float = 3600) -> str:
        """Wait for a run of ``dag_id`` queued after ``queued_after`` (ISO time), e.g. one
        the scheduler created from an asset event; return its id once it succeeded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})
            runs.raise_for_status()
            later = sorted((r for r in runs.json()["dag_runs"] if (r.get("queued_at") or "") >= queued_after),
                           key=lambda r: r["queued_at"])
            if later:
                run_id = later[0]["dag_run_id"]
                self.wait_for_run(dag_id, run_id, timeout=max(deadline - time.monotonic(), 1))
                return run_id
            time.sleep(3)
        raise DagRunFailedError(f"no run of {dag_id} was scheduled after {queued_after} within {timeout:.0f}s")

    def run_dag(self, dag_id: str, conf: dict | None = None, *, timeout: float = 3600) -> str:
        """Trigger ``dag_id`` through the scheduler and wait for success; return the run id."""
        self.wait_for_dag(dag_id)
        run_id = self.trigger(dag_id, conf)
        self.wait_for_run(dag_id, run_id, timeout=timeout)
        return run_id
