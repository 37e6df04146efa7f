"""The value of real time: the replay's order and targets, no leakage, a listener whose taste
shifts (live lists must win), one whose taste stays (it must not matter), and the stored
document read back from the real embedded MongoDB; the Spark inputs on the shared session."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count

import numpy as np
import pandas as pd
import pytest

from fma_platform.embeddings import embeddings_from_frame
from fma_platform.model_runs import RunKind, run_id_of
from spark_jobs.metrics import Bootstrap
from spark_jobs.recommend import realtime_value as rv
from spark_jobs.recommend.events import EVENT_COLUMNS, USER_ID, event_schema
from spark_jobs.recommend.tracks import recommendable_tracks
from spark_jobs.streaming.batch import StreamConfig

T0 = datetime(2024, 3, 1, 18, tzinfo=timezone.utc)
NEXT_DAY = 24 * 60  # minutes: the holdout starts in a new session
BOOTSTRAP = Bootstrap(resamples=300, seed=3)
A_TRACKS = list(range(1, 16))  # one sound ...
B_TRACKS = list(range(101, 111))  # ... and another
_IDS = count(1)


def event(user, track, kind, minute, *, listened=30.0, duration=30.0):
    return {"event_id": f"{next(_IDS):032x}", USER_ID: user, "track_id": track, "type": kind,
            "position_s": listened, "listened_s": listened, "track_duration_s": duration,
            "client_ts": T0 + timedelta(minutes=minute)}


def completed(user, track, minute):
    """A play of ``track`` heard to the end: play, complete one minute later."""
    return [event(user, track, "play", minute, listened=0.0), event(user, track, "complete", minute + 1)]


def session(user, tracks, start):
    return [row for i, track in enumerate(tracks) for row in completed(user, track, start + 2 * i)]


def frame(rows):
    return pd.DataFrame(rows, columns=list(EVENT_COLUMNS))


@pytest.fixture(scope="module")
def catalogue():
    """Two clusters of unit embeddings (A around e1, B around e2) and the stream's catalogue of them."""
    rng = np.random.default_rng(5)
    rows = []
    for ids, axis in ((A_TRACKS, 0), (B_TRACKS, 1)):
        for track in ids:
            vector = rng.normal(0, 0.05, 6)
            vector[axis] += 1.0
            rows.append({"track_id": track, "embedding": (vector / np.linalg.norm(vector)).tolist()})
    tracks_frame = pd.DataFrame(rows)
    tracks = recommendable_tracks(tracks_frame[["track_id"]], embeddings_from_frame(tracks_frame))
    return rv.stream_catalogue(tracks)


def als_factors(catalogue, users):
    """Rank-2 factors: every listener learned to like A (what the training period showed)."""
    items = pd.DataFrame({"track_id": A_TRACKS + B_TRACKS,
                          "features": [[1.0, 0.0]] * len(A_TRACKS) + [[0.0, 0.1]] * len(B_TRACKS)})
    return rv.factors_from_frames(pd.DataFrame({USER_ID: users, "features": [[1.0, 0.0]] * len(users)}), items,
                                  version="als-test", catalogue=catalogue)


def inputs_of(train_rows, holdout_rows):
    train, holdout = frame(train_rows), frame(holdout_rows)
    trained = {user: set(group["track_id"]) for user, group in train.groupby(USER_ID)}
    columns = [USER_ID, "track_id", "type", "listened_s", "track_duration_s", "client_ts"]
    return rv.ReplayInputs(history_tail=train[columns], held_out=holdout[columns], trained_tracks=trained)


def shifting(user):
    """Trained on five A tracks; the next day, six B tracks completed (the taste moved)."""
    return session(user, A_TRACKS[:5], 0), session(user, B_TRACKS[:6], NEXT_DAY)


def staying(user):
    """Trained on five A tracks; in the same session, four more A tracks completed (the stream
    still holds the trained ones in its window, so it does not offer them again)."""
    return session(user, A_TRACKS[:5], 0), session(user, A_TRACKS[5:9], 10)


def batch_of(users):
    """The nightly list: ALS's top 10 unplayed (the A tracks after the five trained ones)."""
    return {user: A_TRACKS[5:15] for user in users}


