"""Kafka records of a micro-batch -> valid listening events and dead letters (pure).

Every record is decoded with the event contract (``fma_platform.events``); a record that
is not a valid event of a known track becomes a ``dead_letters`` document keyed by its
(topic, partition, offset), with a machine-readable ``reason_kind`` and a readable reason.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fma_platform.events import MAX_EVENT_BYTES, InvalidEventError, ListeningEvent, decode_event, to_document

RAW_TEXT_LIMIT = 4 * MAX_EVENT_BYTES  # raw payload kept in a dead letter (oversized ones are cut)

# Dead-letter kinds beyond the event contract's ``ERROR_KINDS``.
UNKNOWN_TRACK = "unknown_track"
NULL_PAYLOAD = "null_payload"


@dataclass(frozen=True)
class KafkaRecord:
    """One record of a micro-batch (the native Kafka source's columns that matter here)."""

    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: datetime  # broker/producer timestamp (CreateTime: when the client sent it)


@dataclass(frozen=True)
class ValidEvent:
    """A decoded event and the record it came from."""

    event: ListeningEvent
    record: KafkaRecord


@dataclass
class ClassifiedBatch:
    """A batch's records, split into valid events and dead-letter documents (input order)."""

    valid: list[ValidEvent] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


def dead_letter(record: KafkaRecord, kind: str, reason: str, *, received_at: datetime) -> dict[str, Any]:
    """The ``dead_letters`` document of ``record``; ``_id`` is its (topic, partition, offset)."""
    raw = b"" if record.value is None else bytes(record.value)
    return {
        "_id": f"{record.topic}/{int(record.partition)}/{int(record.offset)}",
        "reason_kind": kind,
        "reason": reason,
        "raw": raw[:RAW_TEXT_LIMIT].decode("utf-8", errors="replace"),
        "raw_bytes": len(raw),
        "raw_truncated": len(raw) > RAW_TEXT_LIMIT,
        "topic": record.topic,
        "partition": int(record.partition),
        "offset": int(record.offset),
        "kafka_timestamp": record.timestamp,
        "received_at": received_at,
    }


def classify_records(
    records: Iterable[KafkaRecord], *, known_track_ids: Collection[int], received_at: datetime
) -> ClassifiedBatch:
    """Decode every record with the event contract; bad ones become dead letters.

    A record is dead-lettered with the contract's error kind (``malformed_json``,
    ``unknown_field``, ``wrong_type``, ``oversized`` ...), ``null_payload`` for a record
    without a value, or ``unknown_track`` when ``track_id`` is not in ``known_track_ids``.
    Unknown listeners are accepted: a new listener is a cold start, not an error.
    """
    batch = ClassifiedBatch()
    for record in records:
        if record.value is None:
            batch.dead_letters.append(dead_letter(record, NULL_PAYLOAD, "record has no value", received_at=received_at))
            continue
        try:
            event = decode_event(record.value)
        except InvalidEventError as exc:
            batch.dead_letters.append(dead_letter(record, exc.kind, exc.reason, received_at=received_at))
            continue
        if event.track_id not in known_track_ids:
            batch.dead_letters.append(dead_letter(
                record, UNKNOWN_TRACK, f"track_id {event.track_id} is not in the tracks catalogue",
                received_at=received_at,
            ))
            continue
        batch.valid.append(ValidEvent(event, record))
    return batch


def event_documents(valid: Sequence[ValidEvent]) -> list[dict[str, Any]]:
    """``listening_events`` documents (``_id`` = event_id), one per distinct event id."""
    return list({item.event.event_id: to_document(item.event) for item in valid}.values())


def mentioned_track_ids(records: Iterable[KafkaRecord]) -> set[int]:
    """Track ids named by the records that parse as JSON objects (to notice tracks added to
    the catalogue before classifying; ``classify_records`` gives the others their reason)."""
    ids = set()
    for record in records:
        try:
            track_id = json.loads(record.value).get("track_id") if record.value else None
        except (ValueError, AttributeError):
            continue  # not JSON / not an object: classify_records dead-letters it with its reason
        if isinstance(track_id, int) and not isinstance(track_id, bool):
            ids.add(track_id)
    return ids


def next_offsets(records: Iterable[KafkaRecord]) -> dict[str, int]:
    """``{partition: next_offset}`` after this batch (partitions that had records)."""
    offsets: dict[str, int] = {}
    for record in records:
        key = str(record.partition)
        offsets[key] = max(offsets.get(key, 0), int(record.offset) + 1)
    return dict(sorted(offsets.items(), key=lambda item: int(item[0])))
