"""Kafka administration helpers shared by infra, tests and jobs."""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from fma_platform.settings import Settings, get_settings

log = logging.getLogger(__name__)


def admin_client(settings: Settings | None = None, *, timeout_s: float = 10) -> KafkaAdminClient:
    settings = settings or get_settings()
    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
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
