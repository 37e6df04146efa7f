"""Reading a test topic back: explicit assignment from the beginning, never a consumer group
(Tansu's group joins take ~20 s)."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition


def consume_all(settings, topic: str, expected: int, *, timeout_s: float = 15.0) -> list:
    """Every record of ``topic`` from the beginning, in offset order per partition.

    Polls until ``expected`` records came, then once more so a duplicate would show.
    """
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=100)
    try:
        partitions = consumer.partitions_for_topic(topic) or {0, 1, 2}
        consumer.assign([TopicPartition(topic, partition) for partition in sorted(partitions)])
        consumer.seek_to_beginning()
        records = []
        deadline = time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
        return records
    finally:
        consumer.close()
