"""The compose file's scale-out wiring (#13 item 2), rendered by the pinned Compose binary.

tests/production runs these services as processes; this checks the statements themselves
in a few seconds: Celery on Redis and PostgreSQL, worker replicas, one streaming job
guarded on the master, the Kafka connector from the image (never from Maven at start).
"""

from __future__ import annotations

import json

import pytest

from tests.infra.test_compose_security import environment, render, unique_values


@pytest.fixture(scope="module")
def services(tmp_path_factory) -> dict:
    rendered = render(tmp_path_factory.mktemp("compose"), unique_values())
    assert rendered.returncode == 0, rendered.stderr
    return json.loads(rendered.stdout)["services"]


def test_airflow_runs_celery_on_redis_with_postgres_results(services):
    values = unique_values()
    for name in ("airflow-scheduler", "airflow-worker", "airflow-api-server", "airflow-triggerer"):
        env = environment(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{values['REDIS_PASSWORD']}@redis:6379/0"
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://airflow:")
        # Prefork children are daemonic: a task starting processes failed there (tests/production).
        assert env["AIRFLOW__CELERY__POOL"] == "solo", name
    assert services["redis"]["command"][:2] == ["redis-server", "--bind"]
    assert values["REDIS_PASSWORD"] in services["redis"]["command"]


def test_workers_scale_by_replicas(services, tmp_path):
    assert services["airflow-worker"]["deploy"]["replicas"] == 2
    assert services["spark-worker"]["deploy"]["replicas"] == 2
    assert services["airflow-worker"]["command"] == ["airflow", "celery", "worker"]
    more = json.loads(render(tmp_path, {**unique_values(), "AIRFLOW_WORKERS": "5", "SPARK_WORKERS": "3"}).stdout)
    assert more["services"]["airflow-worker"]["deploy"]["replicas"] == 5
    assert more["services"]["spark-worker"]["deploy"]["replicas"] == 3
    # fma_etl extracts one chunk per worker replica at once (the DAG processor reads it at parse time)
    assert environment(services["airflow-dag-processor"])["FMA_EXTRACT_PARALLEL_CHUNKS"] == "2"
    assert environment(more["services"]["airflow-dag-processor"])["FMA_EXTRACT_PARALLEL_CHUNKS"] == "5"


def test_only_the_celery_workers_hold_the_streaming_logins(services):
    values = unique_values()
    holders = {name for name, service in services.items()
               if values["MONGO_STREAMING_PASSWORD"] in json.dumps(service.get("environment"))}
    assert holders == {"streaming", "airflow-worker", "mongo-init"}
    assert "AIRFLOW_CONN_KAFKA_STREAMING" not in environment(services["airflow-scheduler"])


def test_one_streaming_job_with_the_image_s_connector(services):
    command = services["streaming"]["command"]
    assert "--packages" not in command
    guard, submit = command[:command.index("--")], command[command.index("--") + 1:]
    assert guard[:4] == ["python", "-m", "infra.spark_cluster", "exec-unless-running"]
    assert guard[guard.index("--app-name") + 1] == "streaming-recommendations"
    assert submit[submit.index("--jars") + 1] == "/opt/spark-connectors/*.jar"
    assert submit[submit.index("--master") + 1] == "spark://spark-master:7077"
    worker = environment(services["airflow-worker"])
    assert worker["FMA_DEPLOYMENT"] == "compose"
    assert worker["FMA_SPARK_JARS"] == "/opt/spark-connectors/*.jar"  # the watchdog's resubmission
    assert worker["FMA_SPARK_MASTER_WEBUI_URL"] == guard[guard.index("--master-webui") + 1]


def test_every_platform_process_shares_the_data_mount(services):
    for name in ("airflow-worker", "airflow-scheduler", "spark-worker", "streaming", "player"):
        targets = {volume["target"] for volume in services[name]["volumes"]}
        assert "/data" in targets, name
