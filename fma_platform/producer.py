"""The one Kafka producer wrapper: validated listening events, never a blocked caller, none lost in silence.

``EventProducer.send`` validates an event (``InvalidEventError`` to the caller, nothing
reaches Kafka) and appends its bytes to the outbox on disk (``fma_platform.outbox``:
``<state_dir>/outbox/<client id>--<topic>.sqlite``); it never waits for the broker. One
background thread owns the ``KafkaProducer``: it connects (bounded time), hands the
outbox over in order from its head, keyed by ``user_id``, with ``acks="all"``,
idempotence and kafka-python's retries within ``delivery_timeout_s``, waits for each
round's acknowledgements and only then removes the delivered events from the outbox.
Events whose delivery fails stay at its head and are sent again once the broker answers
(after a backoff, or at once on ``flush``).

Restarts: the outbox survives the process (each ``send`` is committed to the file before
it returns; the fsync policy is in ``fma_platform.outbox``). A producer started with the
same state folder, client id and topic first sends what an earlier one left
(``ProducerStatus.recovered``). ``close`` leaves undelivered events in the outbox.

Bound: while the broker is down at most ``max_buffered`` events wait (default
``Settings.producer_outbox_max_events``); beyond it the oldest waiting ones are dropped,
logged and counted in ``ProducerStatus.dropped`` (kept in the outbox across restarts).

Delivery is at least once: when a broker fails mid-round, or a process dies after the
broker took a round and before the outbox forgot it, an event may be sent again.
Consumers deduplicate on ``event_id`` (``to_document`` uses it as ``_id``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from kafka import KafkaProducer
from kafka.errors import KafkaError

from fma_platform.errors import PlatformError
from fma_platform.events import ListeningEvent, encode_event, event_key, validate_event
from fma_platform.kafka import kafka_client_config
from fma_platform.outbox import Outbox, OutboxError, OutboxRecord, outbox_name
from fma_platform.settings import Settings

log = logging.getLogger(__name__)


class ProducerState(StrEnum):
    CONNECTED = "connected"  # the broker took the last round (or the connection just opened)
    BUFFERING = "buffering"  # the broker could not be reached: events wait in the outbox
    CLOSED = "closed"


class ProducerClosedError(PlatformError, RuntimeError):
    """``send`` was called after ``close``."""


@dataclass(frozen=True)
class ProducerStatus:
    """A snapshot of the producer for health pages and logs."""

    state: ProducerState
    buffered: int  # accepted, not yet acknowledged by the broker (includes in flight)
    dropped: int  # oldest events discarded because the outbox was full (ever, by this outbox)
    sent: int  # acknowledged by the broker (by this producer)
    last_error: str | None
    recovered: int = 0  # events earlier processes left in the outbox, found at start
    outbox: str = ""  # the outbox file


class EventProducer:
    """Publish listening events to the events topic of ``settings``; thread-safe.

    Parameters
    ----------
    settings : Settings
        Gives ``kafka_bootstrap`` and ``kafka_events_topic``.
    topic : str, optional
        Another topic than the settings' events topic (tests, replays).
    max_buffered : int, optional
        Most events waiting in the outbox (not yet acknowledged); beyond it the oldest are
        dropped and counted. Default ``settings.producer_outbox_max_events``.
    outbox_dir : Path, optional
        Folder of the outbox; default ``settings.state_dir / "outbox"``. Its file is named
        after ``client_id`` and the topic, so a restarted producer finds it.
    connect_timeout_s : float
        Bound of one connection attempt and of a metadata wait; the constructor waits at
        most about this long for the first attempt.
    retry_backoff_s, max_retry_backoff_s : float
        First pause between attempts while the broker is unreachable, doubled after each
        failure up to the maximum and reset by a success (``flush`` retries at once).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        topic: str | None = None,
        max_buffered: int | None = None,
        outbox_dir: Path | None = None,
        linger_ms: int = 5,
        batch_size: int = 16_384,
        connect_timeout_s: float = 2.0,
        request_timeout_s: float = 5.0,
        delivery_timeout_s: float = 15.0,
        retry_backoff_s: float = 1.0,
        max_retry_backoff_s: float = 30.0,
        max_round_events: int = 1_000,
        client_id: str = "fma-event-producer",
    ) -> None:
        max_buffered = settings.producer_outbox_max_events if max_buffered is None else max_buffered
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be at least 1, got {max_buffered}")
        self.topic = topic or settings.kafka_events_topic
        self._max_buffered = max_buffered
        self._max_round_events = max_round_events
        self._retry_backoff_s = retry_backoff_s
        self._max_retry_backoff_s = max(max_retry_backoff_s, retry_backoff_s)
        self._backoff_s = retry_backoff_s
        self._flush_wait_s = delivery_timeout_s + request_timeout_s
        self._kafka_config = {
            **kafka_client_config(settings),  # brokers, TLS and SASL
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "request_timeout_ms": int(request_timeout_s * 1000),
            "delivery_timeout_ms": int(delivery_timeout_s * 1000),
            "bootstrap_timeout_ms": int(connect_timeout_s * 1000),
            "max_block_ms": int(connect_timeout_s * 1000),
            "reconnect_backoff_max_ms": 1000,
            # Topics are created by the platform (fma_platform.kafka.ensure_topics) with
            # their partition count; an auto-created one would have the broker's default.
            # (Tansu ignores this flag and creates missing topics with 4 partitions.)
            "allow_auto_create_topics": False,
        }

        self._lock = threading.Condition()
        self._outbox = Outbox.open(outbox_dir or settings.state_dir / "outbox", outbox_name(client_id, self.topic))
        self._in_flight = 0
        self._in_flight_last_seq = 0  # the round in flight is the outbox's head up to this seq
        self._dropping = False  # in a run of drops (logged once per run)
        self._sent = 0
        self._state = ProducerState.BUFFERING
        self._last_error: str | None = None
        self._retry_at = 0.0  # next attempt while disconnected (exponential backoff)
        self._failed_at = float("-inf")
        self._retry_now = False
        self._flushing = 0  # callers waiting in flush(): retry at the base backoff
        self._closing = False
        self._closed = False
        self._kafka: KafkaProducer | None = None  # touched by the worker thread only
        if len(self._outbox):
            log.info("event producer: %d events left by an earlier process in %s are sent first",
                     len(self._outbox), self._outbox.path)

        self._first_attempt = threading.Event()
        self._worker = threading.Thread(target=self._run, name=f"{client_id}-sender", daemon=True)
        self._worker.start()
        self._first_attempt.wait(connect_timeout_s + 0.5)

    # --- public API ----------------------------------------------------------------------
    def send(self, event: ListeningEvent) -> None:
        """Validate ``event`` and queue it for delivery; returns at once.

        Raises ``InvalidEventError`` for an event that breaks the contract (nothing is
        queued), ``ProducerClosedError`` after ``close`` and ``OutboxError`` when the outbox
        file cannot be written (e.g. a full disk).
        """
        event = validate_event(event)
        key, value = event_key(event), encode_event(event)
        with self._lock:
            if self._closing:
                raise ProducerClosedError(f"producer for topic {self.topic!r} is closed")
            self._outbox.append(key, value)
            self._trim_outbox()
            self._lock.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Deliver everything buffered, retrying until ``timeout``; True when nothing is left.

        Retries start at once and repeat every ``retry_backoff_s`` while it waits.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._retry_now = True
            self._flushing += 1
            self._lock.notify_all()
            try:
                while len(self._outbox):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._closed:
                        return False
                    self._lock.wait(remaining)
            finally:
                self._flushing -= 1
        return True

    def status(self) -> ProducerStatus:
        with self._lock:
            return ProducerStatus(
                state=self._state,
                buffered=len(self._outbox),
                dropped=self._outbox.dropped,
                sent=self._sent,
                last_error=self._last_error,
                recovered=self._outbox.recovered,
                outbox=str(self._outbox.path),
            )

    def close(self, timeout: float = 5.0) -> int:
        """Deliver what is possible within ``timeout``, stop; return the events left behind
        (they stay in the outbox and are sent by the next producer on it)."""
        if self._closed:
            return self.status().buffered
        delivered = self.flush(timeout)
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        self._worker.join(self._flush_wait_s + 5.0)
        with self._lock:
            self._closed = True
            self._state = ProducerState.CLOSED
            left = len(self._outbox)
            if not self._worker.is_alive():
                self._outbox.close()
        if not delivered and left:
            log.warning("producer for %s closed with %d undelivered events kept in %s (last error: %s)",
                        self.topic, left, self._outbox.path, self._last_error)
        return left

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- worker thread -------------------------------------------------------------------
    def _trim_outbox(self) -> None:
        """Drop the oldest waiting events beyond the bound, never the round in flight (lock held)."""
        excess = len(self._outbox) - self._max_buffered
        if excess <= 0:
            self._dropping = False
            return
        after = self._in_flight_last_seq if self._in_flight else 0
        dropped = self._outbox.drop_oldest(excess, after_seq=after)
        if dropped and not self._dropping:
            log.warning("event producer: the outbox %s is full (%d events): dropping the oldest waiting events "
                        "(%d dropped so far)", self._outbox.path, self._max_buffered, self._outbox.dropped)
        self._dropping = self._dropping or bool(dropped)

    def _run(self) -> None:
        try:
            self._connect()
        finally:
            self._first_attempt.set()
        while True:
            try:
                round_records = self._next_round()
                if round_records is None:
                    break
                self._finish_round(round_records, delivered=self._attempt_round(round_records))
            except OutboxError as exc:  # e.g. a full disk: retried after the backoff, never a dead sender
                log.exception("event producer: the outbox failed")
                with self._lock:
                    self._in_flight = 0
                self._record_failure(str(exc))
        self._disconnect()

    def _attempt_round(self, round_records: list[OutboxRecord]) -> list[bool]:
        try:
            if self._kafka is None and not self._connect():
                return [False] * len(round_records)
            return self._deliver(round_records)
        except Exception as exc:  # a bug here must not stop delivery silently: report it
            log.exception("event producer: unexpected error while sending")
            self._record_failure(f"unexpected {type(exc).__name__}: {exc}")
            self._disconnect()
            return [False] * len(round_records)

    def _next_round(self) -> list[OutboxRecord] | None:
        """Wait until there is something to send (or to reconnect) and it is time; None on close.

        An empty round while disconnected is a reconnection attempt, so the state turns
        back to connected when the broker returns even if nobody sends.
        """
        with self._lock:
            while True:
                if self._closing:
                    return None
                next_attempt = self._next_attempt()
                due = time.monotonic() >= next_attempt
                if due and (self._outbox or self._kafka is None):
                    break
                self._lock.wait(None if due else max(next_attempt - time.monotonic(), 0.01))
            self._retry_now = False
            round_records = self._outbox.head(self._max_round_events)
            self._in_flight = len(round_records)
            self._in_flight_last_seq = round_records[-1].seq if round_records else 0
            return round_records

    def _next_attempt(self) -> float:
        """When the worker may talk to the broker again (lock held)."""
        if self._retry_now:
            return float("-inf")
        if self._flushing:
            return min(self._retry_at, self._failed_at + self._retry_backoff_s)
        return self._retry_at

    def _connect(self) -> bool:
        try:
            self._kafka = KafkaProducer(**self._kafka_config)
        except KafkaError as exc:
            self._record_failure(f"cannot reach Kafka at {self._kafka_config['bootstrap_servers']}: {exc}")
            return False
        with self._lock:
            self._state = ProducerState.CONNECTED
            self._backoff_s = self._retry_backoff_s
        return True

    def _disconnect(self) -> None:
        """Close the Kafka client (its rounds are complete, so nothing is waiting in it)."""
        kafka, self._kafka = self._kafka, None
        if kafka is None:
            return
        try:
            kafka.close(timeout=1)
        except KafkaError as exc:
            log.warning("event producer: closing the Kafka client failed: %s", exc)

    def _deliver(self, round_records: list[OutboxRecord]) -> list[bool]:
        """Send one round in order and wait for its acknowledgements: delivered or not, per record."""
        futures = []
        error: str | None = None
        try:
            for record in round_records:
                futures.append(self._kafka.send(self.topic, key=record.key, value=record.value))
        except KafkaError as exc:  # e.g. no metadata for the topic within max_block_ms
            error = f"sending to {self.topic!r} failed (does the topic exist?): {exc}"
        try:
            # Resolves every future: acknowledged, or failed after delivery_timeout_ms.
            self._kafka.flush(timeout=self._flush_wait_s)
        except KafkaError as exc:
            error = error or f"waiting for acknowledgements from {self.topic!r} failed: {exc}"
        delivered = [future.is_done and future.succeeded() for future in futures]
        delivered += [False] * (len(round_records) - len(futures))
        if not all(delivered):
            failure = next((f.exception for f in futures if f.is_done and f.failed()), None)
            self._record_failure(error or f"delivery to {self.topic!r} failed: {failure}")
            # A fresh connection after a failure: a restarted broker forgets producer ids.
            self._disconnect()
        return delivered

    def _finish_round(self, round_records: list[OutboxRecord], *, delivered: list[bool]) -> None:
        """Remove the delivered records from the outbox; the others stay at its head, in order."""
        with self._lock:
            done = [record.seq for record, ok in zip(round_records, delivered) if ok]
            failed = len(round_records) - len(done)
            self._outbox.remove(done)
            self._sent += len(done)
            self._in_flight = 0
            self._trim_outbox()
            if not failed and self._kafka is not None:
                self._state = ProducerState.CONNECTED
                self._backoff_s = self._retry_backoff_s
            self._lock.notify_all()

    def _record_failure(self, message: str) -> None:
        log.warning("event producer: %s; events stay buffered", message)
        with self._lock:
            self._state = ProducerState.BUFFERING
            self._last_error = message
            self._failed_at = time.monotonic()
            self._retry_at = self._failed_at + self._backoff_s
            self._backoff_s = min(self._backoff_s * 2, self._max_retry_backoff_s)
