"""Keep the real-time loop alive: restart the streaming job when it died, fail (alert)
when it falls behind Kafka by more than the allowed lag."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task


@dag(
    dag_id="streaming_watchdog",
    schedule=timedelta(minutes=5),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={"max_lag": Param(10_000, type="integer", minimum=0, description="records behind before alerting")},
    tags=["streaming", "ops"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    doc_md=__doc__,
)
def streaming_watchdog():
    @task
    def check_streaming_job(params: dict | None = None) -> dict:
        from infra.streaming import keep_streaming_alive
        from plugins.platform_hooks import platform_settings

        report = keep_streaming_alive(platform_settings(), max_lag=int(params["max_lag"]))
        return {key: str(value) for key, value in report.items()}

    check_streaming_job()


streaming_watchdog()