def replay_all(pattern, users):
    train, holdout = [], []
    for user in users:
        before, after = pattern(user)
        train += before
        holdout += after
    return rv.build_replays(inputs_of(train, holdout))


# --- the replay -------------------------------------------------------------------------------

def test_events_are_replayed_in_time_order_and_ties_by_kind():
    rows = [event("u", 7, "complete", 5), event("u", 7, "like", 5), event("u", 7, "play", 5),
            event("u", 3, "play", 1)]
    ordered = rv.in_time_order(frame(rows))
    assert ordered["type"].tolist() == ["play", "play", "complete", "like"]
    assert ordered["track_id"].tolist() == [3, 7, 7, 7]


def test_counted_plays_exclude_skips_repeats_and_plays_without_an_end():
    train = session("u", [1, 2], 0)
    holdout = [
        *completed("u", 3, NEXT_DAY),  # counted
        event("u", 4, "play", NEXT_DAY + 3, listened=0.0), event("u", 4, "skip", NEXT_DAY + 3, listened=4.0),
        *completed("u", 1, NEXT_DAY + 5),  # a repeat of a trained track
        *completed("u", 3, NEXT_DAY + 7),  # a repeat within the holdout
        event("u", 5, "play", NEXT_DAY + 9, listened=0.0), event("u", 5, "like", NEXT_DAY + 9),  # liked: counted
        event("u", 6, "play", NEXT_DAY + 11, listened=0.0), event("u", 6, "skip", NEXT_DAY + 12, listened=25.0),
        event("u", 8, "play", NEXT_DAY + 13, listened=0.0),  # never ended
    ]
    (replay,) = rv.build_replays(inputs_of(train, holdout))
    plays = rv.counted_plays(replay.events, first_holdout=replay.first_holdout, trained_tracks={1, 2})
    assert [track for _, track in plays] == [3, 5]
    # after the last training event and the first counted play's start come targets 3 then 5 ...
    assert replay.points[0] == replay.first_holdout - 1 and replay.targets[0] == 3
    assert replay.targets[1] == 5 and len(set(replay.targets)) == 2
    # ... and every target starts after its point: no point predicts what already began
    assert all(position > point for point, position in zip(replay.points, replay.target_positions))
    assert max(replay.points) < plays[-1][0]


def test_a_training_event_after_the_holdout_start_is_refused():
    train, holdout = session("u", [1, 2], NEXT_DAY + 60), session("u", [3], NEXT_DAY)
    with pytest.raises(rv.RealtimeValueError, match="not before the holdout"):
        rv.build_replays(inputs_of(train, holdout))


def test_the_history_at_a_point_never_holds_a_later_event():
    (replay,) = replay_all(shifting, ["u"])
    for point in replay.points:
        history = rv.history_at(replay.events, point, limit=50, window_s=3 * 3600)
        assert history["client_ts"].max() <= replay.events["client_ts"].iloc[point]
        assert len(history) <= point + 1
    # at the holdout's start, the previous day's session is outside the stream's window
    start = rv.history_at(replay.events, replay.first_holdout, limit=50, window_s=3 * 3600)
    assert start["track_id"].tolist() == [B_TRACKS[0]]


def test_the_live_list_after_an_event_ignores_every_later_event(catalogue):
    (replay,) = replay_all(shifting, ["u"])
    als = als_factors(catalogue, ["u"])
    lists = rv.live_lists(replay, catalogue=catalogue, als=als, config=StreamConfig())
    point = replay.first_holdout + 1  # after the first B track's complete
    altered = replay.events.copy()
    altered.loc[point + 1:, "track_id"] = A_TRACKS[-1]  # a different future
    altered.loc[point + 1:, "type"] = "dislike"
    changed = rv.ListenerReplay("u", altered, replay.first_holdout, (point,), (0,), (point + 1,))
    assert rv.live_lists(changed, catalogue=catalogue, als=als, config=StreamConfig())[point] == lists[point]


# --- when real time must win, and when it must not matter ---------------------------------------

