"""Live listening page (analysts): event rate, active listeners, trending, stream health."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import streamlit as st

from dashboards.analytics import (
    active_listeners,
    events_per_minute,
    latest_trending,
    recent_events,
    stream_health,
    stream_heartbeat,
)
from dashboards.auth import Role
from dashboards.charts import events_per_minute_chart, stream_lag_chart, stream_latency_chart, trending_chart
from dashboards.playback import rejected_report_counts
from dashboards.views.common import database_section, empty_state, service_banners
from dashboards.services import database
from dashboards.session import require_role

WINDOW = timedelta(minutes=60)


def live_page() -> None:
    require_role(Role.ANALYST)
    st.title("Live listening")
    service_banners(events=False)
    _live_panels()


@st.fragment(run_every="10s")
def _live_panels() -> None:
    now = datetime.now(timezone.utc)
    with database_section("Live listening"):
        db = database()
        events = recent_events(db, since=now - WINDOW)
        rejected = rejected_report_counts(db, since=now - WINDOW)
        rate, listeners, refused = st.columns(3)
        rate.metric("Events in the last hour", len(events))
        listeners.metric("Active listeners (5 min)", active_listeners(events, now=now))
        refused.metric("Player reports refused (last hour)", sum(rejected.values()),
                       help="reports the server did not turn into events: forged, replayed or over the rate limit")
        if rejected:
            st.caption("Refused by reason: " + ", ".join(f"{reason} {count}" for reason, count in
                                                         sorted(rejected.items(), key=lambda kv: -kv[1])))
        st.subheader("Events per minute")
        if events.empty:
            empty_state("listening events in the last hour",
                        "start the streaming job and play tracks (or run the listener simulator)")
        else:
            st.altair_chart(events_per_minute_chart(events_per_minute(events), start=now - WINDOW, end=now),
                            key="events_per_minute_chart")
        tracks, genres = st.columns(2)
        with tracks:
            _trending(db, "track", "Trending tracks")
        with genres:
            _trending(db, "genre", "Trending genres")
        _stream(db, now)


def _trending(db, kind: str, title: str) -> None:
    st.subheader(title)
    trending = latest_trending(db, kind)
    if trending.empty:
        empty_state(f"trending {kind}s", "the streaming job writes `trending` windows")
    else:
        st.caption(f"Window from {trending['window_start'].iloc[0]}")
        st.altair_chart(trending_chart(trending, label=kind), key=f"trending_{kind}_chart")


def _stream(db, now: datetime) -> None:
    st.subheader("Stream latency and lag")
    heartbeat = stream_heartbeat(db)
    if heartbeat is not None:
        age_s = max(0.0, (now - heartbeat.updated_at).total_seconds())
        state = "active" if heartbeat.is_active else f"stopped ({heartbeat.error or heartbeat.status or 'no error'})"
        behind = "" if heartbeat.total_lag is None else f", {heartbeat.total_lag} records behind"
        st.caption(f"Streaming job {heartbeat.query_name}: {state}, last heartbeat {age_s:.0f} s ago{behind}.")
    health = stream_health(db)
    if health.empty:
        empty_state("stream metrics", "start the Spark streaming job")
        return
    latency, lag = st.columns(2)
    latency.altair_chart(stream_latency_chart(health), key="stream_latency_chart")
    lag.altair_chart(stream_lag_chart(health), key="stream_lag_chart")
