"""The listener's player: search, recommendations with reasons and fallbacks, events to Kafka."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from dashboards.auth import Role, create_user
from dashboards.data import RecommendationSource, current_recommendations, up_next
from dashboards.audio_player import PLAYER_KEY
from dashboards.playback import rejected_report_counts
from dashboards.player_state import PlayerQueue
from dashboards.report_guard import GuardLimits, ReportGuard
from dashboards.services import event_producer
from dashboards.views.player import GUARD_KEY
from fma_platform.contracts import Collection
from fma_platform.events import decode_event
from fma_platform.settings import get_settings
from tests.dashboards.conftest import PASSWORD, page_test, texts
from tests.kafka_helpers import consume_all

T0 = 1_700_000_000.0  # a fixed server clock for the checks that are given their time


def test_search_finds_seeded_tracks_with_attribution(catalogue, listener):
    at = page_test("player", listener).run()
    assert not at.exception
    at.text_input(key="search_query").input("rivets engine").run()
    shown = texts(at)
    assert "Midnight Engine" in shown and "Engine Room" in shown and "Paper Lanterns" not in shown
    assert "licence: CC BY 4.0" in shown and "synthetic sample" in shown
    at.text_input(key="search_query").input("").run()
    at.selectbox(key="search_genre").select(15).run()
    shown = texts(at)
    assert "Paper Lanterns" in shown and "Neon Drift" in shown and "Blue Corner" not in shown


def test_up_next_shows_realtime_recommendations_with_reasons(catalogue, listener, app_db):
    app_db[Collection.REALTIME_RECOMMENDATIONS].insert_one({
        "user_id": listener.user_id, "items": [
            {"track_id": 5, "score": 0.9, "reason": "because you played Midnight Engine"},
            {"track_id": 3, "score": 0.7, "reason": "listeners like you liked it"},
        ]})
    at = page_test("player", listener).run()
    assert not at.exception
    shown = texts(at)
    assert "live, from what you just played" in shown
    assert "because you played Midnight Engine" in shown and "listeners like you liked it" in shown


def test_up_next_falls_back_realtime_then_batch_then_popular_in_genres(catalogue, listener, app_db):
    def picks():
        return up_next(app_db, user_id=listener.user_id, genres=listener.genres)

    popular = picks()
    assert popular.source == RecommendationSource.POPULAR
    assert [r.track["track_id"] for r in popular.items] == [2, 10]  # Rock, most listened first
    assert popular.items[0].reason == "popular in Rock, a genre you picked"

    app_db[Collection.RECOMMENDATIONS].insert_one(
        {"user_id": listener.user_id, "items": [{"track_id": 20, "score": 0.5, "reason": "ALS: similar listeners"},
                                                 {"track_id": 999, "score": 0.4, "reason": "not in catalogue"}]})
    batch = picks()
    assert batch.source == RecommendationSource.BATCH
    assert [(r.track["track_id"], r.reason) for r in batch.items] == [(20, "ALS: similar listeners")]

    app_db[Collection.REALTIME_RECOMMENDATIONS].insert_one(
        {"user_id": listener.user_id, "items": [{"track_id": 3, "score": 0.9, "reason": "after your last play"}]})
    assert picks().source == RecommendationSource.REALTIME
    # Someone else's recommendations are never shown.
    other = create_user(app_db, "otto", PASSWORD, role=Role.LISTENER, genres=[4])
    assert up_next(app_db, user_id=other.user_id, genres=other.genres).source == RecommendationSource.POPULAR


def test_current_recommendations_is_one_indexed_read_of_the_listeners_items(listener, app_db):
    from spark_jobs.streaming.sink import ensure_indexes

    ensure_indexes(app_db)  # as the streaming job leaves the collection: unique on user_id
    items = [{"track_id": 5, "score": 0.9, "reason": "because you played Midnight Engine"}]
    app_db[Collection.REALTIME_RECOMMENDATIONS].insert_one({"user_id": listener.user_id, "items": items,
                                                           "updated_at": "not read by the player"})
    assert current_recommendations(app_db, listener.user_id) == items
    assert current_recommendations(app_db, listener.user_id, source=RecommendationSource.BATCH) == []
    assert current_recommendations(app_db, "nobody") == []
    plan = app_db[Collection.REALTIME_RECOMMENDATIONS].find({"user_id": listener.user_id}).explain()
    assert "IXSCAN" in str(plan["queryPlanner"]["winningPlan"])  # not a collection scan


def test_radio_queues_similar_tracks(catalogue, listener, app_db):
    app_db[Collection.SIMILAR_TRACKS].insert_one({"track_id": 2, "neighbours": [
        {"track_id": 10, "distance": 0.1, "score": 0.9}, {"track_id": 5, "distance": 0.3, "score": 0.7}]})
    at = page_test("player", listener).run()
    at.button(key="search_play_2").click().run()
    assert not at.exception
    assert "because you played Midnight Engine" in texts(at)  # the radio of the playing track
    at.button(key="radio_start").click().run()
    queue = at.session_state["player_queue"]
    assert queue.current["track_id"] == 2 and [t["track_id"] for t in queue.upcoming] == [10, 5]


def test_player_reports_become_events_once_and_skip_moves_on(catalogue, listener):
    queue = PlayerQueue()
    queue.play_now(catalogue[2], now=T0)
    queue.enqueue([catalogue[3]])
    guard = ReportGuard(user_id=listener.user_id, session_id="s_1", limits=GuardLimits.from_settings(get_settings()))
    first = queue.token
    log = [
        {"id": "a", "token": first, "track_id": 2, "type": "play", "position": 0.0, "listened": 0},
        {"id": "b", "token": first, "track_id": 2, "type": "progress", "position": 10.2, "listened": 10.1},
        {"id": "c", "token": first, "track_id": 2, "type": "skip", "position": 12.5, "listened": 12.4},
        {"id": "junk"},
    ]
    fresh = queue.unseen_reports(log)
    assert [r["id"] for r in fresh] == ["a", "b", "c", "junk"]
    assert queue.unseen_reports(log) == []  # the same log again: nothing new
    verdicts = [guard.check(report, play=queue.play, now=T0 + 13) for report in fresh]
    skip = verdicts[2].event
    assert (skip.type.value, skip.position_s, skip.user_id, skip.source.value) == ("skip", 12.5, listener.user_id,
                                                                                  "player")
    assert verdicts[3].reason == "malformed" and guard.accepted == 3
    assert queue.advance(now=T0 + 13)["track_id"] == 3 and queue.token not in (None, first)
    # A late report of the previous play does not skip the new track.
    late = guard.check({**log[2], "id": "d"}, play=queue.play, now=T0 + 14)
    assert late.reason == "stale_token"


def _queue(at):
    return at.session_state["player_queue"]


def _inject(at, *reports) -> None:
    """The audio component's log as the browser would set it (AppTest runs no JavaScript)."""
    at.session_state[PLAYER_KEY] = {"log": list(reports)}


