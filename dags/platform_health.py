"""Check that every service of the platform answers: MongoDB, Kafka, Spark."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import dag, task

from fma_platform.settings import PROJECT_ROOT
from plugins.platform_hooks import SPARK_CONN_ID


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

    check_spark = SparkSubmitOperator(
        task_id="check_spark",
        conn_id=SPARK_CONN_ID,
        application=str(PROJECT_ROOT / "spark_jobs" / "check_spark.py"),
        application_args=["--rows", "10000"],
        name="check-spark",
    )

    [check_mongo(), check_kafka()] >> check_spark


platform_health()
