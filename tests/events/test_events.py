"""The listening-event contract: round trips, one error kind per kind of bad payload."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from fma_platform import events
from fma_platform.events import (
    ERROR_KINDS,
    FIELD_NAMES,
    MAX_EVENT_BYTES,
    SPARK_SCHEMA_DDL,
    EventSource,
    EventType,
    InvalidEventError,
    ListeningEvent,
    decode_event,
    encode_event,
    event_key,
    new_event,
    to_document,
)

CLIENT_TS = datetime(2025, 3, 1, 12, 30, 15, 250000, tzinfo=timezone.utc)


def listening_fields(**overrides) -> dict:
    fields = {
        "user_id": "alice",
        "track_id": 2,
        "type": "progress",
        "position_s": 12.5,
        "listened_s": 10.0,
        "track_duration_s": 30.0,
        "client_ts": CLIENT_TS,
        "session_id": "session-1",
        "source": "player",
    }
    fields.update(overrides)
    return fields


def wire_payload(**changes) -> bytes:
    """A valid event's JSON with fields replaced (value ``...`` removes the field)."""
    document = json.loads(encode_event(new_event(**listening_fields())))
    for name, value in changes.items():
        if value is ...:
            del document[name]
        else:
            document[name] = value
    return json.dumps(document).encode()


def test_round_trip_gives_back_the_same_event():
    event = new_event(**listening_fields())

    assert decode_event(encode_event(event)) == event


def test_encoding_is_compact_json_in_field_order_with_utc_timestamp():
    raw = encode_event(new_event(**listening_fields()))

    assert b" " not in raw
    document = json.loads(raw.decode("utf-8"))
    assert tuple(document) == FIELD_NAMES
    assert document["client_ts"] == "2025-03-01T12:30:15.250000Z"
    assert document["schema_version"] == 1


def test_non_utc_timestamps_are_stored_as_the_same_instant_in_utc():
    paris = timezone(timedelta(hours=1))
    event = new_event(**listening_fields(client_ts=CLIENT_TS.astimezone(paris)))

    assert event.client_ts == CLIENT_TS
    assert event.client_ts.utcoffset() == timedelta(0)


def test_new_event_fills_a_unique_id_and_the_current_utc_time():
    fields = listening_fields()
    del fields["client_ts"]
    first, second = new_event(**fields), new_event(**fields)

    assert first.event_id != second.event_id
    assert len(first.event_id) == 32
    assert abs(first.client_ts - datetime.now(timezone.utc)) < timedelta(seconds=5)
    assert first.type is EventType.PROGRESS and first.source is EventSource.PLAYER


def test_track_duration_is_optional():
    event = new_event(**listening_fields(track_duration_s=None, position_s=500.0))

    assert decode_event(encode_event(event)).track_duration_s is None


@pytest.mark.parametrize(
    ("payload", "kind", "field"),
    [
        (b"{not json", "malformed_json", None),
        (b"\xff\xfe{}", "malformed_json", None),
        (b'{"schema_version": 1, "schema_version": 1}', "malformed_json", None),
        (wire_payload(position_s=1.0).replace(b"1.0", b"NaN", 1), "malformed_json", None),
        (b"[1, 2]", "wrong_type", None),
        (wire_payload(track_id="2"), "wrong_type", "track_id"),
        (wire_payload(track_id=2.0), "wrong_type", "track_id"),
        (wire_payload(track_id=True), "wrong_type", "track_id"),
        (wire_payload(position_s="12.5"), "wrong_type", "position_s"),
        (wire_payload(client_ts=1740832215), "wrong_type", "client_ts"),
        (wire_payload(type=3), "wrong_type", "type"),
        (wire_payload(user_id=42), "wrong_type", "user_id"),
        (wire_payload(schema_version="1"), "wrong_type", "schema_version"),
        (wire_payload(schema_version=True), "wrong_type", "schema_version"),
        (wire_payload(rating=5), "unknown_field", "rating"),
        (wire_payload(user_id=...), "missing_field", "user_id"),
        (wire_payload(client_ts=...), "missing_field", "client_ts"),
        (wire_payload(schema_version=...), "missing_field", "schema_version"),
        (wire_payload(track_id=0), "bad_value", "track_id"),
        (wire_payload(position_s=-0.5), "bad_value", "position_s"),
        (wire_payload(track_duration_s=0), "bad_value", "track_duration_s"),
        (wire_payload(type="rewind"), "bad_value", "type"),
        (wire_payload(source="bot"), "bad_value", "source"),
        (wire_payload(user_id=""), "bad_value", "user_id"),
        (wire_payload(session_id="two words"), "bad_value", "session_id"),
        (wire_payload(event_id="not-a-uuid"), "bad_value", "event_id"),
        (wire_payload(client_ts="2025-03-01T12:30:15"), "bad_value", "client_ts"),
        (wire_payload(client_ts="yesterday"), "wrong_type", "client_ts"),
        (wire_payload(listened_s=61.5, track_duration_s=30.0), "bad_value", None),
        (wire_payload(position_s=31.5, track_duration_s=30.0), "bad_value", None),
        (wire_payload(schema_version=2, rating=5), "unsupported_version", "schema_version"),
        (wire_payload(schema_version=0), "unsupported_version", "schema_version"),
        (wire_payload(session_id="s" * MAX_EVENT_BYTES), "oversized", None),
    ],
)
def test_each_kind_of_bad_payload_is_reported_with_its_kind(payload, kind, field):
    with pytest.raises(InvalidEventError) as caught:
        decode_event(payload)

    assert caught.value.kind == kind
    assert caught.value.field == field
    assert caught.value.reason


