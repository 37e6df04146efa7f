"""Walk the running app in headless Chromium, as a newcomer and as an analyst.

``python -m infra.browser_tour`` (after ``make up``) signs up a new listener, plays two
tracks of the catalogue in the browser's audio player (skipping one, liking the other),
waits until "Up next" shows the live recommendations the streaming job wrote, then signs
in as a temporary analyst and opens every analyst page. It prints what it saw and how long
the recommendations took, and saves a screenshot of each step.

``AppDriver`` is the browser vocabulary of the app (Streamlit widget keys, the audio
component's test ids), shared with the browser tests. Chromium is Debian's
(``apt-get install chromium``); Playwright never downloads a browser of its own here.
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fma_platform import listening
from fma_platform.contracts import Collection
from fma_platform.settings import PROJECT_ROOT, Settings, get_settings
from infra.process import StackError

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
]
POPULAR_CAPTION = "Source: popular picks in your genres"
LIVE_CAPTION = "Source: live, from what you just played"
# The reason texts a recommendation can carry (``fma_platform.listening``), placeholders as ".+".
REASONS = re.compile(
    "^(" + "|".join(re.sub(r"\\\{\w+\\\}", ".+", re.escape(t)) for t in listening.REASON_TEMPLATES) + ")$"
)
LISTENER_PAGES = ["Player", "Your library", "Account"]
ANALYST_PAGES = ["Pipeline", "Models", "Live listening", "Catalogue", "Platform"]
DEFAULT_OUT = PROJECT_ROOT / "test-artifacts" / "tour"


class BrowserMissingError(StackError):
    """No Chromium on this machine."""


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def chromium():
    """Debian's headless Chromium under Playwright; ``BrowserMissingError`` when absent."""
    executable = chromium_path()
    if executable is None:
        raise BrowserMissingError("chromium is not installed (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class AppDriver:
    """One browser tab on the app at ``url``; screenshots go to ``out``."""

    page: object  # playwright.sync_api.Page
    url: str
    out: Path

    def shot(self, name: str) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def keyed(self, key: str, inner: str = ""):
        """What a Streamlit element with ``key`` renders (Streamlit adds the class ``st-key-<key>``)."""
        return self.page.locator(f".st-key-{key} {inner}".strip())

    def heading(self, title: str):
        return self.page.get_by_role("heading", name=title, exact=True)

    def sign_up(self, username: str, password: str, genre_title: str, *, shot: str | None = None) -> None:
        self.page.goto(self.url)
        self.page.get_by_role("tab", name="Sign up").click()
        self.keyed("signup_username", "input").fill(username)
        self.keyed("signup_password", "input").fill(password)
        self.keyed("signup_password2", "input").fill(password)
        self.keyed("signup_genres", "input").click()
        self.page.get_by_role("option", name=genre_title, exact=True).click()
        self.page.keyboard.press("Escape")
        if shot:
            self.shot(shot)
        self.keyed("signup_submit", "button").click()
        self.heading("Player").wait_for()

    def log_in(self, username: str, password: str, *, lands_on: str) -> None:
        self.page.goto(self.url)
        self.keyed("login_username", "input").fill(username)
        self.keyed("login_password", "input").fill(password)
        self.keyed("login_submit", "button").click()
        self.heading(lands_on).wait_for()

    def nav_links(self):
        return self.page.get_by_test_id("stSidebarNav").get_by_role("link")

    def nav_titles(self) -> list[str]:
        links = self.nav_links()
        links.first.wait_for()
        return [text.splitlines()[-1] for text in links.all_inner_texts()]  # the line after the icon's name

    def open_page(self, title: str) -> None:
        self.nav_links().filter(has_text=title).click()
        self.heading(title).wait_for()

    def search(self, words: str) -> None:
        box = self.keyed("search_query", "input")
        box.fill(words)
        box.press("Enter")

    def play_from_search(self, track_id: int, title: str, *, timeout_s: float = 30) -> None:
        """Search ``title``, press the track's Play button, wait until the audio really plays."""
        self.search(title)
        self.keyed(f"search_play_{track_id}", "button:visible").click()  # a hidden twin exists for tooltips
        self.page.get_by_test_id("fma-player-title").filter(has_text=title).wait_for()
        audio = self.page.get_by_test_id("fma-player-audio")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if audio.evaluate("a => !a.paused && a.currentTime > 1.5"):
                return
            time.sleep(0.25)
        state = audio.evaluate("a => ({paused: a.paused, time: a.currentTime, error: a.error && a.error.code})")
        raise AssertionError(f"{title} does not play in the browser: {state}")

    def skip(self) -> None:
        self.page.get_by_test_id("fma-player-next").click()

    def like(self, title: str) -> None:
        self.keyed("like_button", "button").click()
        self.page.get_by_text(f"Liked: {title}").wait_for()

    def wait_for_live_up_next(self, *, timeout_s: float = 90) -> float:
        """Seconds until "Up next" shows the streaming job's recommendations."""
        started = time.monotonic()
        self.page.get_by_text(LIVE_CAPTION).wait_for(timeout=timeout_s * 1000)
        return time.monotonic() - started

    def settled_up_next(self, *, quiet_s: float = 4.0, timeout_s: float = 30) -> list[int]:
        """The "Up next" list once it has not changed for ``quiet_s`` (longer than a refresh)."""
        shown, since, deadline = self.shown_up_next(), time.monotonic(), time.monotonic() + timeout_s
        while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.shown_up_next()
            if now and now != shown:
                shown, since = now, time.monotonic()
        return shown

    def wait_for_up_next_change(self, before: list[int], *, timeout_s: float = 60) -> float | None:
        """Seconds until the "Up next" list differs from ``before`` (None: it did not change)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            shown = self.shown_up_next()
            if shown and shown != before:  # empty: the list is being re-rendered
                return round(time.monotonic() - started, 1)
            time.sleep(0.2)
        return None

    def shown_up_next(self) -> list[int]:
        """Track ids of the "Up next" list, in the order shown (from the Play buttons' keys)."""
        classes = self.keyed("upnext_list").locator(
            "[class*='st-key-upnext_play_']:not([data-stale='true'])").evaluate_all(
            "nodes => nodes.filter(n => !n.closest(\"[data-stale='true']\")).map(n => n.className)")
        ids = [int(re.search(r"st-key-upnext_play_(\d+)", c).group(1)) for c in classes]
        return list(dict.fromkeys(ids))  # rows left from the previous render are marked stale

    def up_next_reasons(self) -> list[str]:
        """The reason texts shown in the "Up next" list (one per item that has one)."""
        return self.keyed("upnext_list").get_by_text(REASONS).all_inner_texts()

    def exceptions(self) -> list[str]:
        """Tracebacks the page shows (Streamlit renders uncaught errors as stException)."""
        return self.page.get_by_test_id("stException").all_inner_texts()


# --- the tour of a running stack --------------------------------------------------------------
def pick_tracks(db, genre_id: int | None = None) -> tuple[dict, dict]:
    """Two playable tracks of two different top-level genres (audio file present)."""
    by_genre: dict[int, dict] = {}
    for track in db[Collection.TRACKS].find({}, {"_id": 0, "track_id": 1, "title": 1, "top_genre_id": 1,
                                                 "top_genre_title": 1, "audio_path": 1}).sort("listens", -1):
        if track.get("audio_path") and Path(track["audio_path"]).is_file() and track.get("top_genre_id") != genre_id:
            by_genre.setdefault(track["top_genre_id"], track)
        if len(by_genre) == 2:
            return tuple(by_genre.values())
    raise SystemExit("the catalogue has no two playable tracks of different genres: run `make up` first")


def run_tour(settings: Settings, *, url: str, out: Path, genre: str) -> dict:
    from audio_features.fma_schema import TOP_LEVEL_GENRES
    from dashboards.auth import Role, create_user
    from fma_platform.mongo import platform_db

    genre_id = next((g for g, title in TOP_LEVEL_GENRES.items() if title == genre), None)
    if genre_id is None:
        raise SystemExit(f"unknown genre {genre!r}; one of: {', '.join(sorted(TOP_LEVEL_GENRES.values()))}")
    db = platform_db(settings)
    skipped, liked = pick_tracks(db, genre_id)
    tag = secrets.token_hex(3)
    listener, analyst, password = f"tour-{tag}", f"tour-analyst-{tag}", secrets.token_urlsafe(16)
    seen: dict = {"listener": listener, "skipped": skipped["title"], "liked": liked["title"]}
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(30_000)
        app = AppDriver(context.new_page(), url, out)
        app.sign_up(listener, password, genre, shot="01-sign-up")
        seen["navigation"] = {"listener": app.nav_titles()}
        app.page.get_by_text(POPULAR_CAPTION).wait_for()
        app.shot("02-newcomer")
        app.play_from_search(skipped["track_id"], skipped["title"])
        app.skip()
        app.play_from_search(liked["track_id"], liked["title"])
        seen["seconds_to_live_up_next"] = round(app.wait_for_live_up_next(), 1)  # after the plays and the skip
        before = app.settled_up_next()
        app.like(liked["title"])
        seen["seconds_to_change_after_like"] = app.wait_for_up_next_change(before)
        seen["up_next"] = app.shown_up_next()
        seen["reasons"] = sorted(set(app.up_next_reasons()))
        app.shot("03-live-up-next")
        context.close()

        create_user(db, analyst, password, role=Role.ANALYST)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(30_000)
            app = AppDriver(context.new_page(), url, out)
            app.log_in(analyst, password, lands_on=ANALYST_PAGES[0])
            seen["navigation"]["analyst"] = app.nav_titles()
            seen["analyst_pages"] = {}
            for number, title in enumerate(ANALYST_PAGES, start=4):
                app.open_page(title)
                app.page.wait_for_timeout(3000)  # charts and fragments settle
                app.shot(f"{number:02d}-{title.lower().replace(' ', '-')}")
                seen["analyst_pages"][title] = {
                    "charts": app.page.get_by_test_id("stVegaLiteChart").count(),
                    "errors": app.exceptions() + app.page.get_by_test_id("stAlertContentError").all_inner_texts(),
                }
            context.close()
        finally:
            db[Collection.USERS].delete_one({"username": analyst})
    return seen


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m infra.browser_tour", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=f"http://{settings.host}:{settings.streamlit_port}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="screenshot folder (default: %(default)s)")
    parser.add_argument("--genre", default="Rock", help="the genre the newcomer picks at sign-up")
    args = parser.parse_args(argv)
    try:
        seen = run_tour(settings, url=args.url, out=args.out, genre=args.genre)
    except BrowserMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"listener {seen['listener']}: skipped {seen['skipped']!r}, liked {seen['liked']!r}; "
          f"live Up next {seen['seconds_to_live_up_next']} s after the second play started; after the like it "
          + (f"changed within {seen['seconds_to_change_after_like']} s" if seen["seconds_to_change_after_like"]
             is not None else "did not change in 60 s")
          + f" (the page refreshes Up next every 3 s): {len(seen['up_next'])} tracks, reasons {seen['reasons']}")
    expected = {"listener": LISTENER_PAGES, "analyst": [*ANALYST_PAGES, "Account"]}
    failed = False
    for role, titles in seen["navigation"].items():
        wrong = sorted(titles) != sorted(expected[role])
        failed = failed or wrong
        print(f"{role} navigation: {', '.join(titles)}" + (f", EXPECTED {expected[role]}" if wrong else ""))
    for title, page in seen["analyst_pages"].items():
        failed = failed or bool(page["errors"])
        errors = f", ERRORS: {page['errors']}" if page["errors"] else ""
        print(f"analyst page {title}: {page['charts']} charts{errors}")
    print(f"screenshots: {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
