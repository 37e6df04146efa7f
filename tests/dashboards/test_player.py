"""The listener's player: search, recommendations with reasons and fallbacks, events to Kafka."""

from __future__ import annotations

import pytest

from dashboards.auth import Role, create_user
from dashboards.data import RecommendationSource, current_recommendations, up_next
from dashboards.playback import event_from_report
from dashboards.player_state import PlayerQueue
from dashboards.services import event_producer
from fma_platform.contracts import Collection
from fma_platform.events import decode_event
from tests.dashboards.conftest import PASSWORD, page_test, texts
from tests.kafka_helpers import consume_all


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
    queue.play_now(catalogue[2])
    queue.enqueue([catalogue[3]])
    log = [
        {"id": "a", "token": 1, "track_id": 2, "type": "play", "position": 0.0, "listened": 0, "duration": 30.0},
        {"id": "b", "token": 1, "track_id": 2, "type": "progress", "position": 10.2, "listened": 10.1,
         "duration": 30.0},
        {"id": "c", "token": 1, "track_id": 2, "type": "skip", "position": 12.5, "listened": 12.4, "duration": 30.0},
        {"id": "junk"},
    ]
    fresh = queue.unseen_reports(log)
    assert [r["id"] for r in fresh] == ["a", "b", "c"]
    assert queue.unseen_reports(log) == []  # the same log again: nothing new
    skip = event_from_report(listener, "s_1", fresh[-1])
    assert (skip.type.value, skip.position_s, skip.user_id, skip.source.value) == ("skip", 12.5, listener.user_id,
                                                                                  "player")
    assert queue.ends_current(fresh[-1])
    assert queue.advance()["track_id"] == 3 and queue.token == 2
    # A late report of the previous play does not skip the new track.
    assert not queue.ends_current(fresh[-1])


@pytest.mark.slow
def test_like_sends_an_event_with_the_sessions_user_id(catalogue, listener, app_env, app_db, unique_topic,
                                                       kafka_broker):
    app_env(mongo_db=app_db.name, kafka_events_topic=unique_topic)
    at = page_test("player", listener)
    at.session_state["player_session_id"] = "s_test"
    at.run()
    at.button(key="search_play_10").click().run()
    at.button(key="like_button").click().run()
    assert not at.exception
    assert event_producer().flush(timeout=15), event_producer().status()
    events = [decode_event(record.value) for record in consume_all(kafka_broker, unique_topic, 1)]
    assert [(e.type.value, e.user_id, e.track_id, e.session_id, e.source.value) for e in events] == [
        ("like", listener.user_id, 10, "s_test", "player")]
