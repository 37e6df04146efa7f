"""Shared data of the recommendation-training tests: hand-made events and simulated listeners.

Simulated listeners (``simulator``) on a synthetic catalogue of 200 tracks in 8 genres
with embeddings clustered per genre: their planted tastes are what ALS must recover.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count

import pandas as pd
import pytest

from fma_platform.embeddings import embeddings_from_frame
from fma_platform.events import to_document
from simulator import simulate, synthetic_catalogue
from spark_jobs.recommend.events import EVENT_COLUMNS, event_schema
from spark_jobs.recommend.tracks import recommendable_tracks

T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
_EVENT_NUMBERS = count(1)


def event(user, track, kind, *, at, listened=0.0, duration=30.0):
    """One listening event ``at`` minutes after T0 (unique event id)."""
    return {"event_id": f"{next(_EVENT_NUMBERS):032x}", "user_id": user, "track_id": track, "type": kind,
            "position_s": listened, "listened_s": listened, "track_duration_s": duration,
            "client_ts": T0 + timedelta(minutes=at)}


def frame_of(spark, rows):
    return spark.createDataFrame(pd.DataFrame(rows, columns=list(EVENT_COLUMNS)), schema=event_schema())


def simulated_documents(catalogue, *, listeners, events, seed=11):
    result = simulate(catalogue, n_listeners=listeners, target_events=events, seed=seed, start=T0, days=14)
    return [to_document(e) for e in result.events()]


def tracks_of(catalogue: pd.DataFrame):
    """The recommendable tracks of a synthetic catalogue, embeddings through the platform's rule."""
    return recommendable_tracks(catalogue, embeddings_from_frame(catalogue[["track_id", "embedding"]]))


@pytest.fixture(scope="package")
def simulated(spark):
    """(events DataFrame, recommendable tracks) of 300 simulated listeners, ~30k events."""
    catalogue = synthetic_catalogue(tracks=200, genres=8)
    frame = pd.DataFrame(simulated_documents(catalogue, listeners=300, events=30_000))[list(EVENT_COLUMNS)]
    return spark.createDataFrame(frame, schema=event_schema()).cache(), tracks_of(catalogue)