def _reported(at, kind: str, position: float, listened: float, **changes) -> dict:
    queue = _queue(at)
    return {"id": uuid.uuid4().hex, "token": queue.token, "track_id": queue.current["track_id"], "type": kind,
            "position": position, "listened": listened, **changes}


def _player_sending_to(topic: str, listener, app_env, app_db, *, session_id: str):
    """The player page of ``listener``, run once, its events going to ``topic``."""
    app_env(mongo_db=app_db.name, kafka_events_topic=topic)
    at = page_test("player", listener)
    at.session_state["player_session_id"] = session_id
    return at.run()


def _sent_events(kafka_broker, topic: str, expected: int) -> list:
    """The events the app's producer delivered to ``topic``, oldest first."""
    assert event_producer().flush(timeout=15), event_producer().status()
    return sorted((decode_event(r.value) for r in consume_all(kafka_broker, topic, expected)), key=lambda e: e.client_ts)


def _started_ago(at, seconds: float) -> None:
    """Pretend the current play started ``seconds`` ago (its reports may then claim that much)."""
    queue = _queue(at)
    queue.play = replace(queue.play, started_at=time.time() - seconds)


@pytest.mark.slow
def test_legitimate_playback_sends_the_events_it_always_did(catalogue, listener, app_env, app_db, unique_topic,
                                                            kafka_broker):
    """play -> progress -> complete; play -> skip at 5 s; like: exactly these events, nothing refused."""
    at = _player_sending_to(unique_topic, listener, app_env, app_db, session_id="s_legit")
    at.button(key="search_queue_10").click().run()
    at.button(key="search_play_2").click().run()
    _started_ago(at, 40)
    play = _reported(at, "play", 0.0, 0.0)
    _inject(at, play)
    at.run()
    progress = _reported(at, "progress", 10.2, 10.1)
    _inject(at, play, progress)
    at.run()
    _inject(at, play, progress, _reported(at, "complete", 30.0, 30.0))
    at.run()  # the complete moves on to the queued track 10
    assert _queue(at).current["track_id"] == 10
    _started_ago(at, 6)
    _inject(at, _reported(at, "play", 0.0, 0.0), _reported(at, "skip", 5.0, 5.0))
    at.run()
    at.button(key="search_play_10").click().run()  # back to track 10 to like it
    at.button(key="like_button").click().run()
    assert not at.exception
    events = _sent_events(kafka_broker, unique_topic, 6)
    assert [(e.track_id, e.type.value, e.position_s, e.listened_s) for e in events] == [
        (2, "play", 0.0, 0.0), (2, "progress", 10.2, 10.1), (2, "complete", 30.0, 30.0),
        (10, "play", 0.0, 0.0), (10, "skip", 5.0, 5.0), (10, "like", 0.0, 0.0)]
    assert {(e.user_id, e.session_id, e.source.value) for e in events} == {(listener.user_id, "s_legit", "player")}
    assert at.session_state[GUARD_KEY].rejected == Counter()


