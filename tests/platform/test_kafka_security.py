"""Kafka client security from the settings: one configuration for kafka-python and Spark, the
SASL password never in a repr, a dump, an error or a log, and a broker that demands
authentication refuses clients without it (Tansu, the embedded broker, with --authentication)."""

from __future__ import annotations

import logging
import subprocess
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from pydantic import ValidationError

from fma_platform.kafka import (
    SPARK_SECURITY_OPTIONS,
    KafkaConfigError,
    admin_client,
    kafka_client_config,
    kafka_client_config_from_spark_options,
    list_topics,
    spark_kafka_options,
)
from fma_platform.settings import Settings, setting_variables
from infra.process import free_port

# Characters a JAAS line or a URL would mangle unless quoted.
PASSWORD = 'pa"ss\\wo rd;=x'


def secured(**values) -> Settings:
    defaults = {"kafka_bootstrap_servers": "kafka-a:9092, kafka-b:9092", "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_username": "fma-player", "kafka_sasl_password": PASSWORD,
                "kafka_ssl_cafile": "/etc/fma/ca.pem"}
    return Settings(_env_file=None, **{**defaults, **values})


def test_plaintext_is_the_default_and_adds_nothing():
    config = kafka_client_config(Settings(_env_file=None, kafka_bootstrap_servers="k:1"))
    assert config == {"bootstrap_servers": ["k:1"], "security_protocol": "PLAINTEXT"}
    assert spark_kafka_options(Settings(_env_file=None, kafka_bootstrap_servers="k:1")) == {
        "kafka.bootstrap.servers": "k:1", "kafka.security.protocol": "PLAINTEXT"}


def test_sasl_ssl_gives_kafka_python_a_verified_tls_scram_login():
    assert kafka_client_config(secured()) == {
        "bootstrap_servers": ["kafka-a:9092", "kafka-b:9092"],
        "security_protocol": "SASL_SSL",
        "ssl_check_hostname": True,
        "ssl_cafile": "/etc/fma/ca.pem",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "fma-player",
        "sasl_plain_password": PASSWORD,
    }


@pytest.mark.parametrize("client", [KafkaProducer, KafkaConsumer, KafkaAdminClient])
def test_every_kafka_python_client_accepts_the_configuration(client):
    """A key a client does not know would stop it with "Unrecognized configs"."""
    assert set(kafka_client_config(secured())) <= set(client.DEFAULT_CONFIG)


def test_spark_gets_the_same_login_as_a_jaas_line_and_a_pem_truststore():
    options = spark_kafka_options(secured())
    assert options == {
        "kafka.bootstrap.servers": "kafka-a:9092, kafka-b:9092",
        "kafka.security.protocol": "SASL_SSL",
        "kafka.ssl.truststore.type": "PEM",
        "kafka.ssl.truststore.location": "/etc/fma/ca.pem",
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        "kafka.sasl.jaas.config": ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                                   'username="fma-player" password="pa\\"ss\\\\wo rd;=x";'),
    }
    assert set(options) - {"kafka.bootstrap.servers"} <= SPARK_SECURITY_OPTIONS


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_the_python_source_reads_back_exactly_the_client_configuration(protocol, mechanism):
    settings = secured(kafka_security_protocol=protocol, kafka_sasl_mechanism=mechanism)
    spark_options = {key.upper() if key.endswith("config") else key: value  # Spark keys are case-insensitive
                     for key, value in spark_kafka_options(settings).items()}
    assert kafka_client_config_from_spark_options(spark_options) == kafka_client_config(settings)


@pytest.mark.parametrize(("options", "message"), [
    ({"kafka.security.protocol": "SSL", "kafka.ssl.truststore.location": "/ks.jks"}, "only a PEM truststore"),
    ({"kafka.security.protocol": "SASL_SSL", "kafka.sasl.mechanism": "GSSAPI"}, "'GSSAPI' is not supported"),
    ({"kafka.security.protocol": "SASL_PLAINTEXT", "kafka.sasl.mechanism": "PLAIN",
      "kafka.sasl.jaas.config": 'org.example.Other required username="u" password="p";'}, "PLAIN or SCRAM login"),
    ({"kafka.security.protocol": "SASL_PLAINTEXT", "kafka.sasl.mechanism": "PLAIN",
      "kafka.sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required;"},
     "with a username and password"),
    ({"kafka.security.protocol": "KERBEROS"}, "'KERBEROS' is not supported"),
])
def test_security_options_the_python_source_cannot_honour_are_refused(options, message):
    with pytest.raises(KafkaConfigError, match=message):
        kafka_client_config_from_spark_options({"kafka.bootstrap.servers": "k:1", **options})


def test_sasl_without_credentials_is_refused_without_echoing_the_password():
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, kafka_security_protocol="SASL_SSL", kafka_sasl_password=PASSWORD)
    assert "FMA_KAFKA_SASL_USERNAME" in str(refused.value)
    assert PASSWORD not in str(refused.value) and "pa\"ss" not in str(refused.value)


def test_the_password_is_hidden_in_repr_and_dumps_but_passed_on_to_child_processes(monkeypatch):
    settings = secured()
    for shown in (repr(settings), str(settings), str(settings.model_dump()), settings.model_dump_json()):
        assert PASSWORD not in shown and "pa\\\"ss" not in shown
    env = settings.as_env()
    assert env["FMA_KAFKA_SASL_PASSWORD"] == PASSWORD
    for name in setting_variables():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings(_env_file=None) == settings


def test_the_admin_clients_debug_log_carries_no_password(caplog):
    """kafka-python logs an admin client's whole configuration at DEBUG level."""
    settings = secured(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", kafka_security_protocol="SASL_PLAINTEXT")
    with caplog.at_level(logging.DEBUG, logger="kafka"), pytest.raises(KafkaError):
        admin_client(settings, timeout_s=0.5)
    assert "Starting KafkaAdminClient" in caplog.text and "'sasl_plain_password': '***'" in caplog.text
    assert PASSWORD not in caplog.text


@pytest.fixture(scope="module")
def authenticating_broker():
    """Tansu with --authentication: every request before a SASL login is refused."""
    from infra.services import tansu_binary

    port = free_port()
    broker = subprocess.Popen([tansu_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
                               "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
                               "--storage-engine", "memory://tansu/", "--authentication"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    yield f"127.0.0.1:{port}"
    broker.terminate()
    broker.wait(timeout=15)


@pytest.mark.parametrize("credentials", [
    {},  # no login at all
    {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "intruder",
     "kafka_sasl_password": "guessed"},  # a SCRAM login of a user the broker does not know
])
def test_a_broker_that_demands_authentication_refuses_the_client(authenticating_broker, credentials):
    settings = Settings(_env_file=None, kafka_bootstrap_servers=authenticating_broker, **credentials)
    with pytest.raises(KafkaError):
        list_topics(settings, timeout_s=1.5)
