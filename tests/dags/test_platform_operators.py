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


# --- platform_settings: TLS and SASL options survive the Connections (#13 item 3, #14) -------
def _connect(monkeypatch, *, mongo_extra: dict, kafka_extra: dict | None = None) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MONGO_DEFAULT", json.dumps({
        "conn_type": "mongo", "host": "mongo", "port": 27017, "login": "fma-airflow", "password": PASSWORD,
        "schema": "fma", "extra": mongo_extra}))
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps({
        "conn_type": "kafka", "extra": {"bootstrap.servers": "kafka:9092", **(kafka_extra or {})}}))
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[1]"}))


@pytest.fixture()
def ca_file(tmp_path):
    path = tmp_path / "certs with space" / "ca.pem"  # pymongo opens it to validate the URI
    path.parent.mkdir()
    path.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    return path


def test_a_tls_connection_keeps_tls_and_its_ca_file_in_the_uri(monkeypatch, ca_file):
    from pymongo.uri_parser import parse_uri

    from plugins.platform_hooks import platform_settings

    _connect(monkeypatch, mongo_extra={"replicaSet": "rs0", "authSource": "fma", "tls": True,
                                       "tlsCAFile": str(ca_file), "retryWrites": False})
    uri = platform_settings().mongo_uri
    options = parse_uri(uri)["options"]
    assert options["tls"] is True and options["tlsCAFile"] == str(ca_file)
    assert options["retryWrites"] is False and options["replicaSet"] == "rs0" and options["authSource"] == "fma"
    assert uri.startswith(f"mongodb://fma-airflow:{quote_plus(PASSWORD)}@mongo:27017/fma?")


@pytest.mark.parametrize("flag", ["ssl", "tls"])
def test_allow_insecure_becomes_what_mongohook_itself_would_do(monkeypatch, flag):
    from pymongo.uri_parser import parse_uri

    from plugins.platform_hooks import platform_settings

    _connect(monkeypatch, mongo_extra={flag: True, "allow_insecure": True})
    options = parse_uri(platform_settings().mongo_uri)["options"]
    assert options["tlsAllowInvalidCertificates"] is True and "allow_insecure" not in options


def test_the_embedded_stacks_connection_round_trips_a_tls_uri(monkeypatch, settings, ca_file):
    """infra.services writes the Connection from a URI; the tasks must get that URI's options back."""
    from pymongo.uri_parser import parse_uri

    from infra.services import airflow_connections
    from plugins.platform_hooks import platform_settings

    original = (f"mongodb://fma-airflow:{quote_plus(PASSWORD)}@db.example:27017/?tls=true"
                f"&tlsCAFile={quote_plus(str(ca_file))}&authSource=fma&w=majority")
    embedded = settings.model_copy(update={"mongo_uri": original})
    for name, value in airflow_connections(embedded).items():
        monkeypatch.setenv(name, value)
    rebuilt = platform_settings().mongo_uri
    assert dict(parse_uri(rebuilt)["options"]) == dict(parse_uri(original)["options"])
    assert parse_uri(rebuilt)["password"] == PASSWORD


def test_kafka_security_comes_from_the_connection_and_its_password_is_masked(monkeypatch, ca_file):
    from airflow.sdk._shared.secrets_masker import redact

    from fma_platform.kafka import kafka_client_config
    from plugins.platform_hooks import platform_settings

    kafka_password = "kafka-s3cret-value"
    _connect(monkeypatch, mongo_extra={}, kafka_extra={
        "security.protocol": "sasl_ssl", "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": "fma-airflow",
        "sasl.password": kafka_password, "ssl.ca.location": str(ca_file)})
    settings = platform_settings()
    assert kafka_client_config(settings) == {
        "bootstrap_servers": ["kafka:9092"], "security_protocol": "SASL_SSL", "ssl_check_hostname": True,
        "ssl_cafile": str(ca_file), "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "fma-airflow",
        "sasl_plain_password": kafka_password}
    assert kafka_password not in redact(f"FMA_KAFKA_SASL_PASSWORD={kafka_password}")
    assert spark_job_env(settings)["FMA_KAFKA_SASL_PASSWORD"] == kafka_password  # the job logs in too


def test_a_kafka_connection_without_security_keeps_the_workers_settings(monkeypatch):
    from plugins.platform_hooks import platform_settings

    monkeypatch.setenv("FMA_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("FMA_KAFKA_SASL_USERNAME", "worker-user")
    monkeypatch.setenv("FMA_KAFKA_SASL_PASSWORD", "worker-pw")
    from fma_platform.settings import get_settings

    get_settings.cache_clear()
    try:
        _connect(monkeypatch, mongo_extra={})
        settings = platform_settings()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert settings.kafka_security_protocol == "SASL_PLAINTEXT" and settings.kafka_sasl_username == "worker-user"
    assert settings.kafka_sasl_password.get_secret_value() == "worker-pw"
    assert settings.kafka_bootstrap == "kafka:9092"


def test_a_sasl_connection_without_a_login_is_refused(monkeypatch):
    from pydantic import ValidationError

    from plugins.platform_hooks import platform_settings

    _connect(monkeypatch, mongo_extra={}, kafka_extra={"security.protocol": "SASL_SSL"})
    with pytest.raises(ValidationError, match="FMA_KAFKA_SASL_USERNAME"):
        platform_settings()
