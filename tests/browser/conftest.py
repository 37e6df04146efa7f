"""A running app for a real browser: SecantusDB, Tansu, the streaming job (spark-submit)
and Streamlit started by the project's own service specs, plus Debian's Chromium driven
by Playwright.

The stack gets its own state folder, database and topic, so nothing here touches the
other tests' data. Chromium comes from Debian packages (``make test`` installs it); the
suite fails, not skips, when it is missing, unless ``BROWSER_TESTS=0`` says the run
has no browser on purpose.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fma_platform.catalogue import track_search_terms
from fma_platform.contracts import Collection
from fma_platform.kafka import ensure_topics
from fma_platform.mongo import platform_db
from fma_platform.settings import PROJECT_ROOT, Settings
from infra import process
from infra.browser_tour import AppDriver, BrowserMissingError, chromium
from infra.process import free_port
from infra.services import streamlit_spec
from infra.streaming import streaming_spec
from pipeline.catalogue import upsert_catalogue

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "browser"
CLIP_SECONDS = 30.0
CLIP_RATE = 22_050


@dataclass(frozen=True)
class Genre:
    genre_id: int  # a real FMA top-level genre id
    title: str
    word: str  # the searchable word every title of the genre carries
    artist: str
    album: str
    base_hz: float  # the tone of its clips


GENRES = (
    Genre(12, "Rock", "Iron", "The Rivets", "Steel Roads", 110.0),
    Genre(15, "Electronic", "Neon", "Ocean Static", "Glow", 220.0),
    Genre(4, "Jazz", "Velvet", "Ada Quartet", "Late Set", 330.0),
)
PER_GENRE = 8


def write_mp3(path: Path, hz: float) -> Path:
    """A real 30 s MP3 (a chord on ``hz``): the browser must decode and play it."""
    t = np.arange(int(CLIP_SECONDS * CLIP_RATE)) / CLIP_RATE
    signal = sum(np.sin(2 * np.pi * hz * ratio * t) for ratio in (1.0, 1.25, 1.5)) / 4
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, signal.astype(np.float32), CLIP_RATE, format="MP3")
    return path


def seed_catalogue(db, audio_dir: Path) -> dict[int, dict]:
    """24 tracks in three genres, real MP3s, unit embeddings in one tight cluster per genre."""
    rng = np.random.default_rng(11)
    tracks, features = [], []
    for g, genre in enumerate(GENRES):
        clip = write_mp3(audio_dir / f"{genre.title.lower()}.mp3", genre.base_hz)
        for i in range(PER_GENRE):
            track_id = 1000 * (g + 1) + i
            title = f"{genre.word} Song {i + 1}"
            track = {
                "track_id": track_id, "title": title, "artist_name": genre.artist, "album_title": genre.album,
                "genre_ids": [genre.genre_id], "top_genre_id": genre.genre_id, "top_genre_title": genre.title,
                "duration": CLIP_SECONDS, "license": "CC BY 4.0", "listens": 1000 - 10 * i, "favorites": 0,
                "interest": 0, "subset": "small", "split": "training", "audio_path": str(clip),
                "dataset": "browser-test", "synthetic": True,
            }
            tracks.append({**track, "search_terms": track_search_terms(track)})
            vector = np.eye(8)[g] + rng.normal(0, 0.05, 8)
            features.append({"track_id": track_id, "embedding": (vector / np.linalg.norm(vector)).tolist(),
                             "model_version": "browser-test"})
    upsert_catalogue(db, tracks)
    db[Collection.TRACK_FEATURES].insert_many(features)
    return {doc["track_id"]: doc for doc in tracks}


@dataclass(frozen=True)
class RunningApp:
    url: str
    settings: Settings
    db: object
    tracks: dict[int, dict]


@pytest.fixture(scope="session")
def running_app(browser, mongo_server, kafka_broker, tmp_path_factory) -> Iterator[RunningApp]:
    """Streamlit and the streaming job on a private database and topic, stopped afterwards
    (only once a browser is there to use them)."""
    tag = uuid.uuid4().hex[:8]
    settings = mongo_server.model_copy(update={
        "state_dir": tmp_path_factory.mktemp("browser-stack"),
        "mongo_db": f"browser_{tag}",
        "kafka_events_topic": f"browser-events-{tag}",
        "streamlit_port": free_port(),
    })
    ensure_topics(settings, {settings.kafka_events_topic: settings.kafka_events_partitions})
    db = platform_db(settings)
    tracks = seed_catalogue(db, settings.state_dir / "audio")
    specs = [streaming_spec(settings, trigger_seconds=0.5), streamlit_spec(settings)]
    try:
        for spec in specs:
            process.start(spec)
        yield RunningApp(url=specs[1].url, settings=settings, db=db, tracks=tracks)
    finally:
        for spec in reversed(specs):
            process.stop(spec)
        for spec in specs:  # keep the service logs beside the screenshots
            if spec.log_path.exists():
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                shutil.copy(spec.log_path, ARTIFACTS / spec.log_path.name)
        db.client.drop_database(settings.mongo_db)  # the client is shared: leave it open


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium under Playwright (Playwright never downloads a browser)."""
    try:
        with chromium() as launched:
            yield launched
    except BrowserMissingError as exc:
        if os.environ.get("BROWSER_TESTS") == "0":
            pytest.skip(f"BROWSER_TESTS=0: {exc}")
        pytest.fail(f"{exc}: `make test` installs it")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's report on the test item (the driver fixture reads it)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture()
def app(browser, running_app, request) -> Iterator[AppDriver]:
    """A fresh browser context (no cookies, no session) on the running app.

    When the test fails, the page as it was is saved as ``FAILED-<test>.png``.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    driver = AppDriver(context.new_page(), running_app.url, ARTIFACTS)
    yield driver
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        driver.shot(f"FAILED-{request.node.name}")
    context.close()
