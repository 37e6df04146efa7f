"""Check that every service of the platform answers: MongoDB, Kafka, Spark (a real job,
given its endpoints the way every Spark job of the DAGs is)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from plugins.operators import PlatformSparkSubmitOperator


@dag(
    dag_id="platform_health",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["platform", "ops"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=20)},
    doc_md=__doc__,
)
def platform_health():
    @task
    def check_mongo() -> dict:
        from fma_platform.health import mongo_health
        from plugins.platform_hooks import platform_settings

        return mongo_health(platform_settings())

    @task
    def check_kafka() -> dict:
        from fma_platform.health import kafka_health
        from plugins.platform_hooks import platform_settings

        return kafka_health(platform_settings())

    check_spark = PlatformSparkSubmitOperator(
        task_id="check_spark",
        job="check_spark",
        application_args=["--rows", "10000"],
    )

    [check_mongo(), check_kafka()] >> check_spark


platform_health()
