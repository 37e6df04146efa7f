"""A listener in a real browser: sign up, search, play, skip, like, and watch "Up next"
react once the streaming job has processed the events; an analyst page is refused.

Headless Chromium (Debian's) drives the running Streamlit app; the audio component's
JavaScript plays real MP3s and reports to Python, the app sends the events to Kafka,
the spark-submit streaming job writes recommendations to MongoDB, and the page shows
them. Screenshots of every step go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from dashboards.auth import Role, create_user
from fma_platform.contracts import Collection
from fma_platform.events import new_event
from fma_platform.producer import EventProducer
from tests.browser.conftest import ARTIFACTS, GENRES, RunningApp

pytestmark = [pytest.mark.slow, pytest.mark.stack, pytest.mark.browser]

ROCK, ELECTRONIC, JAZZ = GENRES
PASSWORD = "a long listener passphrase"
STREAM_TIMEOUT_MS = 90_000
POPULAR_CAPTION = "Source: popular picks in your genres"
LIVE_CAPTION = "Source: live, from what you just played"
LIVE_REASONS = re.compile(r"^(because you (played|liked) .+|similar to what you liked)$")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def keyed(page, key: str, inner: str = ""):
    """The element a Streamlit widget with ``key`` renders (Streamlit adds ``st-key-<key>``)."""
    return page.locator(f".st-key-{key} {inner}".strip())


def sign_up(page, url: str, username: str, genre_title: str) -> None:
    page.goto(url)
    page.get_by_role("tab", name="Sign up").click()
    keyed(page, "signup_username", "input").fill(username)
    keyed(page, "signup_password", "input").fill(PASSWORD)
    keyed(page, "signup_password2", "input").fill(PASSWORD)
    keyed(page, "signup_genres", "input").click()
    page.get_by_role("option", name=genre_title, exact=True).click()
    page.keyboard.press("Escape")
    shot(page, "01-sign-up")
    keyed(page, "signup_submit", "button").click()
    page.get_by_role("heading", name="Player", exact=True).wait_for()


def search(page, words: str) -> None:
    box = keyed(page, "search_query", "input")
    box.fill(words)
    box.press("Enter")


def play_from_search(page, track_id: int, title: str) -> None:
    """Search the title, press its Play button and wait until the audio really plays."""
    search(page, title)
    keyed(page, f"search_play_{track_id}", "button:visible").click()
    page.get_by_test_id("fma-player-title").filter(has_text=title).wait_for()
    audio = page.get_by_test_id("fma-player-audio")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if audio.evaluate("a => !a.paused && a.currentTime > 1.5"):
            return
        time.sleep(0.25)
    state = audio.evaluate("a => ({paused: a.paused, time: a.currentTime, error: a.error && a.error.code})")
    raise AssertionError(f"{title} does not play in the browser: {state}")


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


def test_listener_plays_skips_likes_and_up_next_follows(running_app: RunningApp, page):
    app, db = running_app, running_app.db
    rock = next(t for t in app.tracks.values() if t["top_genre_id"] == ROCK.genre_id)
    electronic = next(t for t in app.tracks.values() if t["top_genre_id"] == ELECTRONIC.genre_id)

    # Sign up picking Jazz: a newcomer gets popular Jazz tracks, with reasons.
    sign_up(page, app.url, "browser_lena", JAZZ.title)
    user = db[Collection.USERS].find_one({"username": "browser_lena"})
    assert user is not None and user["role"] == "listener" and user["genres"] == [JAZZ.genre_id]
    page.get_by_text(POPULAR_CAPTION).wait_for()
    assert page.get_by_text("popular in Jazz, a genre you picked").count() >= 3
    shot(page, "02-player-new-listener")

    # Play a Rock track in the browser's <audio>, then skip it with the player's Skip button.
    play_from_search(page, rock["track_id"], rock["title"])
    shot(page, "03-playing-rock")
    page.get_by_test_id("fma-player-next").click()

    # Play an Electronic track and like it.
    play_from_search(page, electronic["track_id"], electronic["title"])
    keyed(page, "like_button", "button").click()
    page.get_by_text(f"Liked: {electronic['title']}").wait_for()
    shot(page, "04-liked-electronic")

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
    page.get_by_text(LIVE_CAPTION).wait_for(timeout=STREAM_TIMEOUT_MS)
    shot(page, "05-up-next-live")
    shown = shown_up_next(page)
    genres = [app.tracks[track_id]["top_genre_id"] for track_id in shown]
    assert len(shown) >= 6 and genres[:3] == [ELECTRONIC.genre_id] * 3, genres
    assert ROCK.genre_id not in genres[:6], genres
    assert electronic["track_id"] not in shown
    reasons = keyed(page, "upnext_list").get_by_text(LIVE_REASONS)
    assert reasons.count() == len(shown), reasons.all_inner_texts()
    recs = db[Collection.REALTIME_RECOMMENDATIONS].find_one({"user_id": user["user_id"]})
    assert recs["event_time"] >= max(e["client_ts"] for e in events) - timedelta(seconds=1)


def shown_up_next(page) -> list[int]:
    """Track ids of the "Up next" list, in the order shown (from the Play buttons' keys)."""
    classes = keyed(page, "upnext_list").locator("[class*='st-key-upnext_play_']").evaluate_all(
        "nodes => nodes.map(n => n.className)")
    return [int(re.search(r"st-key-upnext_play_(\d+)", c).group(1)) for c in classes]


def test_a_listener_is_refused_the_analyst_pages(running_app: RunningApp, page):
    """The listener's navigation has no analyst page, and typing its address shows none.

    (A typed address reloads the page, which starts a new, signed-out Streamlit session;
    the in-session role check of every analyst page is covered by the AppTest suite.)
    """
    sign_up(page, running_app.url, "browser_max", ROCK.title)
    links = page.get_by_test_id("stSidebarNav").get_by_role("link")
    links.first.wait_for()
    titles = sorted(text.splitlines()[-1] for text in links.all_inner_texts())  # after the icon's name
    assert titles == ["Account", "Player", "Your library"]
    page.goto(f"{running_app.url}/pipeline")
    page.get_by_text("Page not found").wait_for()
    shot(page, "06-listener-refused-pipeline")
    assert page.get_by_role("heading", name="Pipeline", exact=True).count() == 0
    assert page.get_by_text("Great Expectations").count() == 0


def test_an_analyst_sees_live_listening_from_the_stream(running_app: RunningApp, page):
    """Events a listener sends reach the analyst's Live listening page through Kafka and Spark."""
    app, db = running_app, running_app.db
    listener = create_user(db, "browser_sam", PASSWORD, role=Role.LISTENER, genres=[ROCK.genre_id])
    create_user(db, "browser_ana", PASSWORD, role=Role.ANALYST)
    producer = EventProducer(app.settings)
    track_ids = [t for t in app.tracks if app.tracks[t]["top_genre_id"] == ROCK.genre_id][:3]
    try:
        for track_id in track_ids:
            producer.send(new_event(user_id=listener.user_id, track_id=track_id, type="complete", position_s=30.0,
                                    listened_s=30.0, track_duration_s=30.0, session_id="browser-sam",
                                    source="player"))
        assert producer.flush(30)
    finally:
        producer.close()
    wait_for_events(db, listener.user_id, {"complete"})

    page.goto(app.url)
    keyed(page, "login_username", "input").fill("browser_ana")
    keyed(page, "login_password", "input").fill(PASSWORD)
    keyed(page, "login_submit", "button").click()
    page.get_by_role("heading", name="Pipeline", exact=True).wait_for()
    links = page.get_by_test_id("stSidebarNav").get_by_role("link")
    titles = {text.splitlines()[-1] for text in links.all_inner_texts()}
    assert {"Pipeline", "Models", "Live listening", "Catalogue", "Platform"} <= titles
    assert "Player" not in titles
    shot(page, "07-analyst-pipeline")

    links.filter(has_text="Live listening").click()
    page.get_by_role("heading", name="Live listening", exact=True).wait_for()
    charts = page.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(5, timeout=STREAM_TIMEOUT_MS)  # per minute, 2 trending, latency, lag
    metric = page.get_by_test_id("stMetric").filter(has_text="Events in the last hour")
    assert int(metric.get_by_test_id("stMetricValue").inner_text()) >= len(track_ids)
    per_minute, trending_tracks, trending_genres, latency, _ = charts.all()
    bar = per_minute.locator(".mark-rect path").first.bounding_box()  # a visible bar, not an empty frame
    assert bar is not None and bar["width"] >= 2 and bar["height"] >= 20, bar
    first = app.tracks[track_ids[0]]
    expect(trending_tracks.locator("text", has_text=f"{first['title']} — {first['artist_name']}")).to_have_count(1)
    expect(trending_genres.locator("text", has_text=ROCK.title)).to_have_count(1)
    assert latency.locator(".mark-line path").count() >= 1
    shot(page, "08-analyst-live-listening")
