"""Names every layer agrees on: MongoDB collections and Kafka topics."""

from __future__ import annotations

from enum import StrEnum


class Collection(StrEnum):
    """MongoDB collections of the platform database."""

    TRACKS = "tracks"
    TRACK_FEATURES = "track_features"
    QUARANTINE = "quarantine"
    ETL_RUNS = "etl_runs"
    DATA_QUALITY = "data_quality"
    LISTENING_EVENTS = "listening_events"
    DEAD_LETTERS = "dead_letters"
    SIMILAR_TRACKS = "similar_tracks"
    RECOMMENDATIONS = "recommendations"
    REALTIME_RECOMMENDATIONS = "realtime_recommendations"
    MODEL_RUNS = "model_runs"
    STREAM_METRICS = "stream_metrics"
    USERS = "users"


def kafka_topics(settings) -> dict[str, int]:
    """Topics the platform needs, with their partition counts, from the settings."""
    return {settings.kafka_events_topic: settings.kafka_events_partitions}
