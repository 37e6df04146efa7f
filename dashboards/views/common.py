"""Pieces several pages present: service banners, track attribution, database sections."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from pymongo.errors import PyMongoError

from dashboards.data import genre_title
from dashboards.services import mongo_health, producer_status
from fma_platform.producer import ProducerState


def service_banners(*, events: bool) -> None:
    """Say when MongoDB or Kafka is down (and how many events wait in the buffer)."""
    health = mongo_health()
    if not health.up:
        st.error(f"MongoDB is unavailable: catalogue and recommendations cannot load. "
                 f"Playback of the current track keeps working. ({health.error})", icon=":material/database:")
    if not events:
        return
    status = producer_status()
    if status.state != ProducerState.CONNECTED:
        st.warning(f"Kafka is unavailable: your listening events are buffered ({status.buffered} waiting) "
                   f"and will be sent when the broker is back. ({status.last_error or 'connecting'})",
                   icon=":material/cloud_off:")
    elif status.buffered:
        st.caption(f"Sending {status.buffered} buffered events…")


@contextmanager
def database_section(what: str) -> Iterator[None]:
    """Show a reason instead of a crash when MongoDB fails inside the block."""
    try:
        yield
    except PyMongoError as exc:
        st.error(f"{what} cannot load: MongoDB did not answer ({type(exc).__name__}: {exc}).")


def attribution(track: dict) -> str:
    """Title, artist, album, genre, licence, and the synthetic label when it applies."""
    parts = [f"**{track.get('title') or 'Untitled'}** — {track.get('artist_name') or 'Unknown artist'}"]
    if track.get("album_title"):
        parts.append(f"_{track['album_title']}_")
    parts.append(track.get("top_genre_title") or genre_title(track.get("top_genre_id")))
    parts.append(f"licence: {track.get('license') or 'unknown'}")
    if track.get("synthetic"):
        parts.append(":orange-badge[synthetic sample]")
    return " · ".join(parts)


def empty_state(what: str, how: str) -> None:
    st.info(f"No {what} yet: {how}.", icon=":material/hourglass_empty:")
