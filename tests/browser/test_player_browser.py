"""A listener in a real browser: sign up, search, play, skip, like, and watch "Up next"
react once the streaming job has processed the events; an analyst page is refused; an
analyst sees the live listening the stream produced.

Headless Chromium (Debian's) drives the running Streamlit app; the audio component's
JavaScript plays real MP3s and reports to Python, the app sends the events to Kafka,
the spark-submit streaming job writes recommendations to MongoDB, and the page shows
them. Screenshots of every step go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from dashboards.auth import Role, create_user
from fma_platform.contracts import Collection
from fma_platform.events import new_event
from fma_platform.producer import EventProducer
from infra.browser_tour import POPULAR_CAPTION, AppDriver, pick_tracks
from tests.browser.conftest import GENRES, RunningApp

pytestmark = [pytest.mark.slow, pytest.mark.stack, pytest.mark.browser]

ROCK, ELECTRONIC, JAZZ = GENRES
PASSWORD = "a long listener passphrase"


def events_of(db, user_id: str) -> list[dict]:
    return list(db[Collection.LISTENING_EVENTS].find({"user_id": user_id}).sort("client_ts", 1))


def wait_for_events(db, user_id: str, kinds: set[str], timeout_s: float = 60) -> list[dict]:
    """The listener's stored events once every kind in ``kinds`` is among them."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events = events_of(db, user_id)
        if kinds <= {e["type"] for e in events}:
            return events
        time.sleep(0.5)
    raise AssertionError(f"events {kinds} not stored; stored: {[e['type'] for e in events_of(db, user_id)]}")


def first_of(running_app: RunningApp, genre) -> dict:
    return next(t for t in running_app.tracks.values() if t["top_genre_id"] == genre.genre_id)


def test_listener_plays_skips_likes_and_up_next_follows(running_app: RunningApp, app: AppDriver):
    db = running_app.db
    rock, electronic = first_of(running_app, ROCK), first_of(running_app, ELECTRONIC)

    # Sign up picking Jazz: a newcomer gets popular Jazz tracks, with reasons.
    app.sign_up("browser_lena", PASSWORD, JAZZ.title, shot="01-sign-up")
    user = db[Collection.USERS].find_one({"username": "browser_lena"})
    assert user is not None and user["role"] == "listener" and user["genres"] == [JAZZ.genre_id]
    app.page.get_by_text(POPULAR_CAPTION).wait_for()
    assert app.page.get_by_text("popular in Jazz, a genre you picked").count() >= 3
    app.shot("02-player-new-listener")

    # Play a Rock track in the browser's <audio>, then skip it with the player's Skip button.
    app.play_from_search(rock["track_id"], rock["title"])
    app.shot("03-playing-rock")
    app.skip()

    # Play an Electronic track and like it.
    app.play_from_search(electronic["track_id"], electronic["title"])
    app.like(electronic["title"])
    app.shot("04-liked-electronic")

    # The events reached Kafka and the streaming job stored them, under the session's user id.
    events = wait_for_events(db, user["user_id"], {"play", "skip", "like"})
    assert {e["user_id"] for e in events} == {user["user_id"]}
    skip = next(e for e in events if e["type"] == "skip")
    assert skip["track_id"] == rock["track_id"] and 1.0 < skip["position_s"] < 30.0
    like = next(e for e in events if e["type"] == "like")
    assert like["track_id"] == electronic["track_id"]
    assert {e["track_id"] for e in events if e["type"] == "play"} == {rock["track_id"], electronic["track_id"]}

    # "Up next" switches to the live recommendations: Electronic first, the skipped Rock
    # track's genre pushed down, the track just heard left out, every item with its reason.
    app.wait_for_live_up_next()
    app.shot("05-up-next-live")
    shown = app.shown_up_next()
    genres = [running_app.tracks[track_id]["top_genre_id"] for track_id in shown]
    assert len(shown) >= 6 and genres[:3] == [ELECTRONIC.genre_id] * 3, genres
    assert ROCK.genre_id not in genres[:6], genres
    assert electronic["track_id"] not in shown
    assert len(app.up_next_reasons()) == len(shown), app.up_next_reasons()
    recs = db[Collection.REALTIME_RECOMMENDATIONS].find_one({"user_id": user["user_id"]})
    assert recs["event_time"] >= max(e["client_ts"] for e in events) - timedelta(seconds=1)