@pytest.mark.slow
def test_the_player_page_sends_only_checked_reports(catalogue, listener, app_env, app_db, unique_topic,
                                                   kafka_broker):
    """Forged and replayed reports through the page: nothing shown, nothing sent, counted by reason."""
    at = _player_sending_to(unique_topic, listener, app_env, app_db, session_id="s_attack")
    at.button(key="search_play_2").click().run()
    before = texts(at)
    play = _reported(at, "play", 0.0, 0.0)
    complete = _reported(at, "complete", 30.0, 30.0)  # 30 s listened a moment after the start
    forged = [_reported(at, "complete", 30.0, 1.0, track_id=5), _reported(at, "complete", 30.0, 1.0, token="1"),
              _reported(at, "progress", -2.0, 0.0), _reported(at, "progress", 5000.0, 1.0, duration=6000.0),
              {**play, "id": uuid.uuid4().hex}, complete]
    _inject(at, play, *forged)
    at.run()
    assert not at.exception and texts(at) == before  # the listener sees nothing happen
    assert _queue(at).current["track_id"] == 2  # the forged complete did not move on
    events = _sent_events(kafka_broker, unique_topic, 1)
    assert [(e.track_id, e.type.value) for e in events] == [(2, "play")]
    expected = {"wrong_track": 1, "unknown_token": 1, "invalid_event": 2, "replay": 1, "listened_too_fast": 1}
    assert at.session_state[GUARD_KEY].rejected == Counter(expected)
    assert rejected_report_counts(app_db, since=datetime.now(timezone.utc) - timedelta(hours=1)) == expected


@pytest.mark.slow
def test_like_sends_an_event_with_the_sessions_user_id(catalogue, listener, app_env, app_db, unique_topic,
                                                       kafka_broker):
    at = _player_sending_to(unique_topic, listener, app_env, app_db, session_id="s_test")
    at.button(key="search_play_10").click().run()
    at.button(key="like_button").click().run()
    assert not at.exception
    events = _sent_events(kafka_broker, unique_topic, 1)
    assert [(e.type.value, e.user_id, e.track_id, e.session_id, e.source.value) for e in events] == [
        ("like", listener.user_id, 10, "s_test", "player")]