def test_all_errors_are_named_in_the_reason_and_the_gravest_kind_wins():
    payload = wire_payload(track_id=-1, position_s="x", rating=1)

    with pytest.raises(InvalidEventError) as caught:
        decode_event(payload)

    assert caught.value.kind == "unknown_field"
    for name in ("rating", "track_id", "position_s"):
        assert name in caught.value.reason


def test_small_tolerances_at_the_track_end_are_accepted():
    event = new_event(**listening_fields(position_s=30.5, listened_s=60.5, track_duration_s=30.0))

    assert event.listened_s == 60.5


def test_invalid_fields_raise_the_contract_error_not_pydantics():
    with pytest.raises(InvalidEventError) as caught:
        new_event(**listening_fields(track_id=-3))

    assert caught.value.kind == "bad_value"
    assert caught.value.field == "track_id"
    assert isinstance(caught.value, ValueError)
    assert caught.value.kind in ERROR_KINDS


def test_python_callers_get_no_silent_coercion():
    with pytest.raises(InvalidEventError) as caught:
        new_event(**listening_fields(track_id="2"))

    assert caught.value.kind == "wrong_type"


def test_a_python_caller_cannot_claim_another_version():
    with pytest.raises(InvalidEventError) as caught:
        new_event(**listening_fields(schema_version=2))

    assert caught.value.kind == "unsupported_version"


def test_events_are_immutable():
    event = new_event(**listening_fields())

    with pytest.raises(Exception, match="frozen"):
        event.track_id = 3


def test_unvalidated_events_are_caught_on_revalidation():
    forged = ListeningEvent.model_construct(**{**listening_fields(track_id=-1), "event_id": "0" * 32})

    with pytest.raises(InvalidEventError) as caught:
        events.validate_event(forged)

    assert caught.value.kind == "bad_value"


def test_encoding_refuses_oversized_events(monkeypatch):
    event = new_event(**listening_fields())
    monkeypatch.setattr(events, "MAX_EVENT_BYTES", 100)

    with pytest.raises(InvalidEventError) as caught:
        encode_event(event)

    assert caught.value.kind == "oversized"


def test_decoding_expects_bytes():
    with pytest.raises(TypeError):
        decode_event(encode_event(new_event(**listening_fields())).decode())


def test_events_are_keyed_by_user():
    alice_play = new_event(**listening_fields(type="play"))
    alice_skip = new_event(**listening_fields(type="skip", track_id=5))
    zoe = new_event(**listening_fields(user_id="zoë"))

    assert event_key(alice_play) == event_key(alice_skip) == b"alice"
    assert event_key(zoe) == "zoë".encode()


def test_document_for_mongodb_has_native_types_and_the_event_id_as_key():
    event = new_event(**listening_fields())

    document = to_document(event)

    assert document["_id"] == document["event_id"] == event.event_id
    assert document["track_id"] == 2 and type(document["track_id"]) is int
    assert document["client_ts"] == CLIENT_TS and document["client_ts"].tzinfo is not None
    assert type(document["type"]) is str and document["type"] == "progress"
    assert type(document["source"]) is str and document["source"] == "player"
    assert set(document) == {"_id", *FIELD_NAMES}


def test_spark_schema_names_the_contract_fields_in_order():
    ddl_names = tuple(column.split()[0] for column in SPARK_SCHEMA_DDL.split(", "))

    assert ddl_names == FIELD_NAMES
    assert events.spark_schema().fieldNames() == list(FIELD_NAMES)


def test_importing_the_contract_does_not_import_pyspark():
    code = "import sys, fma_platform.events; print('pyspark' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "False"


@pytest.mark.slow
def test_spark_parses_the_wire_format_with_the_same_contract(spark):
    from pyspark.sql import functions as F

    sent = [
        new_event(**listening_fields()),
        new_event(**listening_fields(user_id="bob", type="like", track_duration_s=None)),
    ]
    raw = spark.createDataFrame([(encode_event(event).decode(),) for event in sent], "value STRING")

    parsed = raw.select(F.from_json("value", SPARK_SCHEMA_DDL, {"mode": "FAILFAST"}).alias("e")).select("e.*")

    rows = sorted((row.asDict() for row in parsed.collect()), key=lambda row: row["user_id"])
    assert [row["event_id"] for row in rows] == [event.event_id for event in sent]
    assert rows[0]["track_id"] == 2 and rows[0]["position_s"] == 12.5
    assert rows[0]["client_ts"].astimezone(timezone.utc) == CLIENT_TS  # naive, in local time
    assert rows[1]["track_duration_s"] is None and rows[1]["type"] == "like"
