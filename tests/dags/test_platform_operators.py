"""PlatformSparkSubmitOperator: Spark jobs get their endpoints from the Connections, as tasks do."""

from __future__ import annotations

import json
import re
from urllib.parse import quote_plus

import pytest

from plugins.operators import PlatformSparkSubmitOperator, spark_job_env

PASSWORD = "pa:ss/word"  # changes under URL encoding, as real passwords may


@pytest.fixture()
def connections(monkeypatch):
    """Connections whose endpoints differ from this process's FMA_* variables."""
    monkeypatch.setenv("AIRFLOW_CONN_MONGO_DEFAULT", json.dumps({
        "conn_type": "mongo", "host": "db.example", "port": 27017, "login": "fma", "password": PASSWORD,
        "schema": "from_connection", "extra": {"replicaSet": "rs0", "authSource": "admin"},
    }))
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps({
        "conn_type": "kafka", "extra": {"bootstrap.servers": "kafka.example:9092"},
    }))
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({
        "conn_type": "spark", "host": "local[1]", "extra": {"spark-binary": "spark-submit", "deploy-mode": "client"},
    }))


def test_the_job_environment_carries_the_connections_endpoints(connections, settings):
    operator = PlatformSparkSubmitOperator(task_id="check", job="check_spark",
                                           env_vars={"FMA_SAMPLE_SEED": 3, "EXTRA_FLAG": "1"})
    env = spark_job_env(operator.job_settings(), operator.env_vars)

    assert env["FMA_MONGO_URI"] == (f"mongodb://fma:{quote_plus(PASSWORD)}@db.example:27017/from_connection"
                                    "?replicaSet=rs0&authSource=admin")
    assert env["FMA_MONGO_DB"] == "from_connection"
    assert env["FMA_KAFKA_BOOTSTRAP_SERVERS"] == "kafka.example:9092"
    assert env["FMA_SPARK_MASTER"] == "local[1]"
    assert env["FMA_STATE_DIR"] == str(settings.state_dir)  # not an endpoint: this worker's setting
    assert env["FMA_SAMPLE_SEED"] == "3" and env["EXTRA_FLAG"] == "1"  # the DAG's own variables win
    assert operator.application.endswith("spark_jobs/check_spark.py") and operator.name == "fma-check-spark"


def test_the_mongo_password_is_masked_in_both_forms(connections):
    from airflow.sdk._shared.secrets_masker import redact

    operator = PlatformSparkSubmitOperator(task_id="check", job="check_spark")
    uri = operator.job_settings().mongo_uri
    shown = redact(f"connecting to {uri} as fma/{PASSWORD}")
    assert PASSWORD not in shown and quote_plus(PASSWORD) not in shown
    assert "db.example:27017/from_connection" in shown


def test_an_unknown_job_is_refused_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="no Spark job 'no_such_job'"):
        PlatformSparkSubmitOperator(task_id="x", job="no_such_job")


@pytest.mark.slow
def test_a_submitted_job_sees_the_connections_endpoints(connections, capfd):
    """A real spark-submit: the job's own settings report the Connections' database and broker."""
    operator = PlatformSparkSubmitOperator(task_id="check", job="check_spark", application_args=["--rows", "100"])
    operator.execute(context={})
    task_log = capfd.readouterr().out  # Airflow's task logger writes the hook's lines here
    reports = [json.loads(found) for found in re.findall(r'(\{"spark_version".*?\})', task_log)]
    assert len(reports) == 1, task_log[-3000:]
    assert reports[0]["mongo_db"] == "from_connection"
    assert reports[0]["kafka_bootstrap"] == "kafka.example:9092"
    assert reports[0]["master"] == "local[1]"
    assert "--conf spark.driver.memory=" in task_log
    assert "db.example" not in task_log  # the MongoDB URI (and its password) is never printed
    assert PASSWORD not in task_log and quote_plus(PASSWORD) not in task_log
