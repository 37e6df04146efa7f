"""The Python Kafka source logs in as the settings say, and never shows the password."""

from __future__ import annotations

import pytest

from fma_platform.kafka import kafka_client_config, spark_kafka_options
from fma_platform.settings import Settings
from spark_jobs.streaming.kafka_source import KafkaSourceError, KafkaSourceOptions

PASSWORD = 'stream "pw" \\ 1'


def test_the_python_source_gets_the_settings_login_and_hides_it():
    settings = Settings(_env_file=None, kafka_bootstrap_servers="k1:9092,k2:9092", kafka_security_protocol="SASL_SSL",
                        kafka_sasl_username="fma-streaming", kafka_sasl_password=PASSWORD, kafka_ssl_cafile="/ca.pem")
    options = KafkaSourceOptions.from_options({**spark_kafka_options(settings), "subscribe": "events"})
    assert options.client_config() == kafka_client_config(settings)
    assert PASSWORD not in repr(options) and "jaas" not in repr(options)


def test_a_jks_truststore_is_refused_by_the_python_source():
    with pytest.raises(KafkaSourceError, match="PEM"):
        KafkaSourceOptions.from_options({"kafka.bootstrap.servers": "k:1", "subscribe": "t",
                                         "kafka.security.protocol": "SSL", "kafka.ssl.truststore.location": "/x.jks"})


def test_spark_redacts_the_kafka_login_in_plans_and_logs(spark):
    """Spark's default redaction hides only options named like "url"; the SASL login is not."""
    import re

    pattern = re.compile(spark.conf.get("spark.sql.redaction.options.regex"))
    for secret_option in ("kafka.sasl.jaas.config", "kafka.ssl.truststore.password", "mongo.url"):
        assert pattern.search(secret_option), secret_option
    assert not pattern.search("kafka.bootstrap.servers") and not pattern.search("subscribe")
