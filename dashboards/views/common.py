"""Pieces several pages present: service banners, track attribution, database sections."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from pymongo.errors import PyMongoError

from dashboards.data import genre_title
from dashboards.services import mongo_health, producer_status
from fma_platform.producer import ProducerState


def service_banners(*, events: bool) -> None:
    """Say when MongoDB or Kafka is down (how many events wait in the buffer, how many were lost)."""
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
    if status.dropped:
        st.warning(f"{status.dropped} listening events were lost: the buffer was full while Kafka was away "
                   f"(the oldest were dropped first).", icon=":material/report:")


@contextmanager
def database_section(what: str) -> Iterator[None]:
    """Show a reason instead of a crash when MongoDB fails inside the block."""
    try:
        yield
    except PyMongoError as exc:
        st.error(f"{what} cannot load: MongoDB did not answer ({type(exc).__name__}: {exc}).")


# Characters that would make user-written text Markdown (links, images, emphasis, code,
# Streamlit's :color[...] directives and :emoji: codes, LaTeX) or raw HTML.
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_\[\](){}<>!|~:$#])")


def literal(text: object) -> str:
    """``text`` as Markdown that shows exactly these characters, on one line.

    FMA metadata is user-written: a title like ``[win](http://x) ![](http://x/p.png)``
    must not become a link or a remote image (a tracking pixel) on a listener's page.
    """
    flat = " ".join(str(text).split())
    return _MARKDOWN_ACTIVE.sub(r"\\\1", flat)


def attribution(track: dict) -> str:
    """Title, artist, album, genre, licence, and the synthetic label when it applies (all escaped)."""
    title, artist = literal(track.get("title") or "Untitled"), literal(track.get("artist_name") or "Unknown artist")
    parts = [f"**{title}** — {artist}"]
    if track.get("album_title"):
        parts.append(f"_{literal(track['album_title'])}_")
    parts.append(literal(track.get("top_genre_title") or genre_title(track.get("top_genre_id"))))
    parts.append(f"licence: {literal(track.get('license') or 'unknown')}")
    if track.get("synthetic"):
        parts.append(":orange-badge[synthetic sample]")
    return " · ".join(parts)


def empty_state(what: str, how: str) -> None:
    st.info(f"No {what} yet: {how}.", icon=":material/hourglass_empty:")
