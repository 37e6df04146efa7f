"""Player page (listeners): now playing, search, up next, radio, queue."""

from __future__ import annotations

import time

import streamlit as st

from audio_features.fma_schema import TOP_LEVEL_GENRES
from dashboards.audio_player import AudioUnavailableError, audio_player
from dashboards.auth import Role, User
from dashboards.data import search_catalogue, similar_to, up_next
from dashboards.views.common import attribution, database_section, literal, service_banners
from dashboards.playback import record_rejections, send_action, send_reports
from dashboards.player_state import PlayerQueue
from dashboards.report_guard import GuardLimits, ReportGuard
from dashboards.services import database, event_producer, mongo_health
from dashboards.session import player_queue, require_role, session_id
from fma_platform.events import EventType
from fma_platform.settings import get_settings

SOURCE_LABELS = {
    "realtime": "live, from what you just played",
    "batch": "from your listening profile",
    "popular": "popular picks in your genres (no personal recommendations yet)",
}
GUARD_KEY = "player_report_guard"


def player_page() -> None:
    user = require_role(Role.LISTENER)
    st.title("Player")
    service_banners(events=True)
    queue = player_queue()
    now, side = st.columns([3, 2], gap="large")
    with now:
        _now_playing(user, queue)
        _search(queue)
    with side:
        _up_next(user)
        _radio(queue)
        _queue(queue)


def _now_playing(user: User, queue: PlayerQueue) -> None:
    st.subheader("Now playing")
    if queue.current is None:
        st.info("Pick a track below, or start your recommendations on the right.")
        return
    track = queue.current
    st.markdown(attribution(track))
    try:
        log = audio_player(track, token=queue.token, autoplay=queue.autoplay)
    except AudioUnavailableError as exc:
        st.error(f"This track cannot play: {exc}")
        return
    _handle_reports(user, queue, log)
    actions = st.container(horizontal=True)
    if actions.button("Like", key="like_button", icon=":material/thumb_up:"):
        _send_action(user, queue, EventType.LIKE)
    if actions.button("Dislike", key="dislike_button", icon=":material/thumb_down:"):
        _send_action(user, queue, EventType.DISLIKE)


def _report_guard(user: User) -> ReportGuard:
    """This session's guard; a new one for another user or session id, keeping the rate bucket."""
    guard, sid = st.session_state.get(GUARD_KEY), session_id()
    if guard is None or (guard.user_id, guard.session_id) != (user.user_id, sid):
        guard = ReportGuard(user_id=user.user_id, session_id=sid, limits=GuardLimits.from_settings(get_settings()),
                            bucket=guard.bucket if guard else None)
        st.session_state[GUARD_KEY] = guard
    return guard


def _handle_reports(user: User, queue: PlayerQueue, log: list) -> None:
    """New player reports, checked, become events; a complete or skip moves the queue on.

    A refused report changes nothing the listener sees; its reason is counted for analysts.
    """
    guard = _report_guard(user)
    ended = send_reports(guard, queue, log, event_producer(), now=time.time())
    if guard.unrecorded and mongo_health().up:
        record_rejections(database(), guard, now=time.time())
    if ended:
        queue.advance()
        st.rerun()


def _send_action(user: User, queue: PlayerQueue, kind: EventType) -> None:
    if send_action(_report_guard(user), queue, kind, event_producer(), now=time.time()):
        st.toast(f"{'Liked' if kind == EventType.LIKE else 'Disliked'}: "
                 f"{literal(queue.current.get('title') or 'Untitled')}")


def _track_row(track: dict, queue: PlayerQueue, *, prefix: str, reason: str | None = None) -> None:
    text, buttons = st.columns([5, 2], vertical_alignment="center")
    text.markdown(attribution(track) + (f"  \n:gray[{literal(reason)}]" if reason else ""))
    buttons = buttons.container(horizontal=True, horizontal_alignment="right")
    # Icon-only buttons (the help text names them) keep narrow columns readable.
    if buttons.button(":material/play_arrow:", key=f"{prefix}_play_{track['track_id']}", help="Play now"):
        queue.play_now(track)
        st.rerun()
    if buttons.button(":material/queue_music:", key=f"{prefix}_queue_{track['track_id']}",
                      help="Play after the current track"):
        queue.play_next(track)
        st.rerun()


def _search(queue: PlayerQueue) -> None:
    st.subheader("Browse the catalogue")
    words, genre = st.columns([3, 2])
    query = words.text_input("Search title, artist or album", key="search_query")
    genre_id = genre.selectbox("Genre", options=[None, *TOP_LEVEL_GENRES], key="search_genre",
                               format_func=lambda g: "All genres" if g is None else TOP_LEVEL_GENRES[g])
    with database_section("The catalogue"):
        results = search_catalogue(database(), query, genre_id=genre_id, limit=20)
        if not results:
            st.info("No track matches. Try fewer words, or run the ETL DAG to load the catalogue.")
        for track in results:
            _track_row(track, queue, prefix="search")


@st.fragment(run_every="3s")
def _up_next(user: User) -> None:
    st.subheader("Up next for you")
    queue = player_queue()
    exclude = {queue.current["track_id"]} if queue.current else set()
    with database_section("Recommendations"):
        picks = up_next(database(), user_id=user.user_id, genres=user.genres, exclude=exclude, limit=8)
        st.caption(f"Source: {SOURCE_LABELS[picks.source.value]}")
        if not picks.items:
            st.info("Nothing to recommend yet: the catalogue is empty (run the ETL DAG).")
            return
        if st.button("Queue these", key="upnext_queue_all", icon=":material/playlist_add:"):
            queue.enqueue([item.track for item in picks.items])
            st.rerun()
        with st.container(key="upnext_list"):
            for item in picks.items:
                _track_row(item.track, queue, prefix="upnext", reason=item.reason)


def _radio(queue: PlayerQueue) -> None:
    st.subheader("More like this")
    if queue.current is None:
        st.caption("Play a track to get its radio.")
        return
    with database_section("Similar tracks"):
        similar = similar_to(database(), queue.current, limit=10)
        if not similar:
            st.caption("No similar tracks computed for this one yet (run the similarity job).")
            return
        if st.button("Start radio", key="radio_start", icon=":material/radio:"):
            queue.replace_upcoming([item.track for item in similar])
            st.rerun()
        for item in similar[:5]:
            _track_row(item.track, queue, prefix="radio", reason=item.reason)


def _queue(queue: PlayerQueue) -> None:
    st.subheader("Your queue")
    if not queue.upcoming:
        st.caption("Empty. Use “Next” on any track to line it up.")
        return
    if queue.current is None and st.button("Start the queue", key="queue_start", icon=":material/play_arrow:"):
        queue.advance()
        st.rerun()
    for position, track in enumerate(queue.upcoming, start=1):
        text, remove = st.columns([6, 1], vertical_alignment="center")
        text.markdown(f"{position}. {attribution(track)}")
        if remove.button("Remove", key=f"queue_remove_{track['track_id']}", icon=":material/close:"):
            queue.remove(track["track_id"])
            st.rerun()