def test_a_listener_whose_taste_shifts_is_served_better_live(catalogue):
    users = [f"s{i}" for i in range(20)]
    result = rv.measure_realtime_value(replay_all(shifting, users), batch_lists=batch_of(users),
                                       catalogue=catalogue, als=als_factors(catalogue, users), k=10,
                                       bootstrap=BOOTSTRAP)
    # 11 points each (after the last A event, then after each of the first 10 B events): the
    # first predicts B from an A session (a miss), the other 10 follow the B session (hits)
    assert result.listeners == 20 and result.points == 20 * 11 and result.plays == 20 * 6
    assert result.batch[rv.HIT_RATE].estimate == 0.0
    assert result.live[rv.HIT_RATE].estimate == pytest.approx(10 / 11)
    uplift = result.uplift[rv.HIT_RATE]
    assert uplift.estimate == pytest.approx(10 / 11) and uplift.low > 0.5
    assert result.uplift[rv.NDCG].low > 0
    assert result.by_step[0] == {"step": 0, "points": 20, "live_hit_rate_at_k": 0.0, "batch_hit_rate_at_k": 0.0}
    assert result.by_step[1]["live_hit_rate_at_k"] == 1.0
    # the previous day's A tracks left the stream's window: the live list offers some again
    assert result.heard_share["live"] > 0 and result.heard_share["batch"] == 0.0


def test_a_listener_whose_taste_stays_gains_nothing_in_hits(catalogue):
    users = [f"a{i}" for i in range(20)]
    result = rv.measure_realtime_value(replay_all(staying, users), batch_lists=batch_of(users),
                                       catalogue=catalogue, als=als_factors(catalogue, users), k=10,
                                       bootstrap=BOOTSTRAP)
    # every next A track is in both top 10s: equal hit rates, an uplift of exactly 0
    assert result.live[rv.HIT_RATE].estimate == result.batch[rv.HIT_RATE].estimate == 1.0
    uplift = result.uplift[rv.HIT_RATE]
    assert (uplift.estimate, uplift.low, uplift.high) == (0.0, 0.0, 0.0)
    assert result.ratio() == 1.0
    # one session: the stream never offers a heard track again; the fixed batch list keeps the ones just played
    assert result.heard_share["live"] == 0.0 and result.heard_share["batch"] > 0


def test_no_listener_to_replay_is_an_error(catalogue):
    with pytest.raises(rv.RealtimeValueError, match="no listener"):
        rv.measure_realtime_value([], batch_lists={}, catalogue=catalogue, als=None)


# --- storage, and the Spark inputs ------------------------------------------------------------

def test_the_document_is_stored_once_per_run_and_read_back(mongo_db, catalogue):
    users = [f"s{i}" for i in range(5)]
    result = rv.measure_realtime_value(replay_all(shifting, users), batch_lists=batch_of(users),
                                       catalogue=catalogue, als=als_factors(catalogue, users), bootstrap=BOOTSTRAP)
    document = rv.realtime_value_document(result, job_run_id="job-9", model_version="als-x",
                                          data_snapshot={"hash": "abc"}, data_source={"simulator": 110})
    first = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rv.record_realtime_value(mongo_db, document, now=first)
    rv.record_realtime_value(mongo_db, document, now=first + timedelta(hours=1))
    assert mongo_db[rv.MongoCollection.REALTIME_VALUE].count_documents({}) == 1
    stored = rv.latest_realtime_value(mongo_db)
    assert stored["run_id"] == run_id_of("job-9", model="als", kind=RunKind.FINAL)
    assert stored["live"]["hit_rate_at_k"] == pytest.approx(result.live[rv.HIT_RATE].estimate)
    assert stored["uplift"]["hit_rate_at_k_ci_low"] == pytest.approx(result.uplift[rv.HIT_RATE].low)
    assert stored["created_at"].replace(tzinfo=timezone.utc) == first
    assert stored["data_source"] == {"simulator": 110} and stored["by_step"] == result.by_step


