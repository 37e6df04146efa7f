"""Where simulated events and listeners go: MongoDB, a JSON Lines file, or Kafka.

Every sink is idempotent on natural keys where the target allows it: events are upserted
by ``event_id`` (``_id``), listeners by ``user_id``; files are replaced atomically. Kafka
is at least once (consumers deduplicate on ``event_id``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from pymongo import ReplaceOne
from pymongo.database import Database

from fma_platform.contracts import Collection
from fma_platform.events import ListeningEvent, encode_event, to_document
from fma_platform.producer import EventProducer, ProducerState
from simulator.catalog import SimulatorError
from simulator.listeners import Listener

# Collection of the simulated listeners' latent tastes (ground truth for evaluation).
SIMULATED_LISTENERS = Collection.SIMULATED_LISTENERS
MONGO_BATCH_SIZE = 1_000


class KafkaStalledError(SimulatorError):
    """The producer took no event for too long (the broker is down or the topic is missing)."""


@dataclass(frozen=True)
class MongoWriteReport:
    """Events or listeners written: new documents and documents already there."""

    written: int
    inserted: int
    already_present: int


@dataclass(frozen=True)
class KafkaSendReport:
    """What the producer did with a run's events (deltas over this call)."""

    handed_over: int  # events given to the producer
    sent: int  # acknowledged by the broker
    buffered: int  # still in the producer's memory after the final flush
    dropped: int  # discarded by the producer's bounded outbox
    state: str
    last_error: str | None
    elapsed_s: float


def write_events_to_mongo(db: Database, events: Iterable[ListeningEvent], *,
                          batch_size: int = MONGO_BATCH_SIZE) -> MongoWriteReport:
    """Upsert ``events`` into ``listening_events`` by ``event_id``: re-running adds nothing."""
    collection = db[Collection.LISTENING_EVENTS]
    return _upsert_documents(collection, (to_document(event) for event in events), batch_size=batch_size)


def write_listeners(target: Database | str | os.PathLike, listeners: Iterable[Listener]) -> int:
    """Save the listeners' latent tastes: upserted into ``simulated_listeners`` or a JSONL file.

    Every document says ``"simulated": true``. Returns how many listeners were written.
    """
    documents = (listener.to_document() for listener in listeners)
    if isinstance(target, Database):
        return _upsert_documents(target[SIMULATED_LISTENERS], documents, batch_size=MONGO_BATCH_SIZE).written
    return _write_lines(Path(target), (json.dumps(document).encode("utf-8") for document in documents))


def write_events_jsonl(path: str | os.PathLike, events: Iterable[ListeningEvent]) -> int:
    """Write ``events`` in their wire form, one per line; the file is replaced atomically."""
    return _write_lines(Path(path), (encode_event(event) for event in events))


def send_events_to_kafka(
    producer: EventProducer,
    events: Iterable[ListeningEvent],
    *,
    rate_per_s: float | None = None,
    max_pending: int = 5_000,
    stall_timeout_s: float = 30.0,
    flush_timeout_s: float = 30.0,
) -> KafkaSendReport:
    """Hand ``events`` to ``producer``, at most ``rate_per_s`` per second, then flush.

    The producer never blocks and drops its oldest events beyond its outbox bound, so
    this waits while more than ``max_pending`` events are unacknowledged (keep it below
    the producer's ``max_buffered``). Raises ``KafkaStalledError`` when the broker takes
    nothing for ``stall_timeout_s``; ``ValueError`` for a non-positive rate.
    """
    if rate_per_s is not None and rate_per_s <= 0:
        raise ValueError(f"rate_per_s must be positive, got {rate_per_s}")
    before = producer.status()
    started = time.monotonic()
    handed_over = 0
    for event in events:
        if rate_per_s is not None:
            _wait_until(started + handed_over / rate_per_s)
        if handed_over % 100 == 0:
            _wait_for_room(producer, max_pending=max_pending, stall_timeout_s=stall_timeout_s)
        producer.send(event)
        handed_over += 1
    producer.flush(flush_timeout_s)
    after = producer.status()
    return KafkaSendReport(
        handed_over=handed_over,
        sent=after.sent - before.sent,
        buffered=after.buffered,
        dropped=after.dropped - before.dropped,
        state=after.state.value,
        last_error=after.last_error,
        elapsed_s=round(time.monotonic() - started, 3),
    )


def _wait_until(deadline: float) -> None:
    """Sleep until ``deadline`` (monotonic), in slices of at most a second."""
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(remaining, 1.0))


def _wait_for_room(producer: EventProducer, *, max_pending: int, stall_timeout_s: float) -> None:
    """Wait while the producer holds ``max_pending`` events or more; raise if it stops sending."""
    status = producer.status()
    progress_at, last_sent = time.monotonic(), status.sent
    while status.buffered >= max_pending:
        if status.state is ProducerState.CLOSED:
            raise KafkaStalledError(f"producer for {producer.topic!r} is closed with {status.buffered} events left")
        if status.sent != last_sent:
            progress_at, last_sent = time.monotonic(), status.sent
        elif time.monotonic() - progress_at > stall_timeout_s:
            raise KafkaStalledError(
                f"Kafka took no event for {stall_timeout_s:g} s ({status.buffered} waiting, topic "
                f"{producer.topic!r}): {status.last_error or 'no error reported'}"
            )
        time.sleep(0.01)
        status = producer.status()


def _upsert_documents(collection, documents: Iterable[dict], *, batch_size: int) -> MongoWriteReport:
    """Replace-or-insert ``documents`` by ``_id`` in unordered batches."""
    inserted = present = 0
    for batch in _batches(documents, batch_size):
        result = collection.bulk_write(
            [ReplaceOne({"_id": document["_id"]}, document, upsert=True) for document in batch], ordered=False
        )
        inserted += result.upserted_count
        present += result.matched_count
    return MongoWriteReport(written=inserted + present, inserted=inserted, already_present=present)


def _batches(items: Iterable[dict], size: int) -> Iterator[list[dict]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _write_lines(path: Path, lines: Iterable[bytes]) -> int:
    """Write ``lines`` to a temporary sibling, then rename it over ``path``; return the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    count = 0
    try:
        with open(partial, "wb") as handle:
            for line in lines:
                handle.write(line)
                handle.write(b"\n")
                count += 1
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return count
