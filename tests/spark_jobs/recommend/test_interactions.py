"""Events -> implicit strengths (one early-skip rule with the stream), int user ids, a leak-free holdout."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import functions as F

from fma_platform.listening import is_early_skip
from spark_jobs.recommend.errors import InteractionsError
from spark_jobs.recommend.interactions import early_skip, implicit_interactions, index_users, split_by_time
from tests.spark_jobs.recommend.conftest import event, frame_of


def test_strength_follows_the_documented_formula(spark):
    rows = [
        # completed and liked: listened 1 + complete 1 + like 2 = 4
        event("u", 1, "play", at=0), event("u", 1, "complete", at=1, listened=30), event("u", 1, "like", at=2, listened=30),
        # early skip after 3 s: 0.1 - 1 -> clipped to 0
        event("u", 2, "play", at=3), event("u", 2, "skip", at=4, listened=3),
        # late skip at 2/3 (not early): 0.667
        event("u", 3, "play", at=5), event("u", 3, "skip", at=6, listened=20),
        # completed then disliked: 2 - 2 = 0
        event("u", 4, "play", at=7), event("u", 4, "complete", at=8, listened=30), event("u", 4, "dislike", at=9, listened=30),
        # completed twice, no duration known: 2 x (1 + 1) = 4
        event("u", 5, "play", at=10, duration=None), event("u", 5, "complete", at=11, listened=30, duration=None),
        event("u", 5, "play", at=12, duration=None), event("u", 5, "complete", at=13, listened=30, duration=None),
        # skip after 12 s of a 50 s track: 24 % < 30 % -> early: 0.24 - 1 -> 0
        event("u", 6, "play", at=14, duration=50), event("u", 6, "skip", at=15, listened=12, duration=50),
        # skip after 40 s of 100 s: neither rule -> late: 0.4
        event("u", 7, "play", at=16, duration=100), event("u", 7, "skip", at=17, listened=40, duration=100),
    ]
    got = {r["track_id"]: r for r in implicit_interactions(frame_of(spark, rows)).collect()}
    assert got[1]["strength"] == pytest.approx(4.0)
    assert got[2]["strength"] == 0.0 and got[2]["early_skips"] == 1
    assert got[3]["strength"] == pytest.approx(2 / 3, abs=1e-3) and got[3]["early_skips"] == 0
    assert got[4]["strength"] == 0.0
    assert got[5]["strength"] == pytest.approx(4.0) and got[5]["plays"] == 2
    assert got[6]["early_skips"] == 1 and got[6]["strength"] == 0.0
    assert got[7]["early_skips"] == 0 and got[7]["strength"] == pytest.approx(0.4)


def test_spark_early_skip_agrees_with_the_streams_rule(spark):
    rng = np.random.default_rng(3)
    edges = [(3.0, 30.0), (9.99, None), (10.0, 30.0), (10.0, 40.0), (12.0, 50.0), (29.0, 100.0), (31.0, 100.0),
             (5.0, 0.0), (15.0, 0.0), (15.0, -1.0), (None, 30.0), (15.0, None), (None, None), (0.0, 30.0)]
    random_rows = [(float(listened), None if missing else float(duration)) for listened, duration, missing in
                   zip(rng.uniform(0, 60, 300), rng.uniform(5, 120, 300), rng.random(300) < 0.2)]
    rows = edges + random_rows
    frame = spark.createDataFrame([(i, listened, duration) for i, (listened, duration) in enumerate(rows)],
                                  "i int, listened double, duration double")
    spark_rule = [r["early"] for r in frame.select("i", early_skip(F.col("listened"), F.col("duration")).alias("early"))
                  .orderBy("i").collect()]
    stream_rule = is_early_skip(np.array([r[0] for r in rows], dtype=object).astype(float),
                                np.array([r[1] for r in rows], dtype=object)).tolist()
    assert spark_rule == stream_rule
    assert spark_rule[:7] == [True, True, False, True, True, True, False]
    assert 0 < sum(spark_rule) < len(rows)  # both outcomes occur


def test_user_ids_map_to_dense_ints_in_id_order(spark):
    rows = [event(u, 1, "play", at=i) for i, u in enumerate(["b", "a", "c", "a"])]
    mapping = {r["user_id"]: r["user_index"] for r in index_users(implicit_interactions(frame_of(spark, rows))).collect()}
    assert mapping == {"a": 0, "b": 1, "c": 2}


def test_holdout_takes_each_users_last_tracks_and_never_leaks(spark):
    rows = []
    for track in range(1, 9):  # u1: 8 tracks, one per hour; track 3 replayed at the very end
        rows += [event("u1", track, "play", at=60 * track), event("u1", track, "complete", at=60 * track + 1, listened=30)]
    rows += [event("u1", 3, "play", at=60 * 9)]
    rows += [event("u2", t, "play", at=t) for t in (1, 2, 3)]  # too little history: train-only
    train, test = split_by_time(frame_of(spark, rows), holdout=2, min_train_tracks=5)
    train_rows, test_rows = train.collect(), test.collect()
    assert {r["track_id"] for r in test_rows if r["user_id"] == "u1"} == {7, 8, 3}  # 3: the late replay
    assert {r["track_id"] for r in train_rows if r["user_id"] == "u1"} == {1, 2, 3, 4, 5, 6}
    assert not [r for r in test_rows if r["user_id"] == "u2"] and len([r for r in train_rows if r["user_id"] == "u2"]) == 3
    assert max(r["client_ts"] for r in train_rows if r["user_id"] == "u1") < min(r["client_ts"] for r in test_rows)
    with pytest.raises(InteractionsError, match="holdout"):
        split_by_time(frame_of(spark, rows), holdout=0, min_train_tracks=5)


def test_holdout_on_simulated_events_is_strictly_after_training_per_user(simulated):
    events, _ = simulated
    train, test = split_by_time(events, holdout=0.2, min_train_tracks=5)
    last_train = train.groupBy("user_id").agg(F.max("client_ts").alias("last_train"))
    first_test = test.groupBy("user_id").agg(F.min("client_ts").alias("first_test"))
    joined = last_train.join(first_test, "user_id")
    assert joined.count() > 100
    assert joined.filter(F.col("last_train") >= F.col("first_test")).count() == 0