def test_replay_inputs_split_like_the_training_job(spark):
    rows = []
    for user in ("u1", "u2"):
        before, after = shifting(user)
        rows += before + after
    events = spark.createDataFrame(frame(rows), schema=event_schema())
    inputs = rv.replay_inputs(events, users=["u1"], holdout=3, min_train_tracks=2, recent_events=4)
    assert set(inputs.held_out[USER_ID]) == set(inputs.history_tail[USER_ID]) == {"u1"}
    # the last three new tracks (B 4..6) are held out; the tail is the last 4 training events
    assert sorted(set(inputs.held_out["track_id"])) == B_TRACKS[3:6]
    assert len(inputs.history_tail) == 4
    assert inputs.history_tail["client_ts"].max() < inputs.held_out["client_ts"].min()
    assert inputs.trained_tracks == {"u1": set(A_TRACKS[:5]) | set(B_TRACKS[:3])}


@pytest.mark.slow
def test_the_training_call_replays_a_fitted_model_and_stores_once(spark, mongo_db, tmp_path):
    """The job's call on simulated listeners: a real ALS fit, its saved factors, the document read
    back; the batch lists do not move when the held-out events change (they never read them)."""
    from simulator import synthetic_catalogue
    from spark_jobs.recommend import registry
    from spark_jobs.recommend.recommenders import recommendation_lists
    from spark_jobs.recommend.training import TrainingOptions, fit_and_recommend, make_split
    from tests.spark_jobs.recommend.conftest import simulated_documents, tracks_of

    catalogue = synthetic_catalogue(tracks=150, genres=6)
    documents = simulated_documents(catalogue, listeners=40, events=4_000, seed=3)
    mongo_db["listening_events"].insert_many([{**d, "_id": d["event_id"]} for d in documents])
    tracks = tracks_of(catalogue)
    events = spark.createDataFrame(pd.DataFrame(documents)[list(EVENT_COLUMNS)], schema=event_schema()).cache()
    options = TrainingOptions(job_run_id="rt-1", grid=({"rank": 8, "regParam": 0.1, "alpha": 1.0, "maxIter": 5},),
                              holdout=3, seed=7, bootstrap=BOOTSTRAP)

    def batch_lists(frame):
        split = make_split(frame, tracks=tracks, options=options)
        factors, items, recommendations = fit_and_recommend(split, options.grid[0], tracks=tracks, options=options)
        return recommendation_lists(recommendations), factors, items

    lists, factors, items = batch_lists(events)
    store = registry.als_store(tmp_path)
    registry.save_model(store, "als-rt", users=factors,
                        items=spark.createDataFrame(items, "track_id long, features array<float>"), metadata={})
    call = dict(tracks=tracks, batch_lists=lists, als_dir=store.version_dir("als-rt"), version="als-rt",
                job_run_id="rt-1", holdout=3, min_train_tracks=5, k=10, data_snapshot={"hash": "h"},
                bootstrap=BOOTSTRAP)
    document = rv.evaluate_and_record(mongo_db, events, **call)
    assert document["listeners"] > 10 and document["points"] > document["plays"] > 0
    for part in (rv.LIVE, rv.BATCH):
        low, value, high = (document[part][f"hit_rate_at_k{s}"] for s in ("_ci_low", "", "_ci_high"))
        assert 0 <= low <= value <= high <= 1
    assert document["data_source"] == {"simulator": sum(1 for d in documents if d["user_id"] in set(lists))}
    rv.evaluate_and_record(mongo_db, events, **call)
    assert mongo_db["realtime_value"].count_documents({}) == 1
    stored = rv.latest_realtime_value(mongo_db)
    assert stored["uplift"] == document["uplift"] and stored["model_version"] == "als-rt"

    # the same training events with every held-out outcome flipped: the batch lists stay the same
    _, test_events = rv.split_by_time(events, holdout=3, min_train_tracks=5)
    held_out_ids = {row["event_id"] for row in test_events.select("event_id").collect()}
    flip = {"complete": "skip", "skip": "complete", "like": "dislike", "dislike": "like"}
    flipped = pd.DataFrame(documents)[list(EVENT_COLUMNS)]
    flipped["type"] = [flip.get(kind, kind) if event_id in held_out_ids else kind
                       for event_id, kind in zip(flipped["event_id"], flipped["type"])]
    # (flipping changes who has a relevant held-out track, so compare the listeners both runs list)
    again = batch_lists(spark.createDataFrame(flipped, schema=event_schema()))[0]
    common = set(again) & set(lists)
    assert len(common) >= len(lists) // 2 and all(again[user] == lists[user] for user in common)
