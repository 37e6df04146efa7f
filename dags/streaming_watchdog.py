"""Keep the real-time loop alive: restart the streaming job when it died, fail (alert)
when it falls behind Kafka by more than the allowed lag.

Embedded stack: the job is a local process this task restarts. Compose
(``FMA_DEPLOYMENT=compose``): the job is an application of the standalone master; it is
resubmitted there with the streaming service's logins only when the master runs no copy
(``infra.streaming.resubmit_to_cluster``); a hung copy fails the task instead."""

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
        from plugins.platform_hooks import platform_settings, streaming_job_settings

        settings = platform_settings()
        report = keep_streaming_alive(settings, max_lag=int(params["max_lag"]),
                                      job_settings=streaming_job_settings(settings))
        return {key: str(value) for key, value in report.items()}

    check_streaming_job()


streaming_watchdog()
