"""The event producer against a real broker: exactly once, keyed, ordered, and patient.

Consumers use explicit partition assignment (consumer groups are slow on Tansu). Tests
that need the broker down or restarted run their own Tansu on a free port with a private
state folder, so the session's broker is never touched. Restarts are real: a producer in
a child process buffers events while the broker is down and is killed with SIGKILL.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from contextlib import contextmanager

import pytest
from kafka.partitioner.default import murmur2

from fma_platform.events import InvalidEventError, ListeningEvent, decode_event, new_event
from fma_platform.kafka import ensure_topics
from fma_platform.producer import EventProducer, ProducerClosedError, ProducerState
from fma_platform.settings import PROJECT_ROOT
from infra import process
from infra.process import free_port
from infra.services import kafka_spec
from tests.kafka_helpers import consume_all

PARTITIONS = 3


def listening_event(user_id: str, track_id: int) -> ListeningEvent:
    return new_event(
        user_id=user_id, track_id=track_id, type="progress", position_s=1.0, listened_s=1.0,
        track_duration_s=30.0, session_id=f"{user_id}-session", source="simulator",
    )


def key_partition(key: bytes, partitions: int = PARTITIONS) -> int:
    """The partition the Java client and kafka-python pick for ``key`` (murmur2)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@contextmanager
def own_broker(settings, *, stop_timeout: float = 20.0):
    """A Tansu broker of this test on ``settings``' port, stopped afterwards.

    Tansu lingers ~5 s on SIGTERM while clients are connected: close them first, or use a
    short ``stop_timeout`` (then SIGKILL) to simulate a crash.
    """
    spec = kafka_spec(settings)
    process.start(spec)
    try:
        yield spec
    finally:
        process.stop(spec, timeout=stop_timeout)


@pytest.fixture()
def broker_free_settings(settings, tmp_path):
    """Settings for a port where no broker runs (yet), with a private state folder."""
    return settings.model_copy(update={"kafka_port": free_port(), "state_dir": tmp_path})


def assert_per_user_order(records, sent: list[ListeningEvent]) -> None:
    received = defaultdict(list)
    for record in records:
        received[record.key.decode()].append(decode_event(record.value).event_id)
    expected = defaultdict(list)
    for event in sent:
        expected[event.user_id].append(event.event_id)
    assert received == expected


def test_events_arrive_exactly_once_on_their_key_partition_in_user_order(kafka_broker, unique_topic):
    sent = [listening_event(f"user-{n % 4}", track_id=n + 1) for n in range(60)]

    with EventProducer(kafka_broker, topic=unique_topic) as producer:
        for event in sent:
            producer.send(event)
        assert producer.flush(10)
        status = producer.status()

    assert (status.state, status.sent, status.buffered, status.dropped) == (ProducerState.CONNECTED, 60, 0, 0)
    records = consume_all(kafka_broker, unique_topic, expected=60)
    assert sorted(decode_event(r.value).event_id for r in records) == sorted(e.event_id for e in sent)
    for record in records:
        assert record.key == decode_event(record.value).user_id.encode()
        assert record.partition == key_partition(record.key)
    assert_per_user_order(records, sent)


def test_invalid_events_raise_and_never_reach_kafka(kafka_broker, unique_topic):
    valid = listening_event("alice", track_id=1)
    forged = ListeningEvent.model_construct(**{**valid.model_dump(), "track_id": -1})

    with EventProducer(kafka_broker, topic=unique_topic) as producer:
        with pytest.raises(InvalidEventError) as caught:
            producer.send(forged)
        producer.send(valid)
        assert producer.flush(10)

    assert caught.value.kind == "bad_value"
    records = consume_all(kafka_broker, unique_topic, expected=1)
    assert [decode_event(r.value) for r in records] == [valid]


