"""Process-wide resources of the app: the database handle, the one event producer, health.

``st.cache_resource`` keeps one ``EventProducer`` per server process (per broker and
topic); it never blocks a page when Kafka is down, it buffers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import streamlit as st
from pymongo.database import Database
from pymongo.errors import PyMongoError

from fma_platform.mongo import ping, platform_db
from fma_platform.producer import EventProducer, ProducerStatus
from fma_platform.settings import get_settings

log = logging.getLogger(__name__)

MONGO_TIMEOUT_MS = 2000


def database() -> Database:
    """The platform database of the current settings (short timeouts: pages must answer)."""
    return platform_db(get_settings(), timeout_ms=MONGO_TIMEOUT_MS)


def _close_producer(producer: EventProducer) -> None:
    left = producer.close(timeout=2.0)
    if left:
        log.warning("event producer released with %d undelivered events", left)


@st.cache_resource(show_spinner=False, on_release=_close_producer)
def _producer(bootstrap: str, topic: str) -> EventProducer:
    return EventProducer(get_settings(), topic=topic, connect_timeout_s=1.0, client_id="fma-player")


def event_producer() -> EventProducer:
    """The server process's producer for the configured broker and events topic."""
    settings = get_settings()
    return _producer(settings.kafka_bootstrap, settings.kafka_events_topic)


@dataclass(frozen=True)
class MongoHealth:
    up: bool
    error: str | None = None


@st.cache_data(ttl=5, show_spinner=False)
def _mongo_health(url: str) -> MongoHealth:
    try:
        ping(get_settings(), timeout_ms=MONGO_TIMEOUT_MS)
    except PyMongoError as exc:
        return MongoHealth(up=False, error=f"{type(exc).__name__}: {exc}")
    return MongoHealth(up=True)


def mongo_health() -> MongoHealth:
    """Whether MongoDB answers a ping (cached for 5 s)."""
    return _mongo_health(get_settings().mongo_url)


def producer_status() -> ProducerStatus:
    return event_producer().status()


def database_key() -> str:
    """Identifies the configured database in cache keys (tests switch databases)."""
    settings = get_settings()
    return f"{settings.mongo_url}/{settings.mongo_db}"