def test_a_listener_is_refused_the_analyst_pages(running_app: RunningApp, app: AppDriver):
    """The listener's navigation has no analyst page, and typing its address shows none.

    (A typed address reloads the page, which starts a new, signed-out Streamlit session;
    the in-session role check of every analyst page is covered by the AppTest suite.)
    """
    app.sign_up("browser_max", PASSWORD, ROCK.title)
    assert sorted(app.nav_titles()) == ["Account", "Player", "Your library"]
    app.page.goto(f"{running_app.url}/pipeline")
    app.page.get_by_text("Page not found").wait_for()
    app.shot("06-listener-refused-pipeline")
    assert app.heading("Pipeline").count() == 0
    assert app.page.get_by_text("Great Expectations").count() == 0


def test_an_analyst_sees_live_listening_from_the_stream(running_app: RunningApp, app: AppDriver):
    """Events a listener sends reach the analyst's Live listening page through Kafka and Spark."""
    db = running_app.db
    listener = create_user(db, "browser_sam", PASSWORD, role=Role.LISTENER, genres=[ROCK.genre_id])
    create_user(db, "browser_ana", PASSWORD, role=Role.ANALYST)
    rock_tracks = [t for t in running_app.tracks.values() if t["top_genre_id"] == ROCK.genre_id][:3]
    producer = EventProducer(running_app.settings)
    try:
        for track in rock_tracks:
            producer.send(new_event(user_id=listener.user_id, track_id=track["track_id"], type="complete",
                                    position_s=30.0, listened_s=30.0, track_duration_s=30.0,
                                    session_id="browser-sam", source="player"))
        assert producer.flush(30)
    finally:
        producer.close()
    wait_for_events(db, listener.user_id, {"complete"})

    app.log_in("browser_ana", PASSWORD, lands_on="Pipeline")
    titles = app.nav_titles()
    assert {"Pipeline", "Models", "Live listening", "Catalogue", "Platform"} <= set(titles)
    assert "Player" not in titles
    app.shot("07-analyst-pipeline")

    app.open_page("Live listening")
    charts = app.page.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(5, timeout=90_000)  # per minute, 2 trending, latency, lag
    metric = app.page.get_by_test_id("stMetric").filter(has_text="Events in the last hour")
    assert int(metric.get_by_test_id("stMetricValue").inner_text()) >= len(rock_tracks)
    per_minute, trending_tracks, trending_genres, latency, _ = charts.all()
    bar = per_minute.locator(".mark-rect path").first.bounding_box()  # a visible bar, not an empty frame
    assert bar is not None and bar["width"] >= 2 and bar["height"] >= 20, bar
    first = rock_tracks[0]
    expect(trending_tracks.locator("text", has_text=f"{first['title']} — {first['artist_name']}")).to_have_count(1)
    expect(trending_genres.locator("text", has_text=ROCK.title)).to_have_count(1)
    assert latency.locator(".mark-line path").count() >= 1
    assert app.exceptions() == []
    app.shot("08-analyst-live-listening")


def test_the_tour_picks_playable_tracks_of_two_other_genres(running_app: RunningApp):
    first, second = pick_tracks(running_app.db, JAZZ.genre_id)
    assert first["top_genre_id"] != second["top_genre_id"]
    assert JAZZ.genre_id not in {first["top_genre_id"], second["top_genre_id"]}
    assert Path(first["audio_path"]).is_file() and Path(second["audio_path"]).is_file()
