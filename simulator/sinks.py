"""Where simulated events go (MongoDB, a JSON Lines file or Kafka), and the listeners' tastes (MongoDB).

Every sink is idempotent on natural keys where the target allows it: events are upserted
by ``event_id`` (their ``_id``), listeners by ``user_id`` (their ``_id``) through
``fma_platform.mongo.upsert_by``; files are replaced atomically. Kafka is at least once
(consumers deduplicate on ``event_id``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pymongo.database import Database

from fma_platform.contracts import Collection
from fma_platform.events import ListeningEvent, encode_event, to_document
from fma_platform.files import write_atomic
from fma_platform.mongo import UpsertReport, upsert_by
from fma_platform.producer import EventProducer, ProducerState
from simulator.errors import KafkaStalledError, SimulationParameterError
from simulator.listeners import Listener

MONGO_BATCH_SIZE = 1_000


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
                          batch_size: int = MONGO_BATCH_SIZE) -> UpsertReport:
    """Upsert ``events`` into ``listening_events`` by ``event_id``: re-running adds nothing.

    The report's ``inserted`` are new events, ``matched`` the ones already stored.
    """
    return upsert_by(db[Collection.LISTENING_EVENTS], (to_document(event) for event in events),
                     batch_size=batch_size)


def write_listeners(db: Database, listeners: Iterable[Listener]) -> int:
    """Upsert the listeners' latent tastes (ground truth for evaluations) into ``simulated_listeners``.

    Every document says ``"simulated": true``. Returns how many listeners were written.
    """
    documents = (listener.to_document() for listener in listeners)
    return upsert_by(db[Collection.SIMULATED_LISTENERS], documents, batch_size=MONGO_BATCH_SIZE).written


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
    nothing for ``stall_timeout_s``; ``SimulationParameterError`` for a non-positive rate.
    """
    if rate_per_s is not None and rate_per_s <= 0:
        raise SimulationParameterError(f"rate_per_s must be positive, got {rate_per_s}")
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


def _write_lines(path: Path, lines: Iterable[bytes]) -> int:
    """Write ``lines`` to ``path`` atomically (``fma_platform.files.write_atomic``); return the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0

    def write(partial: Path) -> None:
        nonlocal count
        with open(partial, "wb") as handle:
            for line in lines:
                handle.write(line)
                handle.write(b"\n")
                count += 1

    write_atomic(path, write)
    return count
