"""What a data engineer checks first: does each service answer, with what it holds."""

from __future__ import annotations

from fma_platform.contracts import Collection, kafka_topics
from fma_platform.errors import PlatformError
from fma_platform.kafka import topic_partitions
from fma_platform.mongo import platform_db
from fma_platform.settings import Settings


class ServiceUnavailableError(PlatformError, RuntimeError):
    """A platform service did not answer or lacks what the platform needs."""


def mongo_health(settings: Settings) -> dict:
    """Server version and the document count of every platform collection."""
    db = platform_db(settings, timeout_ms=3000)
    try:
        version = db.client.server_info()["version"]
    except Exception as exc:  # any driver error: the service is unavailable
        raise ServiceUnavailableError(f"MongoDB at {settings.mongo_url_redacted} did not answer: {exc}") from exc
    counts = {name.value: db[name.value].estimated_document_count() for name in Collection}
    return {"version": version, "database": settings.mongo_db, "documents": counts}


def kafka_health(settings: Settings) -> dict:
    """Each platform topic with its partition count; raises when one is missing."""
    expected = kafka_topics(settings)
    try:
        partitions = {topic: topic_partitions(settings, topic) for topic in expected}
    except Exception as exc:  # any client error: the broker is unavailable
        raise ServiceUnavailableError(f"Kafka at {settings.kafka_bootstrap} did not answer: {exc}") from exc
    wrong = {topic: (partitions[topic], want) for topic, want in expected.items() if partitions[topic] != want}
    if wrong:
        raise ServiceUnavailableError(
            "topics missing or with other partition counts (have, want): "
            + ", ".join(f"{topic} {have_want}" for topic, have_want in wrong.items())
        )
    return {"bootstrap": settings.kafka_bootstrap, "topics": partitions}