def test_concurrent_senders_lose_nothing(kafka_broker, unique_topic):
    per_thread = 50
    sent_by_thread = [
        [listening_event(f"listener-{thread}", track_id=n + 1) for n in range(per_thread)] for thread in range(4)
    ]

    with EventProducer(kafka_broker, topic=unique_topic) as producer:
        threads = [
            threading.Thread(target=lambda batch=batch: [producer.send(event) for event in batch])
            for batch in sent_by_thread
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert producer.flush(10)

    records = consume_all(kafka_broker, unique_topic, expected=4 * per_thread)
    assert_per_user_order(records, [event for events in sent_by_thread for event in events])


def test_send_after_close_is_refused(kafka_broker, unique_topic):
    producer = EventProducer(kafka_broker, topic=unique_topic)
    assert producer.status().state == ProducerState.CONNECTED
    assert producer.close() == 0

    with pytest.raises(ProducerClosedError):
        producer.send(listening_event("alice", track_id=1))
    assert producer.status().state == ProducerState.CLOSED


def test_broker_down_at_start_buffers_then_delivers_in_order_when_it_is_back(broker_free_settings):
    topic = broker_free_settings.kafka_events_topic
    sent = [listening_event(f"user-{n % 2}", track_id=n + 1) for n in range(13)]

    started = time.monotonic()
    # A long backoff: only flush() retries, so nothing reaches the broker before its topic exists.
    producer = EventProducer(broker_free_settings, max_buffered=10, retry_backoff_s=600)
    try:
        assert time.monotonic() - started < 3.0
        started = time.monotonic()
        for event in sent:
            producer.send(event)
        assert time.monotonic() - started < 0.5
        waiting = producer.status()
        waiting_counts = (waiting.state, waiting.buffered, waiting.dropped, waiting.sent)
        assert waiting_counts == (ProducerState.BUFFERING, 10, 3, 0)
        assert "cannot reach Kafka" in waiting.last_error

        with own_broker(broker_free_settings):
            ensure_topics(broker_free_settings, {topic: PARTITIONS})  # Tansu forgets topics
            assert producer.flush(15)
            delivered = producer.status()
            producer.close()
            records = consume_all(broker_free_settings, topic, expected=10)
    finally:
        producer.close(timeout=1)

    delivered_counts = (delivered.state, delivered.buffered, delivered.dropped, delivered.sent)
    assert delivered_counts == (ProducerState.CONNECTED, 0, 3, 10)
    assert_per_user_order(records, sent[3:])  # the three oldest were dropped


def test_flush_keeps_retrying_until_the_broker_answers(broker_free_settings):
    event = listening_event("alice", track_id=1)
    producer = EventProducer(broker_free_settings, connect_timeout_s=0.5, retry_backoff_s=0.2)
    producer.send(event)
    outcome = {}
    flusher = threading.Thread(target=lambda: outcome.update(flushed=producer.flush(20)))
    flusher.start()
    try:
        time.sleep(1.0)  # a few failed attempts while nothing listens
        with own_broker(broker_free_settings):
            ensure_topics(broker_free_settings, {broker_free_settings.kafka_events_topic: PARTITIONS})
            flusher.join(20)
            status = producer.status()
            producer.close()
            records = consume_all(broker_free_settings, broker_free_settings.kafka_events_topic, expected=1)
    finally:
        producer.close(timeout=1)
        flusher.join(1)

    assert outcome == {"flushed": True}
    assert (status.state, status.sent, status.buffered) == (ProducerState.CONNECTED, 1, 0)
    assert [decode_event(r.value) for r in records] == [event]


def test_flush_and_close_return_in_bounded_time_while_the_broker_is_down(broker_free_settings):
    producer = EventProducer(broker_free_settings, connect_timeout_s=1.0, retry_backoff_s=600)
    producer.send(listening_event("alice", track_id=1))

    started = time.monotonic()
    assert producer.flush(0.5) is False
    assert producer.close(timeout=0.5) == 1
    assert time.monotonic() - started < 5.0


def test_broker_lost_while_sending_buffers_and_recovers(broker_free_settings):
    topic = broker_free_settings.kafka_events_topic
    before = [listening_event("alice", track_id=n + 1) for n in range(3)]
    during = [listening_event("alice", track_id=n + 10) for n in range(3)]

    with own_broker(broker_free_settings, stop_timeout=0.5):  # the broker crashes
        ensure_topics(broker_free_settings, {topic: PARTITIONS})
        producer = EventProducer(
            broker_free_settings, request_timeout_s=1.0, delivery_timeout_s=2.0, retry_backoff_s=600,
        )
        for event in before:
            producer.send(event)
        assert producer.flush(10)
    try:
        for event in during:
            producer.send(event)
        deadline = time.monotonic() + 10
        while producer.status().state != ProducerState.BUFFERING and time.monotonic() < deadline:
            time.sleep(0.1)
        waiting = producer.status()
        assert (waiting.state, waiting.buffered, waiting.sent) == (ProducerState.BUFFERING, 3, 3)

        with own_broker(broker_free_settings):
            ensure_topics(broker_free_settings, {topic: PARTITIONS})  # the restart lost the topic
            assert producer.flush(15)
            recovered = producer.status()
            producer.close()
            records = consume_all(broker_free_settings, topic, expected=3)
    finally:
        producer.close(timeout=1)

    assert (recovered.state, recovered.buffered, recovered.sent) == (ProducerState.CONNECTED, 0, 6)
    assert [decode_event(r.value).event_id for r in records] == [e.event_id for e in during]


# --- the outbox on disk: restarts and overflow ---------------------------------------------
BUFFERING_CHILD = """
import json, sys, time
from fma_platform.events import encode_event, new_event
from fma_platform.producer import EventProducer
from fma_platform.settings import get_settings

count, tag = int(sys.argv[1]), sys.argv[2]
producer = EventProducer(get_settings(), retry_backoff_s=600, connect_timeout_s=0.5)
events = [new_event(user_id=f"{tag}-{n % 3}", track_id=n + 1, type="progress", position_s=1.0, listened_s=1.0,
                    track_duration_s=30.0, session_id=f"{tag}-s", source="simulator") for n in range(count)]
for event in events:
    producer.send(event)
status = producer.status()
print(json.dumps({"sent": [encode_event(e).decode() for e in events], "buffered": status.buffered,
                  "outbox": status.outbox}), flush=True)
time.sleep(600)  # killed with SIGKILL before this ends
"""


@contextmanager
def buffering_process(settings, count: int, tag: str):
    """A child process that sends ``count`` events while no broker runs and stays alive;
    it dies by SIGKILL (no close, no flush) when the block ends. Yields the events it
    accepted and its report."""
    env = {**os.environ, "FMA_STATE_DIR": str(settings.state_dir), "FMA_KAFKA_PORT": str(settings.kafka_port)}
    child = subprocess.Popen([sys.executable, "-c", BUFFERING_CHILD, str(count), tag], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=env, cwd=PROJECT_ROOT, text=True)
    try:
        report = json.loads(child.stdout.readline())
        yield [decode_event(wire.encode()) for wire in report.pop("sent")], report
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL


def deliver_after_restart(settings, **producer_options) -> tuple:
    """A new producer on the same state folder; the broker comes up; its status before and
    after the flush, and what reached the topic."""
    topic = settings.kafka_events_topic
    producer = EventProducer(settings, retry_backoff_s=600, **producer_options)
    try:
        restarted = producer.status()
        with own_broker(settings):
            ensure_topics(settings, {topic: PARTITIONS})
            assert producer.flush(30)
            delivered = producer.status()
            producer.close()
            records = consume_all(settings, topic, expected=restarted.buffered)
    finally:
        producer.close(timeout=1)
    return restarted, delivered, records


def test_events_of_a_killed_producer_arrive_exactly_once_after_a_restart(broker_free_settings):
    with buffering_process(broker_free_settings, 500, "a") as (sent, report):
        pass
    assert report == {"buffered": 500, "outbox": str(
        broker_free_settings.state_dir / "outbox" / "fma-event-producer--listening-events.sqlite")}

    restarted, delivered, records = deliver_after_restart(broker_free_settings)

    assert (restarted.state, restarted.recovered, restarted.buffered, restarted.dropped) == (
        ProducerState.BUFFERING, 500, 500, 0)
    assert (delivered.sent, delivered.buffered) == (500, 0)
    received = [decode_event(record.value).event_id for record in records]
    assert len(received) == 500 and set(received) == {event.event_id for event in sent}  # each exactly once
    assert_per_user_order(records, sent)


def test_two_killed_producers_of_one_outbox_are_both_replayed_by_the_next(broker_free_settings):
    with buffering_process(broker_free_settings, 200, "a") as (sent_a, report_a), \
            buffering_process(broker_free_settings, 150, "b") as (sent_b, report_b):
        assert report_a["outbox"] != report_b["outbox"]  # both alive: the second took the next slot

    restarted, delivered, records = deliver_after_restart(broker_free_settings)

    assert (restarted.recovered, delivered.sent, delivered.buffered) == (350, 350, 0)
    received = sorted(decode_event(record.value).event_id for record in records)
    assert received == sorted(event.event_id for event in sent_a + sent_b)
    assert_per_user_order(records, sent_a + sent_b)
    assert sorted(path.name for path in (broker_free_settings.state_dir / "outbox").glob("*.sqlite")) == [
        "fma-event-producer--listening-events.sqlite"]  # the adopted slot is gone


def test_a_full_outbox_drops_the_oldest_counts_them_and_keeps_the_count_across_restarts(broker_free_settings,
                                                                                        caplog):
    events = [listening_event(f"user-{n % 2}", track_id=n + 1) for n in range(13)]
    caplog.set_level(logging.WARNING, logger="fma_platform.producer")
    producer = EventProducer(broker_free_settings, max_buffered=10, retry_backoff_s=600, connect_timeout_s=0.5)
    for event in events:
        producer.send(event)
    full = producer.status()
    assert producer.close(timeout=0.2) == 10
    assert sum("is full" in r.getMessage() for r in caplog.records) == 1  # logged once per overflow

    restarted, delivered, records = deliver_after_restart(broker_free_settings, max_buffered=10)

    assert (full.buffered, full.dropped) == (10, 3)
    assert (restarted.recovered, restarted.buffered, restarted.dropped) == (10, 10, 3)
    assert (delivered.sent, delivered.dropped) == (10, 3)
    assert_per_user_order(records, events[3:])  # the three oldest were dropped, the rest arrived in order
