"""Shared data of the streaming tests: a synthetic catalogue of three tight clusters of
tracks (orthogonal centres, one genre each) and events of made-up listeners."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from fma_platform.contracts import Collection
from fma_platform.events import new_event
from spark_jobs.streaming.records import KafkaRecord

T0 = datetime(2024, 3, 1, 20, 0, tzinfo=timezone.utc)
DIM = 8
PER_CLUSTER = 12
CLUSTERS = 3  # cluster c: tracks 100*(c+1) .. +11, genre 10+c
UNKNOWN_TRACK = 999_999


def cluster_of(track_id: int) -> int:
    return track_id // 100 - 1


def catalogue_arrays(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Track ids and unit embeddings in three tight clusters (orthogonal centres)."""
    rng = np.random.default_rng(seed)
    ids, rows = [], []
    for cluster in range(CLUSTERS):
        for i in range(PER_CLUSTER):
            vector = np.eye(DIM)[cluster] + rng.normal(0, 0.05, DIM)
            ids.append(100 * (cluster + 1) + i)
            rows.append(vector / np.linalg.norm(vector))
    return np.array(ids, dtype=np.int64), np.array(rows)


def seed_catalogue(db) -> None:
    """The synthetic catalogue in ``tracks`` and ``track_features``, as the ETL leaves them."""
    ids, embeddings = catalogue_arrays()
    db[Collection.TRACKS].insert_many([
        {"track_id": int(t), "title": f"Song {t}", "top_genre_id": 10 + cluster_of(int(t)),
         "top_genre_title": f"Genre {10 + cluster_of(int(t))}", "listens": int(t) % 7}
        for t in ids
    ])
    db[Collection.TRACK_FEATURES].insert_many([
        {"track_id": int(t), "embedding": e.tolist(), "model_version": "test"} for t, e in zip(ids, embeddings)
    ])


def event(user: str, track: int, kind: str, at: datetime, *, listened: float | None = None):
    """A valid event of a 30 s track; completes and likes heard it all."""
    position = {"play": 0.0, "complete": 30.0, "like": 30.0, "dislike": 5.0}.get(kind, listened or 0.0)
    return new_event(user_id=user, track_id=track, type=kind, position_s=position,
                     listened_s=position if listened is None else listened, track_duration_s=30.0,
                     client_ts=at, session_id=f"{user}-s", source="simulator")


def history(rows: list[tuple[int, str, float, datetime]]) -> pd.DataFrame:
    """A listener's history from ``(track_id, type, listened_s, client_ts)`` rows."""
    return pd.DataFrame(
        [{"track_id": t, "type": k, "listened_s": listened, "track_duration_s": 30.0, "client_ts": at}
         for t, k, listened, at in rows]
    )


def record(value: bytes | None, offset: int, *, partition: int = 0) -> KafkaRecord:
    return KafkaRecord(value, "events", partition, offset, T0)
