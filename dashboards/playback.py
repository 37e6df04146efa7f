"""Listener actions into contract events (``fma_platform.events``) sent by the shared producer.

The ``user_id`` always comes from the signed-in server-side ``User``; positions from the
browser are clamped into the contract's bounds (a clip's length, not the catalogue's).
"""

from __future__ import annotations

import math

from dashboards.auth import User
from fma_platform.events import (
    DURATION_SLACK_S,
    MAX_LISTENED_RATIO,
    EventSource,
    EventType,
    ListeningEvent,
    new_event,
)
from fma_platform.producer import EventProducer


def _finite(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def player_event(
    user: User, *, session_id: str, track_id: int, kind: EventType | str, position_s: float,
    listened_s: float = 0.0, duration_s: float | None = None,
) -> ListeningEvent:
    """A validated ``source="player"`` event of ``user``; raises ``InvalidEventError``."""
    duration = _finite(duration_s) or None
    position = _finite(position_s) or 0.0
    listened = _finite(listened_s) or 0.0
    if duration is not None:
        position = min(position, duration + DURATION_SLACK_S)
        listened = min(listened, MAX_LISTENED_RATIO * duration + DURATION_SLACK_S)
    return new_event(
        user_id=user.user_id, track_id=int(track_id), type=EventType(kind), position_s=round(position, 3),
        listened_s=round(listened, 3), track_duration_s=duration, session_id=session_id,
        source=EventSource.PLAYER,
    )


def event_from_report(user: User, session_id: str, report: dict) -> ListeningEvent:
    """The event of one audio-player report (see ``dashboards.player_state``)."""
    return player_event(
        user, session_id=session_id, track_id=report["track_id"], kind=report["type"],
        position_s=report["position"], listened_s=report.get("listened") or 0.0,
        duration_s=report.get("duration"),
    )


def emit(producer: EventProducer, event: ListeningEvent) -> None:
    """Queue ``event`` for Kafka; returns at once (the producer buffers while Kafka is down)."""
    producer.send(event)
