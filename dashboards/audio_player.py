"""The monitored audio player: a Streamlit components-v2 element around HTML5 <audio>.

``st.audio`` cannot tell Python what the listener does, so this small component plays
the track's own file (read from ``audio_path`` on disk, sent as a data URL) and reports
play (once per play), pause, progress (every ~10 s listened), complete (ended) and skip
(its Next button before the end, with the position reached) as the state value ``log``.
Nothing in that log is trusted: ``dashboards.report_guard`` checks every entry.
"""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path

import streamlit as st

from dashboards.errors import DashboardError

COMPONENT_NAME = "fma_audio_player"
PLAYER_KEY = "fma_audio_player"
PROGRESS_EVERY_S = 10
_ASSETS = Path(__file__).resolve().parent / "components"
MIME_TYPES = {".mp3": "audio/mpeg", ".wav": "audio/wav", ".ogg": "audio/ogg", ".flac": "audio/flac"}


class AudioUnavailableError(DashboardError):
    """The track's audio file is missing or unreadable."""


@cache
def _component():
    return st.components.v2.component(
        COMPONENT_NAME,
        js=(_ASSETS / "audio_player.js").read_text(encoding="utf-8"),
        css=(_ASSETS / "audio_player.css").read_text(encoding="utf-8"),
    )


@st.cache_data(max_entries=16, show_spinner=False)
def audio_data_url(audio_path: str) -> str:
    """The file as a ``data:`` URL; ``AudioUnavailableError`` names the path when it is missing."""
    path = Path(audio_path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AudioUnavailableError(f"cannot read audio file {path}: {exc.strerror or exc}") from exc
    mime = MIME_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


def audio_player(track: dict, *, token: str, autoplay: bool) -> list:
    """Mount the player for ``track`` (this play's ``token``); return its report log (unchecked)."""
    data = {
        "key": PLAYER_KEY, "token": token, "track_id": int(track["track_id"]),
        "title": f"{track.get('title', '')} — {track.get('artist_name', '')}",
        "src": audio_data_url(str(track["audio_path"])), "autoplay": autoplay,
        "progress_every_s": PROGRESS_EVERY_S,
    }
    result = _component()(key=PLAYER_KEY, data=data, default={"log": []}, on_log_change=lambda: None)
    entries = result.get("log")
    return entries if isinstance(entries, list) else []
