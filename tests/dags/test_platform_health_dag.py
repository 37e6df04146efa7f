"""The platform_health DAG runs end to end against the real embedded services."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_platform_health_dag_succeeds(airflow_db, mongo_server, kafka_broker):
    from airflow.dag_processing.dagbag import DagBag

    from fma_platform.settings import PROJECT_ROOT

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "platform_health.py"))
    dag = bag.get_dag("platform_health")
    run = dag.test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"check_mongo": "success", "check_kafka": "success", "check_spark": "success"}


def test_connections_carry_the_settings_endpoints(settings):
    from plugins.platform_hooks import platform_settings

    resolved = platform_settings()
    assert resolved.mongo_url.startswith(f"mongodb://{settings.host}:{settings.mongo_port}/")
    assert resolved.mongo_db == settings.mongo_db
    assert resolved.kafka_bootstrap == settings.kafka_bootstrap
    assert resolved.spark_master == settings.spark_master  # spark_default, as spark-submit reads it
