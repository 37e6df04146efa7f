"""Kafka client configuration and administration helpers shared by infra, tests and jobs.

Every Kafka client of the platform starts from one configuration made from the settings:
``kafka_client_config`` gives kafka-python's keyword arguments (brokers, TLS, SASL) and
``spark_kafka_options`` the same configuration as Spark Kafka source options (``kafka.*``,
the native source's names, which the project's Python source reads back with
``kafka_client_config_from_spark_options``). The SASL password travels in these values only:
it is a ``SecretStr`` in the settings and is redacted from kafka-python's debug logs here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from fma_platform.errors import PlatformError
from fma_platform.settings import Settings, get_settings

log = logging.getLogger(__name__)

# Consumer groups of the streaming job start with this (Spark's groupIdPrefix); the broker's
# ACLs let the streaming principal read groups with this prefix only.
STREAMING_GROUP_PREFIX = "fma-streaming"
# The login module of each SASL mechanism in a JAAS line (Spark's kafka.sasl.jaas.config).
_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
# The kafka.* options spark_kafka_options may set besides the brokers: a source must accept them.
SPARK_SECURITY_OPTIONS = frozenset({
    "kafka.security.protocol", "kafka.sasl.mechanism", "kafka.sasl.jaas.config",
    "kafka.ssl.truststore.type", "kafka.ssl.truststore.location",
})
_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')
_REDACTED = "***"


class KafkaConfigError(PlatformError, ValueError):
    """Kafka client options that cannot be turned into a client configuration."""


# --- client configuration --------------------------------------------------------------------
def kafka_client_config(settings: Settings) -> dict[str, Any]:
    """kafka-python keyword arguments every client starts from: brokers, TLS and SASL.

    ``SSL``/``SASL_SSL`` verify the broker's certificate and host name (against
    ``kafka_ssl_cafile`` when set, else the system's CAs); ``SASL_*`` log in as
    ``kafka_sasl_username`` with ``kafka_sasl_mechanism`` (SCRAM never sends the password).
    """
    protocol = settings.kafka_security_protocol
    config: dict[str, Any] = {
        "bootstrap_servers": _servers(settings.kafka_bootstrap),
        "security_protocol": protocol,
    }
    if protocol.endswith("SSL"):
        config["ssl_check_hostname"] = True
        if settings.kafka_ssl_cafile:
            config["ssl_cafile"] = settings.kafka_ssl_cafile
    if protocol.startswith("SASL_"):
        config.update({
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        })
    return config


def spark_kafka_options(settings: Settings) -> dict[str, str]:
    """The same configuration as Spark Kafka source options (``kafka.*``), for either source.

    TLS trust comes as a PEM truststore (Kafka clients 2.7+ read ``ssl.truststore.type=PEM``);
    host names are verified (the Java client's default). The JAAS line holds the password:
    pass these options to the reader only, never to a log.
    """
    protocol = settings.kafka_security_protocol
    options = {"kafka.bootstrap.servers": settings.kafka_bootstrap, "kafka.security.protocol": protocol}
    if protocol.endswith("SSL") and settings.kafka_ssl_cafile:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = settings.kafka_ssl_cafile
    if protocol.startswith("SASL_"):
        mechanism = settings.kafka_sasl_mechanism
        options["kafka.sasl.mechanism"] = mechanism
        options["kafka.sasl.jaas.config"] = jaas_config(
            mechanism, settings.kafka_sasl_username, settings.kafka_sasl_password.get_secret_value())
    return options


def kafka_client_config_from_spark_options(options: Mapping[str, str]) -> dict[str, Any]:
    """kafka-python keyword arguments from Spark Kafka source options (keys case-insensitive).

    The inverse of ``spark_kafka_options`` for the Python source: brokers, protocol, SASL
    login (from the JAAS line) and a PEM truststore. Raises ``KafkaConfigError`` for a
    security option it cannot honour (a JKS truststore, an unknown mechanism or JAAS line).
    """
    options = {key.lower(): value for key, value in options.items()}
    protocol = options.get("kafka.security.protocol", "PLAINTEXT").strip().upper()
    if protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise KafkaConfigError(f"kafka.security.protocol {protocol!r} is not supported")
    config: dict[str, Any] = {
        "bootstrap_servers": _servers(options.get("kafka.bootstrap.servers", "")),
        "security_protocol": protocol,
    }
    if protocol.endswith("SSL"):
        config["ssl_check_hostname"] = True
        location = options.get("kafka.ssl.truststore.location", "").strip()
        if location:
            if options.get("kafka.ssl.truststore.type", "").strip().upper() != "PEM":
                raise KafkaConfigError("only a PEM truststore (kafka.ssl.truststore.type=PEM) can be read here")
            config["ssl_cafile"] = location
    if protocol.startswith("SASL_"):
        mechanism = options.get("kafka.sasl.mechanism", "GSSAPI").strip().upper()
        if mechanism not in _LOGIN_MODULES:
            raise KafkaConfigError(f"kafka.sasl.mechanism {mechanism!r} is not supported (use SCRAM or PLAIN)")
        username, password = parse_jaas_login(options.get("kafka.sasl.jaas.config", ""))
        config.update({"sasl_mechanism": mechanism, "sasl_plain_username": username,
                       "sasl_plain_password": password})
    return config


def jaas_config(mechanism: str, username: str, password: str) -> str:
    """The one-line JAAS login of ``mechanism`` (Kafka's ``sasl.jaas.config``), values quoted."""
    return (f'{_LOGIN_MODULES[mechanism]} required username="{_jaas_quote(username)}" '
            f'password="{_jaas_quote(password)}";')


def parse_jaas_login(line: str) -> tuple[str, str]:
    """``(username, password)`` of a JAAS line made by ``jaas_config``; ``KafkaConfigError`` otherwise."""
    values = {key: re.sub(r"\\(.)", r"\1", value) for key, value in _JAAS_OPTION.findall(line)}
    if not line.strip().startswith(tuple(_LOGIN_MODULES.values())) or not values.get("username") \
            or "password" not in values:
        raise KafkaConfigError("kafka.sasl.jaas.config must be a PLAIN or SCRAM login with a username and password")
    return values["username"], values["password"]


def _jaas_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _servers(bootstrap: str) -> list[str]:
    servers = [server.strip() for server in bootstrap.split(",") if server.strip()]
    if not servers:
        raise KafkaConfigError("no Kafka bootstrap server given")
    return servers


class _RedactClientConfig(logging.Filter):
    """kafka-python's admin client logs its whole configuration at DEBUG, password included."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(arg, dict) for arg in record.args):
            record.args = tuple(_redacted(arg) if isinstance(arg, dict) else arg for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = _redacted(record.args)
        return True


def _redacted(config: dict) -> dict:
    return {key: _REDACTED if "password" in str(key) and value else value for key, value in config.items()}


logging.getLogger("kafka.admin.client").addFilter(_RedactClientConfig())


# --- administration --------------------------------------------------------------------------
def admin_client(settings: Settings | None = None, *, timeout_s: float = 10) -> KafkaAdminClient:
    settings = settings or get_settings()
    return KafkaAdminClient(
        **kafka_client_config(settings),
        client_id="fma-platform-admin",
        request_timeout_ms=int(timeout_s * 1000),
        bootstrap_timeout_ms=int(timeout_s * 1000),
    )


def list_topics(settings: Settings | None = None, *, timeout_s: float = 10) -> list[str]:
    """Topic names on the broker; raises a ``kafka.errors.KafkaError`` when it is down."""
    admin = admin_client(settings, timeout_s=timeout_s)
    try:
        return sorted(admin.list_topics())
    finally:
        admin.close()


def ensure_topics(settings: Settings, topics: dict[str, int]) -> list[str]:
    """Create the missing ``{topic: partitions}``; return the names that were created."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name=name, num_partitions=partitions, replication_factor=1)
            for name, partitions in topics.items()
            if name not in existing
        ]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError as exc:
                # Created concurrently by another starter: the goal is reached.
                log.info("topics already exist: %s", exc)
        return [topic.name for topic in missing]
    finally:
        admin.close()


def topic_partitions(settings: Settings, topic: str) -> int:
    """How many partitions ``topic`` has (0 when it does not exist)."""
    admin = admin_client(settings)
    try:
        described = admin.describe_topics([topic])
    finally:
        admin.close()
    return sum(len(entry.get("partitions", [])) for entry in described if entry.get("error_code", 0) == 0)
