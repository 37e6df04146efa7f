"""Fixtures of the app tests: the app pointed at a fresh test database, seeded documents."""

from __future__ import annotations

import sys
import wave
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboards.auth import Role, create_user
from fma_platform.catalogue import track_search_terms
from fma_platform.settings import get_settings
from pipeline.catalogue import upsert_catalogue

APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
PASSWORD = "correct horse battery"
TIMEOUT_S = 20


def _reset_caches() -> None:
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()  # closes the cached event producer


@pytest.fixture()
def app_env(monkeypatch):
    """Set ``FMA_*`` variables for the app; settings and Streamlit caches are reset around."""
    def point(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(f"FMA_{name.upper()}", value)
        _reset_caches()
    yield point
    monkeypatch.undo()
    _reset_caches()


@pytest.fixture()
def app_db(mongo_db, app_env):
    """The test database, with the app's settings pointing at it."""
    app_env(mongo_db=mongo_db.name)
    assert get_settings().mongo_db == mongo_db.name
    return mongo_db


def write_clip(path: Path, *, seconds: float = 1.0, rate: int = 8000) -> Path:
    """A silent mono WAV file: real bytes for the player to serve."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(rate)
        clip.writeframes(b"\x00\x00" * int(seconds * rate))
    return path


def track_doc(track_id: int, title: str, artist: str, album: str, genre_id: int, genre: str, *,
              listens: int, audio_path: Path) -> dict:
    track = {
        "track_id": track_id, "title": title, "artist_name": artist, "album_title": album,
        "genre_ids": [genre_id], "top_genre_id": genre_id, "top_genre_title": genre, "duration": 30.0,
        "license": "CC BY 4.0", "listens": listens, "favorites": 0, "interest": 0, "subset": "small",
        "split": "training", "audio_path": str(audio_path), "dataset": "sample", "synthetic": True,
    }
    return {**track, "search_terms": track_search_terms(track)}


@pytest.fixture()
def catalogue(app_db, tmp_path) -> dict[int, dict]:
    """Five tracks in Rock, Electronic and Jazz, each with a real (silent) audio file."""
    rows = [
        (2, "Midnight Engine", "The Rivets", "Steel Roads", 12, "Rock", 900),
        (3, "Paper Lanterns", "Ocean Static", "Glow", 15, "Electronic", 700),
        (5, "Blue Corner", "Ada Quartet", "Late Set", 4, "Jazz", 500),
        (10, "Engine Room", "The Rivets", "Steel Roads", 12, "Rock", 300),
        (20, "Neon Drift", "Ocean Static", "Glow", 15, "Electronic", 100),
    ]
    docs = [track_doc(*row[:6], listens=row[6], audio_path=write_clip(tmp_path / f"{row[0]:06d}.wav"))
            for row in rows]
    upsert_catalogue(app_db, docs)
    return {doc["track_id"]: doc for doc in docs}


@pytest.fixture()
def listener(app_db):
    return create_user(app_db, "lena", PASSWORD, role=Role.LISTENER, genres=[12])


@pytest.fixture()
def analyst(app_db):
    return create_user(app_db, "ana", PASSWORD, role=Role.ANALYST)


def _page_script(name: str) -> None:
    from dashboards.views import PAGE_FUNCTIONS

    PAGE_FUNCTIONS[name]()


@pytest.fixture(autouse=True)
def _main_module_restored():
    """Streamlit's AppTest leaves its temporary page script as ``sys.modules["__main__"]``;
    a later test that starts a ``spawn`` process pool (the extractor's) would make every
    child re-run that script and die. Put the real ``__main__`` back after each test."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


def page_test(name: str, user=None) -> AppTest:
    """An AppTest of one page, signed in as ``user`` (None: anonymous), not yet run."""
    at = AppTest.from_function(_page_script, args=(name,), default_timeout=TIMEOUT_S)
    if user is not None:
        at.session_state["auth_user"] = user
    return at


def app_test() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)


def texts(at: AppTest) -> str:
    """Everything a reader sees as text on the page (markdown, captions, alerts, titles)."""
    parts = []
    for kind in ("title", "subheader", "markdown", "caption", "info", "warning", "error", "success", "metric"):
        for element in getattr(at, kind):
            parts.append(str(getattr(element, "label", "")) + " " + str(element.value))
    return "\n".join(parts)


def recent(minutes: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(minutes=minutes)


__all__ = ["PASSWORD", "app_test", "page_test", "texts", "recent"]
