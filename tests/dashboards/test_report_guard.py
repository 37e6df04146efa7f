"""Attacks on the player's reports: forged, replayed and flooded reports are refused by
reason, counted, and never reach Kafka; legitimate playback still does."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from datetime import datetime, timezone

import pytest

from dashboards.playback import rejected_report_counts, record_rejections, send_reports
from dashboards.player_state import PlayerQueue
from dashboards.report_guard import (
    REJECTION_REASONS,
    Accepted,
    GuardLimits,
    Rejected,
    ReportGuard,
    TokenBucket,
    start_play,
)
from fma_platform.events import EventType, decode_event
from fma_platform.mongo import platform_db
from fma_platform.producer import EventProducer
from infra.process import free_port
from tests.kafka_helpers import consume_all

LIMITS = GuardLimits(burst=20, per_second=1.0, clock_slack_s=2.0)
T0 = 1_700_000_000.0  # a fixed server clock: every check is given its time
TRACK = {"track_id": 2, "duration": 30.0}
LONG_TRACK = {"track_id": 3, "duration": 200.0}  # FMA's full length: its clip plays 30 s
OTHER_TRACK = {"track_id": 5, "duration": 30.0}


def new_guard(limits: GuardLimits = LIMITS) -> ReportGuard:
    return ReportGuard(user_id="u_lena", session_id="s_test", limits=limits)


def report(play, kind: str, position: float = 0.0, listened: float = 0.0, **changes) -> dict:
    """A report as the audio component sends it (``changes`` forge it)."""
    return {"id": uuid.uuid4().hex, "token": play.token, "track_id": play.track_id, "type": kind,
            "position": position, "listened": listened, **changes}


def accepted_event(verdict):
    assert isinstance(verdict, Accepted), verdict
    return verdict.event


# --- legitimate playback -----------------------------------------------------------------
def test_a_legitimate_play_is_accepted_with_the_catalogues_duration():
    guard, play = new_guard(), start_play(TRACK, now=T0)
    steps = [(0.5, report(play, "play", duration=999.0)),
             (11.0, report(play, "progress", 10.2, 10.1)),
             (12.0, report(play, "pause", 10.9, 10.8)),
             (25.0, report(play, "progress", 20.9, 20.8)),  # resumed: a resume is no new play
             (35.0, report(play, "complete", 30.04, 30.0, duration=30.04))]
    events = [accepted_event(guard.check(r, play=play, now=T0 + at)) for at, r in steps]
    assert [(e.type.value, e.position_s, e.listened_s, e.track_duration_s) for e in events] == [
        ("play", 0.0, 0.0, 30.0), ("progress", 10.2, 10.1, 30.0), ("pause", 10.9, 10.8, 30.0),
        ("progress", 20.9, 20.8, 30.0), ("complete", 30.04, 30.0, 30.0)]
    assert {(e.user_id, e.session_id, e.source.value, e.track_id) for e in events} == {
        ("u_lena", "s_test", "player", 2)}
    assert events[-1].client_ts == datetime.fromtimestamp(T0 + 35.0, timezone.utc)
    assert guard.accepted == 5 and guard.rejected == Counter()


def test_a_play_lasts_the_catalogues_clip_and_gets_an_unguessable_token():
    assert start_play(LONG_TRACK, now=T0).duration_s == 30.0  # FMA clips are 30 s excerpts
    assert start_play({"track_id": 7, "duration": 12}, now=T0).duration_s == 12.0
    assert start_play({"track_id": 7}, now=T0).duration_s is None
    tokens = {start_play(TRACK, now=T0).token for _ in range(1000)}
    assert len(tokens) == 1000 and min(len(t) for t in tokens) >= 22  # 128 random bits each


def test_a_like_is_at_the_last_accepted_position_and_needs_a_play():
    guard, play = new_guard(), start_play(TRACK, now=T0)
    accepted_event(guard.check(report(play, "progress", 10.2, 10.1), play=play, now=T0 + 11))
    guard.check(report(play, "progress", 29.0, 29.0), play=play, now=T0 + 12)  # refused: too fast
    like = accepted_event(guard.check_action(EventType.LIKE, play=play, now=T0 + 12))
    assert (like.type.value, like.track_id, like.position_s, like.listened_s, like.track_duration_s) == (
        "like", 2, 10.2, 0.0, None)
    assert guard.check_action("dislike", play=None, now=T0 + 13) == Rejected("no_play", "dislike while nothing plays")
    with pytest.raises(ValueError, match="not an action"):
        guard.check_action(EventType.COMPLETE, play=play, now=T0 + 14)


# --- forged reports ------------------------------------------------------------------------
FORGERIES = {
    "another track": (dict(track_id=5), "wrong_track"),
    "a made-up token": (dict(token="A" * 22), "unknown_token"),
    "no token": (dict(token=None), "missing_token"),
    "the old guessable counter": (dict(token=1), "missing_token"),
    "a negative position": (dict(position=-3.0), "invalid_event"),
    "a huge position": (dict(position=1e9), "invalid_event"),
    "a position past the clip": (dict(position=31.5, listened=1.0), "invalid_event"),
    "not a number": (dict(position=math.nan), "invalid_event"),
    "an integer beyond any float": (dict(position=10 ** 400), "malformed"),
    "listened longer than the play has lasted": (dict(listened=8.0), "listened_too_fast"),
    "a negative listened time": (dict(listened=-1.0), "invalid_event"),
    "a type the browser may not report": (dict(type="like"), "malformed"),
    "a position as text": (dict(position="5"), "malformed"),
    "a boolean track id": (dict(track_id=True), "malformed"),
}


@pytest.mark.parametrize("changes, reason", FORGERIES.values(), ids=FORGERIES.keys())
def test_a_forged_report_is_refused_by_reason(changes, reason):
    guard, play = new_guard(), start_play(TRACK, now=T0)
    verdict = guard.check({**report(play, "progress", 2.0, 2.0), **changes}, play=play, now=T0 + 5.0)
    assert isinstance(verdict, Rejected) and verdict.reason == reason, verdict
    assert guard.rejected == Counter({reason: 1}) and guard.accepted == 0


def test_anything_but_a_report_is_malformed():
    guard, play = new_guard(), start_play(TRACK, now=T0)
    for junk in (None, 5, "play", [1, 2], {"id": "x"}, {"type": "play", "track_id": 2}):
        assert guard.check(junk, play=play, now=T0 + 1).reason == "malformed"
    assert guard.rejected == Counter({"malformed": 6})


def test_the_browsers_duration_is_ignored():
    guard, play = new_guard(), start_play(TRACK, now=T0)
    # A browser claiming a 1,000 s track cannot report position 500 of a 30 s clip.
    refused = guard.check(report(play, "progress", 500.0, 10.0, duration=1000.0), play=play, now=T0 + 12)
    assert refused.reason == "invalid_event" and "past the end of the track (30.0 s)" in refused.detail
    # Nor can one claiming 5 s shrink it: position 20 of the 30 s clip is fine.
    event = accepted_event(guard.check(report(play, "progress", 20.0, 10.0, duration=5.0), play=play, now=T0 + 12))
    assert event.track_duration_s == 30.0


# --- replays ------------------------------------------------------------------------------
def test_a_play_has_one_play_one_end_and_no_replays():
    guard, play = new_guard(), start_play(TRACK, now=T0)
    outcomes = []
    for at, sent in [(1, report(play, "play")),
                     (2, report(play, "play", 1.0, 1.0)),  # a second play of the same play
                     (12, report(play, "progress", 10.0, 10.0)),
                     (13, report(play, "pause", 5.0, 9.0)),  # listened time cannot shrink
                     (31, report(play, "complete", 30.0, 29.5)),
                     (32, report(play, "complete", 30.0, 29.5)),  # the same complete again
                     (33, report(play, "skip", 30.0, 29.6))]:  # anything after the end
        verdict = guard.check(sent, play=play, now=T0 + at)
        outcomes.append("accepted" if isinstance(verdict, Accepted) else verdict.reason)
    assert outcomes == ["accepted", "duplicate_play", "accepted", "listened_backwards", "accepted", "replay",
                        "after_end"]


def test_a_report_of_the_previous_play_is_stale_after_a_skip():
    queue, guard = PlayerQueue(), new_guard()
    queue.play_now(TRACK, now=T0)
    queue.enqueue([OTHER_TRACK])
    first = queue.play
    accepted_event(guard.check(report(first, "skip", 5.0, 5.0), play=queue.play, now=T0 + 6))
    queue.advance(now=T0 + 6)
    assert queue.token != first.token and queue.current["track_id"] == 5
    late = guard.check(report(first, "pause", 5.0, 5.0), play=queue.play, now=T0 + 7)
    # On the new track too: the old token names the old play.
    moved = guard.check(report(first, "complete", 30.0, 5.0, track_id=5), play=queue.play, now=T0 + 7)
    assert (late.reason, moved.reason) == ("stale_token", "stale_token")
    queue.advance(now=T0 + 8)  # the queue is empty: nothing plays, every token is old or forged
    assert queue.play is None
    assert guard.check(report(first, "play"), play=None, now=T0 + 9).reason == "stale_token"


def test_the_components_resent_log_is_handed_over_once():
    queue = PlayerQueue()
    queue.play_now(TRACK, now=T0)
    log = [report(queue.play, "play"), {"id": "junk"}, 7, {"no": "id"}]
    assert queue.unseen_reports(log) == log
    assert queue.unseen_reports(log + [log[0]]) == []  # the same log again (as the component resends it)
    assert queue.unseen_reports({"not": "a list"}) == []


# --- floods -------------------------------------------------------------------------------
def test_a_flood_gets_only_the_buckets_worth():
    guard, play = new_guard(), start_play(TRACK, now=T0)
    # 1,000 well-formed reports within one second, 100 s into the play.
    verdicts = [guard.check(report(play, "progress", 1.0 + i * 0.02, 1.0 + i * 0.02), play=play,
                            now=T0 + 100 + i / 1000) for i in range(1000)]
    assert sum(isinstance(v, Accepted) for v in verdicts) == LIMITS.burst == 20
    assert guard.rejected == Counter({"rate_limited": 980})
    # Ten seconds later the bucket has refilled ten.
    later = [guard.check(report(play, "progress", 25.0, 25.0 + i * 0.01), play=play, now=T0 + 110.999)
             for i in range(50)]
    assert sum(isinstance(v, Accepted) for v in later) == 10


def test_the_bucket_refills_at_its_rate_and_never_from_a_clock_going_back():
    bucket = TokenBucket(capacity=2, per_second=0.5)
    assert [bucket.take(100.0), bucket.take(100.0), bucket.take(100.0)] == [True, True, False]
    assert bucket.take(99.0) is False  # an earlier time gives nothing back
    assert bucket.take(101.9) is False and bucket.take(102.0) is True  # 2 s at 0.5/s: one token


def test_actions_share_the_sessions_bucket():
    guard, play = new_guard(GuardLimits(burst=3, per_second=0.01, clock_slack_s=2.0)), start_play(TRACK, now=T0)
    verdicts = [guard.check_action(EventType.LIKE, play=play, now=T0 + 1) for _ in range(10)]
    assert sum(isinstance(v, Accepted) for v in verdicts) == 3 and guard.rejected == Counter({"rate_limited": 7})


def test_every_reason_is_a_known_one():
    guard, play = new_guard(), start_play(TRACK, now=T0)
    for changes, _ in FORGERIES.values():
        guard.check({**report(play, "progress", 2.0, 2.0), **changes}, play=play, now=T0 + 5)
    assert set(guard.rejected) <= set(REJECTION_REASONS)


# --- the whole path: real Kafka, real MongoDB ------------------------------------------------
@pytest.mark.slow
def test_attacks_reach_neither_kafka_nor_the_analysts_blind(kafka_broker, unique_topic, mongo_db):
    """A session mixing legitimate playback with forged, replayed and flooded reports:
    Kafka gets exactly the legitimate events plus the bucket's worth of the flood, and
    MongoDB the refused ones counted by reason."""
    queue, guard = PlayerQueue(), new_guard()
    producer = EventProducer(kafka_broker, topic=unique_topic)
    sent_by_step = []

    def deliver(at: float, log: list) -> bool:
        ended = send_reports(guard, queue, log, producer, now=T0 + at)
        record_rejections(mongo_db, guard, now=T0 + at)
        sent_by_step.append(guard.accepted)
        return ended

    try:
        queue.play_now(TRACK, now=T0)
        queue.enqueue([LONG_TRACK, OTHER_TRACK])
        first = queue.play
        play_report = report(first, "play")
        forged = [report(first, "complete", 30.0, 1.0, track_id=5),  # another track
                  report(first, "complete", 30.0, 1.0, token=uuid.uuid4().hex),  # a made-up token
                  report(first, "complete", 30.0, 1.0, token=None),  # no token
                  report(first, "progress", -4.0, 0.0),  # a negative position
                  report(first, "progress", 1e6, 0.0),  # a huge position
                  report(first, "complete", 30.0, 25.0)]  # 25 s listened half a second in
        assert not deliver(0.5, [play_report, play_report, *forged])  # the resent entry is delivery, not news
        assert not deliver(11.0, [report(first, "progress", 10.2, 10.1)])
        complete = report(first, "complete", 30.0, 30.0)
        assert deliver(31.0, [complete, {**complete, "id": uuid.uuid4().hex}])  # the same complete twice
        queue.advance(now=T0 + 31.0)

        second = queue.play
        assert not deliver(32.0, [report(second, "play"), report(first, "pause", 30.0, 30.0)])  # a late report
        assert deliver(37.0, [report(second, "skip", 5.0, 5.0), report(second, "skip", 6.0, 6.0)])
        queue.advance(now=T0 + 37.0)

        third = queue.play
        flood = [report(third, "play")] + [report(third, "progress", 0.004 * i, 0.004 * i) for i in range(1, 1000)]
        deliver(40.0, flood)
        assert producer.flush(timeout=15), producer.status()
    finally:
        producer.close()

    events = [decode_event(record.value) for record in consume_all(kafka_broker, unique_topic, 25)]
    events.sort(key=lambda e: (e.client_ts, e.listened_s))
    assert [(e.track_id, e.type.value, e.position_s, e.listened_s, e.track_duration_s) for e in events[:5]] == [
        (2, "play", 0.0, 0.0, 30.0), (2, "progress", 10.2, 10.1, 30.0), (2, "complete", 30.0, 30.0, 30.0),
        (3, "play", 0.0, 0.0, 30.0), (3, "skip", 5.0, 5.0, 30.0)]
    assert Counter((e.track_id, e.type.value) for e in events[5:]) == Counter({(5, "play"): 1, (5, "progress"): 19})
    assert len(events) == guard.accepted == 25 and sent_by_step == [1, 2, 3, 4, 5, 25]
    expected = Counter({"wrong_track": 1, "unknown_token": 1, "missing_token": 1, "invalid_event": 2,
                        "listened_too_fast": 1, "replay": 1, "stale_token": 1, "after_end": 1, "rate_limited": 980})
    assert guard.rejected == expected
    assert rejected_report_counts(mongo_db, since=datetime.fromtimestamp(T0, timezone.utc)) == dict(expected)
    stored = mongo_db["rejected_reports"].find_one({"reason": "rate_limited"})
    assert (stored["user_id"], stored["session_id"], stored["count"]) == ("u_lena", "s_test", 980)


@pytest.mark.slow
def test_rejections_wait_in_the_session_while_mongodb_is_down(mongo_server, mongo_db):
    guard, play = new_guard(), start_play(TRACK, now=T0)
    guard.check(report(play, "play", token="forged"), play=play, now=T0 + 1)
    down = platform_db(mongo_server.model_copy(update={"mongo_port": free_port()}), timeout_ms=300)
    assert record_rejections(down, guard, now=T0 + 1) == Counter()
    assert guard.unrecorded == Counter({"unknown_token": 1})  # kept for the next try
    assert record_rejections(mongo_db, guard, now=T0 + 2) == Counter({"unknown_token": 1})
    assert guard.unrecorded == Counter()
    assert rejected_report_counts(mongo_db, since=datetime.fromtimestamp(T0, timezone.utc)) == {"unknown_token": 1}



def test_refusal_counts_expire_after_the_retention_window(mongo_db):
    """``rejected_reports`` gets its TTL index (on ``last_at``) when counts are first stored."""
    guard, play = new_guard(), start_play(TRACK, now=T0)
    guard.check(report(play, "play", token="forged"), play=play, now=T0 + 1)
    record_rejections(mongo_db, guard, now=T0 + 1)
    index = mongo_db["rejected_reports"].index_information()["retention_last_at"]
    assert index["key"] == [("last_at", 1)] and index["expireAfterSeconds"] == 30 * 86_400
