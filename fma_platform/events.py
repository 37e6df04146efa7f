"""The listening-event contract: one versioned schema shared by every layer.

The player and the listener simulator create events with ``new_event`` and publish
``encode_event`` bytes keyed by ``event_key``; the streaming job and any other consumer
read them back with ``decode_event`` (or Spark's ``from_json`` with ``SPARK_SCHEMA_DDL``)
and store them with ``to_document``. Anything that does not match the contract raises
``InvalidEventError`` with a machine-readable ``kind``, so bad payloads can be
quarantined with a reason instead of being skipped silently.

Wire format (version 1): a compact UTF-8 JSON object with exactly the fields of
``ListeningEvent``, ``client_ts`` as ISO 8601 in UTC (``...Z``), at most
``MAX_EVENT_BYTES`` bytes. Consumers deduplicate on ``event_id``: delivery is at least
once when a broker fails mid-send.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fma_platform.errors import PlatformError

SCHEMA_VERSION = 1
MAX_EVENT_BYTES = 4096
# A play may rewind, so listened time can exceed the track length, but not by more than
# one extra full listen (plus slack for rounding and player clocks).
MAX_LISTENED_RATIO = 2.0
DURATION_SLACK_S = 1.0


class EventType(StrEnum):
    """What the listener did."""

    PLAY = "play"
    PAUSE = "pause"
    PROGRESS = "progress"
    COMPLETE = "complete"
    SKIP = "skip"
    LIKE = "like"
    DISLIKE = "dislike"


class EventSource(StrEnum):
    """Who produced the event: a real listener in the player, or the labelled simulator."""

    PLAYER = "player"
    SIMULATOR = "simulator"


class InvalidEventError(PlatformError, ValueError):
    """A payload or a set of fields that breaks the listening-event contract.

    ``kind`` is one of ``ERROR_KINDS`` (for counting and quarantine), ``reason`` says what
    is wrong in words, ``field`` names the offending field when there is one.
    """

    def __init__(self, kind: str, reason: str, *, field: str | None = None) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown InvalidEventError kind {kind!r}")
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason
        self.field = field


ERROR_KINDS = (
    "malformed_json",
    "unknown_field",
    "missing_field",
    "wrong_type",
    "bad_value",
    "oversized",
    "unsupported_version",
)

EventId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^\S+$")]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class ListeningEvent(BaseModel):
    """One listening event, version 1 (immutable; build it with ``new_event``)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: EventId
    user_id: Identifier
    track_id: Annotated[int, Field(gt=0)]
    type: EventType = Field(strict=False)  # accepts "play" as well as EventType.PLAY
    position_s: Seconds
    listened_s: Seconds
    track_duration_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    client_ts: AwareDatetime
    session_id: Identifier
    source: EventSource = Field(strict=False)

    @field_validator("client_ts", mode="after")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(timezone.utc)

    @model_validator(mode="after")
    def _within_track(self) -> ListeningEvent:
        duration = self.track_duration_s
        if duration is None:
            return self
        if self.position_s > duration + DURATION_SLACK_S:
            raise ValueError(f"position_s {self.position_s} is past the end of the track ({duration} s)")
        if self.listened_s > MAX_LISTENED_RATIO * duration + DURATION_SLACK_S:
            raise ValueError(
                f"listened_s {self.listened_s} is more than {MAX_LISTENED_RATIO:g}x "
                f"the track duration ({duration} s)"
            )
        return self


FIELD_NAMES: tuple[str, ...] = tuple(ListeningEvent.model_fields)

# (name, Spark SQL type, nullable), in wire order: the one source of the Spark schema.
_SPARK_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("schema_version", "INT", False),
    ("event_id", "STRING", False),
    ("user_id", "STRING", False),
    ("track_id", "BIGINT", False),
    ("type", "STRING", False),
    ("position_s", "DOUBLE", False),
    ("listened_s", "DOUBLE", False),
    ("track_duration_s", "DOUBLE", True),
    ("client_ts", "TIMESTAMP", False),
    ("session_id", "STRING", False),
    ("source", "STRING", False),
)
SPARK_SCHEMA_DDL = ", ".join(f"{name} {spark_type}" for name, spark_type, _ in _SPARK_FIELDS)


def spark_schema():
    """The event schema as a ``pyspark.sql.types.StructType`` (pyspark imported here only)."""
    from pyspark.sql import types as T

    spark_types = {
        "INT": T.IntegerType(),
        "BIGINT": T.LongType(),
        "STRING": T.StringType(),
        "DOUBLE": T.DoubleType(),
        "TIMESTAMP": T.TimestampType(),
    }
    return T.StructType([
        T.StructField(name, spark_types[spark_type], nullable) for name, spark_type, nullable in _SPARK_FIELDS
    ])


