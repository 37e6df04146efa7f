"""The one MongoDB client factory of the platform, and the write patterns every job shares.

* ``mongo_client`` / ``platform_db``: cached clients with server-selection, connect and
  socket timeouts (``Settings.mongo_timeout_ms`` / ``mongo_socket_timeout_ms`` unless a
  caller asks for shorter ones): a server that is down or hung fails a call with a
  ``pymongo.errors.PyMongoError`` naming its address, instead of blocking it forever.
  This is the only place a ``MongoClient`` is made (a test checks the tree for others).
* ``upsert_by``: replace-or-insert documents on their natural key, in unordered batches
  (a rerun leaves the same state).
* ``insert_once``: insert documents keyed by their natural ``_id``; ones already stored
  are left as they are (exactly-once effects for replayed stream batches).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import Any

from pymongo import ASCENDING, MongoClient, ReplaceOne
from pymongo.collection import Collection as MongoCollection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from fma_platform.settings import Settings, get_settings

DUPLICATE_KEY = 11000  # MongoDB's error code for a unique-index violation


def mongo_client(settings: Settings | None = None, *, timeout_ms: int | None = None,
                 socket_timeout_ms: int | None = None) -> MongoClient:
    """A client for the configured server (cached per URL and timeouts).

    ``timeout_ms`` bounds server selection and connecting, ``socket_timeout_ms`` one reply;
    both default to the settings. Options in the URL cannot lift them: these win.
    """
    settings = settings or get_settings()
    return _client(settings.mongo_url, timeout_ms or settings.mongo_timeout_ms,
                   socket_timeout_ms or settings.mongo_socket_timeout_ms)


@lru_cache(maxsize=8)
def _client(url: str, timeout_ms: int, socket_timeout_ms: int) -> MongoClient:
    return MongoClient(
        url,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=socket_timeout_ms,
        tz_aware=True,
        appname="fma-platform",
    )


def platform_db(settings: Settings | None = None, *, timeout_ms: int | None = None) -> Database:
    """The platform database named by the settings (timeouts as ``mongo_client``)."""
    settings = settings or get_settings()
    return mongo_client(settings, timeout_ms=timeout_ms)[settings.mongo_db]


def ping(settings: Settings | None = None, *, timeout_ms: int = 2000) -> None:
    """Raise ``pymongo.errors.PyMongoError`` unless the server answers a ping within ``timeout_ms``."""
    mongo_client(settings, timeout_ms=timeout_ms, socket_timeout_ms=timeout_ms).admin.command("ping")


# --- writes -------------------------------------------------------------------------------
@dataclass(frozen=True)
class UpsertReport:
    """What ``upsert_by`` did: new documents, existing ones matched, and of those the changed."""

    inserted: int = 0
    matched: int = 0
    modified: int = 0

    @property
    def written(self) -> int:
        """Documents now in the collection as given (inserted + matched)."""
        return self.inserted + self.matched


def upsert_by(collection: MongoCollection, documents: Iterable[dict], *, keys: Sequence[str] = ("_id",),
              batch_size: int = 500) -> UpsertReport:
    """Replace-or-insert each document on its natural ``keys``, ``batch_size`` per unordered bulk write.

    A rerun with the same documents leaves the same state. Every document must hold every
    key (``KeyError`` names the first one that does not).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    inserted = matched = modified = 0
    for batch in batches(documents, batch_size):
        result = collection.bulk_write(
            [ReplaceOne({key: document[key] for key in keys}, document, upsert=True) for document in batch],
            ordered=False,
        )
        inserted += result.upserted_count
        matched += result.matched_count
        modified += result.modified_count
    return UpsertReport(inserted=inserted, matched=matched, modified=modified)


def insert_once(collection: MongoCollection, documents: list[dict]) -> tuple[set, list]:
    """Insert ``documents`` (each with its natural ``_id``); ones already stored stay as they are.

    Returns (ids inserted now, ids that were already there, in input order). Any error
    other than a duplicate key is raised. An unordered ``insert_many`` is ~3x faster than
    upserts on the embedded server.
    """
    if not documents:
        return set(), []
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        raise_unless_duplicates(exc)
        duplicate_rows = {error["index"] for error in exc.details["writeErrors"]}
        return ({d["_id"] for i, d in enumerate(documents) if i not in duplicate_rows},
                [documents[i]["_id"] for i in sorted(duplicate_rows)])
    return {d["_id"] for d in documents}, []


def raise_unless_duplicates(exc: BulkWriteError) -> None:
    """Duplicate keys mean "already written"; anything else is a real failure."""
    others = [error for error in exc.details.get("writeErrors", []) if error.get("code") != DUPLICATE_KEY]
    if others or exc.details.get("writeConcernErrors"):
        raise exc


def batches(items: Iterable, size: int) -> Iterator[list]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


DAY_S = 86_400


def retention_index_name(field: str) -> str:
    return f"retention_{field}"


def ensure_ttl_index(collection: MongoCollection, field: str, *, seconds: int | None) -> dict[str, Any] | None:
    """The TTL index expiring documents ``seconds`` after their ``field``: created, its window
    changed in place (``collMod``), or dropped when ``seconds`` is None; its options after.

    MongoDB's TTL monitor and SecantusDB's sweeper both delete expired documents every ~60 s.
    """
    name = retention_index_name(field)
    existing = collection.index_information().get(name)
    if seconds is None:
        if existing is not None:
            collection.drop_index(name)
        return None
    if existing is None:
        collection.create_index([(field, ASCENDING)], name=name, expireAfterSeconds=seconds)
    elif existing.get("expireAfterSeconds") != seconds:
        collection.database.command("collMod", collection.name, index={"name": name, "expireAfterSeconds": seconds})
    return collection.index_information()[name]


def ensure_retention(collection: MongoCollection, field: str, days: int) -> dict[str, Any] | None:
    """``ensure_ttl_index`` with a window in days from the settings (0: keep forever)."""
    return ensure_ttl_index(collection, field, seconds=days * DAY_S if days else None)
