"""Names and document shapes every layer agrees on: MongoDB collections, Kafka topics,
model families and their pointers.

Document shapes (the fields each writer guarantees; readers may rely on them):

``tracks`` (by ``track_id``): track_id, title, artist_name, album_title, genre_ids,
  top_genre_id, top_genre_title, duration, license, listens, favorites, interest, subset,
  split, audio_path, dataset, synthetic, search_terms.
``track_features`` (by ``track_id``): track_id, features {518 flat FMA names: float},
  duration_seconds, sample_rate, analysis_sample_rate, tempo_bpm, extract_seconds,
  embedding [float] (L2-normalised PCA), model_version, etl_run_id, loaded_at.
``similar_tracks`` (by ``track_id``): track_id, neighbours [{track_id, distance, score}]
  best first, k, model_version, method ("lsh" | "exact"), computed_at.
``recommendations`` (by ``user_id``): user_id, items [{track_id, score, reason}] best
  first, model_version, source ("als" | "hybrid" | "popular" | "content"), generated_at.
``realtime_recommendations`` (by ``user_id``): user_id, items [{track_id, score, reason}],
  triggered_by (event_id), event_time, updated_at, model_version.
``listening_events`` (by ``_id`` = event_id): see ``fma_platform.events.to_document``.
``dead_letters``: reason_kind, reason, raw (str), topic, partition, offset, received_at.
``model_runs`` (by ``run_id``): see ``fma_platform.model_runs`` (the contract and its writer).
``realtime_value`` (by ``run_id``, the training run's final ALS run): job_run_id, model_version,
  k, listeners, points, plays, live / batch / uplift {hit_rate_at_k, ndcg_at_k and their
  ``*_ci_low`` / ``*_ci_high``}, live_vs_batch_hit_rate, ci_confidence, ci_resamples, by_step
  [{step, points, live_hit_rate_at_k, batch_hit_rate_at_k}], replay {play_rule, ...},
  data_snapshot, data_source {source: events}, seconds, created_at, updated_at; written by
  ``spark_jobs.recommend.realtime_value``.
``stream_metrics``: heartbeat and per-batch documents, see ``fma_platform.stream_status``.
``trending`` (by ``window_start``, ``kind``, ``key``): window_start, window_end, kind
  ("track" | "genre"), key, plays, completes, skips, likes.
``users`` (by ``username``): username, user_id, role ("listener" | "analyst"),
  password_hash, genres [top-level genre ids], created_at.
``login_attempts``: kind ("login" | "signup"), username_key, client_key (SHA-256 hex), at,
  expires_at (TTL); written by ``dashboards.throttle``.
``rejected_reports`` (by ``_id`` "<hour>/<session_id>/<reason>"): hour, session_id, user_id,
  reason, count, last_at; player reports the server refused (``dashboards.playback``).
"""

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
    TRENDING = "trending"
    USERS = "users"
    LOGIN_ATTEMPTS = "login_attempts"
    REJECTED_REPORTS = "rejected_reports"
    SIMULATED_LISTENERS = "simulated_listeners"
    REALTIME_VALUE = "realtime_value"  # live vs batch lists replayed on a training run's holdout


class ModelFamily(StrEnum):
    """Model folders under ``settings.models_dir``, each a ``fma_platform.model_store.ModelStore``."""

    FEATURE_TRANSFORM = "feature_transform"  # scaler + PCA; pointer CURRENT (read by the stream too)
    SIMILAR_TRACKS = "similar_tracks"  # the LSH index; pointer CURRENT
    ALS = "als"  # user_factors.parquet + item_factors.parquet; pointer CHAMPION


# Files of an ALS version (written by the training job, read by the stream).
ALS_USER_FACTORS = "user_factors.parquet"  # user_id, features
ALS_ITEM_FACTORS = "item_factors.parquet"  # track_id, features


class Pointer(StrEnum):
    """Named pointers of a model store: the version a family's readers use."""

    CURRENT = "CURRENT"  # the newest published version
    CHAMPION = "CHAMPION"  # the version that won the promotion rule


def kafka_topics(settings) -> dict[str, int]:
    """Topics the platform needs, with their partition counts, from the settings."""
    return {settings.kafka_events_topic: settings.kafka_events_partitions}