def new_event_id() -> str:
    """A fresh random event id (UUID4, 32 lowercase hex digits)."""
    return uuid.uuid4().hex


def new_event(**fields: Any) -> ListeningEvent:
    """Validate ``fields`` into an event; ``event_id`` and ``client_ts`` (now, UTC) default.

    Raises ``InvalidEventError`` when the fields break the contract.
    """
    fields.setdefault("event_id", new_event_id())
    fields.setdefault("client_ts", datetime.now(timezone.utc))
    return validate_event(fields)


def validate_event(fields: Mapping[str, Any] | ListeningEvent) -> ListeningEvent:
    """Check Python values against the contract (a ``ListeningEvent`` is re-checked too)."""
    if isinstance(fields, ListeningEvent):
        fields = {name: getattr(fields, name) for name in FIELD_NAMES}
    _check_version(fields, required=False)
    try:
        return ListeningEvent.model_validate(dict(fields))
    except ValidationError as exc:
        raise _contract_error(exc) from exc


def encode_event(event: ListeningEvent) -> bytes:
    """The wire form of ``event``: compact UTF-8 JSON, at most ``MAX_EVENT_BYTES``."""
    raw = event.model_dump_json().encode("utf-8")
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEventError("oversized", f"encoded event is {len(raw)} bytes, limit {MAX_EVENT_BYTES}")
    return raw


def decode_event(raw: bytes | bytearray | memoryview) -> ListeningEvent:
    """Parse and validate one wire payload; raise ``InvalidEventError`` with its kind."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_event expects bytes, got {type(raw).__name__}")
    raw = bytes(raw)
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEventError("oversized", f"payload is {len(raw)} bytes, limit {MAX_EVENT_BYTES}")
    document = _parse_json(raw)
    _check_version(document, required=True)
    try:
        return ListeningEvent.model_validate_json(raw)
    except ValidationError as exc:
        raise _contract_error(exc) from exc


def event_key(event: ListeningEvent) -> bytes:
    """The Kafka key of ``event``: its user, so one listener's events stay in order."""
    return event.user_id.encode("utf-8")


def to_document(event: ListeningEvent) -> dict[str, Any]:
    """The MongoDB document of ``event``; ``_id`` is the event id so re-inserts are no-ops."""
    document = event.model_dump(mode="python")
    document["type"] = event.type.value
    document["source"] = event.source.value
    return {"_id": event.event_id, **document}


# --- error mapping -----------------------------------------------------------------------
_KIND_PRIORITY = ("unknown_field", "missing_field", "wrong_type", "bad_value")


def _parse_json(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
        document = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise InvalidEventError("malformed_json", f"payload is not UTF-8: {exc}") from exc
    except ValueError as exc:  # json.JSONDecodeError and the hooks' errors
        raise InvalidEventError("malformed_json", f"payload is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidEventError("wrong_type", f"payload must be a JSON object, not {type(document).__name__}")
    return document


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        names = [name for name, _ in pairs]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"duplicate keys {duplicated}")
    return document


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in JSON")


def _check_version(fields: Mapping[str, Any], *, required: bool) -> None:
    """Version first: a newer event is 'unsupported', not a pile of unknown fields."""
    if "schema_version" not in fields:
        if required:
            raise InvalidEventError("missing_field", "schema_version is required", field="schema_version")
        return
    version = fields["schema_version"]
    if type(version) is not int:
        raise InvalidEventError(
            "wrong_type",
            f"schema_version must be an integer, got {type(version).__name__}",
            field="schema_version",
        )
    if version != SCHEMA_VERSION:
        raise InvalidEventError(
            "unsupported_version",
            f"schema_version {version} is not supported (this code reads version {SCHEMA_VERSION})",
            field="schema_version",
        )


def _contract_error(exc: ValidationError) -> InvalidEventError:
    """One ``InvalidEventError`` for all of pydantic's findings, the gravest kind first."""
    findings = [(_error_kind(error), error) for error in exc.errors(include_url=False)]
    findings.sort(key=lambda finding: _KIND_PRIORITY.index(finding[0]))
    kind, first = findings[0]
    reason = "; ".join(f"{_field_name(error) or 'event'}: {error['msg']}" for _, error in findings)
    return InvalidEventError(kind, reason, field=_field_name(first))


def _error_kind(error: Mapping[str, Any]) -> str:
    error_type = error["type"]
    if error_type == "extra_forbidden":
        return "unknown_field"
    if error_type == "missing":
        return "missing_field"
    if error_type.endswith(("_type", "_parsing")):
        return "wrong_type"
    if error_type in ("enum", "literal_error") and not isinstance(error.get("input"), str):
        return "wrong_type"
    return "bad_value"


def _field_name(error: Mapping[str, Any]) -> str | None:
    return ".".join(str(part) for part in error["loc"]) or None
