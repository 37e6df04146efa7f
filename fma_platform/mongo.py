"""The one MongoDB client factory of the platform."""

from __future__ import annotations

from functools import lru_cache

from pymongo import MongoClient
from pymongo.database import Database

from fma_platform.settings import Settings, get_settings


def mongo_client(settings: Settings | None = None, *, timeout_ms: int = 5000) -> MongoClient:
    """A client for the configured server (cached per URL and timeout)."""
    settings = settings or get_settings()
    return _client(settings.mongo_url, timeout_ms)


@lru_cache(maxsize=8)
def _client(url: str, timeout_ms: int) -> MongoClient:
    return MongoClient(
        url,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        tz_aware=True,
        appname="fma-platform",
    )


def platform_db(settings: Settings | None = None, *, timeout_ms: int = 5000) -> Database:
    """The platform database named by the settings."""
    settings = settings or get_settings()
    return mongo_client(settings, timeout_ms=timeout_ms)[settings.mongo_db]


def ping(settings: Settings | None = None, *, timeout_ms: int = 2000) -> None:
    """Raise ``pymongo.errors.PyMongoError`` unless the server answers a ping."""
    mongo_client(settings, timeout_ms=timeout_ms).admin.command("ping")
