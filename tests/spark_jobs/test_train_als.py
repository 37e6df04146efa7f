"""ALS training: interaction strengths, a leak-free holdout, baselines, tastes recovered,
promotion rules and the job end to end against the real embedded MongoDB.

Simulated listeners (``simulator``) on a synthetic catalogue of 200 tracks in 8 genres
with embeddings clustered per genre: their planted tastes are what ALS must recover.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from fma_platform.contracts import ALS_MODELS, Collection
from fma_platform.events import to_document
from fma_platform.settings import get_settings
from simulator import simulate, synthetic_catalogue
from spark_jobs import als_registry as registry
from spark_jobs.interactions import (
    EVENT_COLUMNS,
    InteractionsError,
    event_schema,
    implicit_interactions,
    index_users,
    split_by_time,
)
from spark_jobs.recommenders import (
    catalogue_from_frame,
    content_based,
    genre_popular,
    hybrid_weight,
    most_popular,
    random_tracks,
    recommendation_lists,
    top_unplayed,
)
from spark_jobs.train_als import (
    TrainConfig,
    TrainingError,
    evaluate,
    fit_and_recommend,
    main,
    make_split,
    parse_grid,
    promote_if_better,
)

T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
K = 10


# --- helpers --------------------------------------------------------------------------------

def event(user, track, kind, *, at, listened=0.0, duration=30.0, number=[0]):
    number[0] += 1
    return {"event_id": f"{number[0]:032x}", "user_id": user, "track_id": track, "type": kind,
            "position_s": listened, "listened_s": listened, "track_duration_s": duration,
            "client_ts": T0 + timedelta(minutes=at)}


def frame_of(spark, rows):
    return spark.createDataFrame(pd.DataFrame(rows, columns=list(EVENT_COLUMNS)), schema=event_schema())


def simulated_documents(catalog, *, listeners, events, seed=11):
    result = simulate(catalog, n_listeners=listeners, target_events=events, seed=seed, start=T0, days=14)
    return [to_document(e) for e in result.events()]


# --- interactions ---------------------------------------------------------------------------

def test_strength_follows_the_documented_formula(spark):
    rows = [
        # completed and liked: listened 1 + complete 1 + like 2 = 4
        event("u", 1, "play", at=0), event("u", 1, "complete", at=1, listened=30), event("u", 1, "like", at=2, listened=30),
        # early skip at 10%: 0.1 - 1 -> clipped to 0
        event("u", 2, "play", at=3), event("u", 2, "skip", at=4, listened=3),
        # late skip at 2/3 (not early): 0.667
        event("u", 3, "play", at=5), event("u", 3, "skip", at=6, listened=20),
        # completed then disliked: 2 - 2 = 0
        event("u", 4, "play", at=7), event("u", 4, "complete", at=8, listened=30), event("u", 4, "dislike", at=9, listened=30),
        # completed twice, no duration known: 2 x (1 + 1) = 4
        event("u", 5, "play", at=10, duration=None), event("u", 5, "complete", at=11, listened=30, duration=None),
        event("u", 5, "play", at=12, duration=None), event("u", 5, "complete", at=13, listened=30, duration=None),
    ]
    got = {r["track_id"]: r for r in implicit_interactions(frame_of(spark, rows)).collect()}
    assert got[1]["strength"] == pytest.approx(4.0)
    assert got[2]["strength"] == 0.0 and got[2]["early_skips"] == 1
    assert got[3]["strength"] == pytest.approx(2 / 3, abs=1e-3)
    assert got[4]["strength"] == 0.0
    assert got[5]["strength"] == pytest.approx(4.0) and got[5]["plays"] == 2


def test_user_ids_map_to_dense_ints_in_id_order(spark):
    rows = [event(u, 1, "play", at=i) for i, u in enumerate(["b", "a", "c", "a"])]
    mapping = {r["user_id"]: r["user_index"] for r in index_users(implicit_interactions(frame_of(spark, rows))).collect()}
    assert mapping == {"a": 0, "b": 1, "c": 2}


# --- holdout --------------------------------------------------------------------------------

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


def test_holdout_on_simulated_events_is_strictly_after_training_per_user(spark, simulated):
    events, _ = simulated
    train, test = split_by_time(events, holdout=0.2, min_train_tracks=5)
    from pyspark.sql import functions as F

    last_train = train.groupBy("user_id").agg(F.max("client_ts").alias("last_train"))
    first_test = test.groupBy("user_id").agg(F.min("client_ts").alias("first_test"))
    joined = last_train.join(first_test, "user_id")
    assert joined.count() > 100
    assert joined.filter(F.col("last_train") >= F.col("first_test")).count() == 0


# --- baselines ------------------------------------------------------------------------------

def test_top_unplayed_excludes_played_and_breaks_ties_by_track_id():
    rows, scores = top_unplayed(np.array([1.0, 3.0, 3.0, -np.inf, 2.0]), np.array([10, 20, 30, 40, 50]), [1], 3)
    assert rows.tolist() == [2, 4, 0] and scores.tolist() == [3.0, 2.0, 1.0]


def test_baselines_on_tiny_data(spark):
    catalogue = catalogue_from_frame(pd.DataFrame({
        "track_id": [1, 2, 3, 4, 5, 6], "top_genre_id": [10, 10, 10, 20, 20, 20],
        "embedding": [[1, 0], [0.9, 0.1], [0.8, 0.2], [0, 1], [0.1, 0.9], [0.2, 0.8]],
    }))
    users = spark.createDataFrame(pd.DataFrame({"user_id": ["a", "b"]}))
    played = spark.createDataFrame(pd.DataFrame({"user_id": ["a", "b"], "track_id": [4, 1]}))
    plays = np.array([5.0, 1.0, 3.0, 9.0, 0.0, 2.0])
    popular = recommendation_lists(most_popular(users, played, catalogue=catalogue, plays=plays, n=3))
    assert popular == {"a": [1, 3, 6], "b": [4, 3, 6]}
    profiles = spark.createDataFrame(pd.DataFrame({"user_id": ["a"], "positive": [[4]]}), "user_id string, positive array<long>")
    assert recommendation_lists(content_based(profiles, played, catalogue=catalogue, n=2)) == {"a": [5, 6]}
    genres = spark.createDataFrame(pd.DataFrame({"user_id": ["c"], "genres": [[20, 10]]}), "user_id string, genres array<long>")
    assert recommendation_lists(genre_popular(genres, played, catalogue=catalogue, plays=plays, n=4)) == {"c": [4, 1, 6, 3]}
    shuffle = recommendation_lists(random_tracks(users, played, catalogue=catalogue, seed=3, n=5))
    assert shuffle == recommendation_lists(random_tracks(users, played, catalogue=catalogue, seed=3, n=5))
    assert sorted(shuffle["a"]) == [1, 2, 3, 5, 6]
    assert hybrid_weight(np.array([0, 20, 180])).tolist() == [0.0, 0.5, 0.9]


def test_grid_parsing_and_errors():
    grid = parse_grid("rank=4,8;alpha=1;maxIter=5")
    assert [(p["rank"], p["alpha"], p["maxIter"]) for p in grid] == [(4, 1.0, 5), (8, 1.0, 5)]
    with pytest.raises(TrainingError, match="unknown"):
        parse_grid("depth=3")


# --- models on simulated listeners ----------------------------------------------------------

@pytest.fixture(scope="module")
def simulated(spark):
    catalog = synthetic_catalogue(tracks=200, genres=8)
    frame = pd.DataFrame(simulated_documents(catalog, listeners=300, events=30_000))[list(EVENT_COLUMNS)]
    return spark.createDataFrame(frame, schema=event_schema()).cache(), catalogue_from_frame(catalog)


@pytest.fixture(scope="module")
def fitted(simulated):
    events, catalogue = simulated
    config = TrainConfig(run_id="t", k=K, holdout=5, seed=7)
    split = make_split(events, catalogue=catalogue, config=config)
    params = {"rank": 8, "regParam": 0.1, "alpha": 1.0, "maxIter": 10}
    users, factors, items, recs = fit_and_recommend(split, params, catalogue=catalogue, config=config)
    return config, split, catalogue, factors, items, recs


@pytest.mark.slow
def test_als_recovers_simulated_tastes_far_better_than_most_popular(spark, fitted):
    config, split, catalogue, factors, items, recs = fitted
    users = spark.createDataFrame(pd.DataFrame({"user_id": sorted(split.relevant)}))
    popular = most_popular(users, split.train, catalogue=catalogue, plays=split.popularity, n=K)
    als_ndcg = evaluate(recs, split, catalogue=catalogue, k=K, embeddings=None)["ndcg_at_k"]
    popular_ndcg = evaluate(popular, split, catalogue=catalogue, k=K, embeddings=None)["ndcg_at_k"]
    assert als_ndcg > 2 * popular_ndcg and als_ndcg > 0.15


@pytest.mark.slow
def test_a_worse_model_is_not_promoted_and_a_better_one_is(spark, mongo_db, fitted, tmp_path):
    config, split, catalogue, factors, items, recs = fitted
    root = tmp_path / ALS_MODELS
    good_ndcg = evaluate(recs, split, catalogue=catalogue, k=K, embeddings=None)["ndcg_at_k"]
    registry.save_model(root, "als-good", users=factors, items=spark.createDataFrame(items), metadata={})
    first = promote_if_better(spark, mongo_db, root, version="als-good", candidate_ndcg=good_ndcg, split=split,
                              catalogue=catalogue, config=config)
    assert first.promoted and "no champion" in first.reason
    registry.write_champion(root, "als-good")

    _, bad_factors, bad_items, bad_recs = fit_and_recommend(
        split, {"rank": 1, "regParam": 10.0, "alpha": 0.0, "maxIter": 1}, catalogue=catalogue, config=config)
    bad_ndcg = evaluate(bad_recs, split, catalogue=catalogue, k=K, embeddings=None)["ndcg_at_k"]
    worse = promote_if_better(spark, mongo_db, root, version="als-bad", candidate_ndcg=bad_ndcg, split=split,
                              catalogue=catalogue, config=config)
    assert not worse.promoted and "does not beat champion als-good" in worse.reason
    assert worse.champion_ndcg == pytest.approx(good_ndcg)  # champion re-scored on this holdout

    registry.save_model(root, "als-bad", users=bad_factors, items=spark.createDataFrame(bad_items), metadata={})
    registry.write_champion(root, "als-bad")
    better = promote_if_better(spark, mongo_db, root, version="als-good", candidate_ndcg=good_ndcg, split=split,
                               catalogue=catalogue, config=config)
    assert better.promoted and "beats champion als-bad" in better.reason


def test_promotion_rules_without_factors():
    same = registry.decide_promotion(candidate_version="v1", candidate_ndcg=0.3, champion_version="v1",
                                     champion_ndcg=0.3)
    assert not same.promoted and "already the champion" in same.reason
    tie = registry.decide_promotion(candidate_version="v2", candidate_ndcg=0.3, champion_version="v1",
                                    champion_ndcg=0.3)
    assert not tie.promoted


# --- the job end to end ---------------------------------------------------------------------

@pytest.fixture()
def job_settings(mongo_db, tmp_path):
    """get_settings() pointed at the test database and a private models folder, restored after."""
    saved = {name: os.environ.get(name) for name in ("FMA_MONGO_DB", "FMA_STATE_DIR")}
    os.environ.update({"FMA_MONGO_DB": mongo_db.name, "FMA_STATE_DIR": str(tmp_path / "state")})
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


@pytest.mark.slow
def test_main_trains_registers_and_publishes_idempotently(spark, mongo_db, job_settings, capsys):
    catalog = synthetic_catalogue(tracks=200, genres=8)
    mongo_db[Collection.TRACKS].insert_many(
        catalog[["track_id", "top_genre_id", "top_genre_title"]].to_dict("records"))
    mongo_db[Collection.TRACK_FEATURES].insert_many(
        [{"track_id": int(t), "embedding": [float(x) for x in e]} for t, e in zip(catalog["track_id"], catalog["embedding"])])
    mongo_db[Collection.LISTENING_EVENTS].insert_many(simulated_documents(catalog, listeners=80, events=6_000, seed=5))
    mongo_db[Collection.USERS].insert_one({"username": "newbie", "user_id": "u-new", "genres": [20, 30]})
    argv = ["--run-id", "r1", "--k", "10", "--grid", "rank=8;regParam=0.1;alpha=1;maxIter=5", "--holdout", "3",
            "--seed", "7"]

    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["promoted"] and summary["champion"] == summary["model_version"]
    root = job_settings.models_dir / ALS_MODELS
    assert (root / "CHAMPION").read_text().strip() == summary["model_version"]
    assert (root / summary["model_version"] / "user_factors.parquet").exists()
    runs = {doc["run_id"]: doc for doc in mongo_db[Collection.MODEL_RUNS].find()}
    assert runs["r1-trial-00"]["kind"] == "trial" and runs["r1-trial-00"]["data_snapshot"]["events"] > 5_000
    final = runs["r1-final"]
    assert final["champion"] and final["promotion"]["promoted"] and final["metrics"]["ndcg_at_k"] > 0
    assert {"random", "most_popular", "content", "hybrid"} <= {d["model"] for d in runs.values() if d["kind"] == "baseline"}
    recs = {doc["user_id"]: doc for doc in mongo_db[Collection.RECOMMENDATIONS].find({}, {"_id": 0})}
    assert len(recs) == 81  # 80 listeners + the cold-start user
    assert recs["u-new"]["source"] == "popular" and recs["u-new"]["items"][0]["reason"].startswith("popular in Genre")
    listener = next(doc for doc in recs.values() if doc["source"] == "als")
    assert len(listener["items"]) == 10 and listener["model_version"] == summary["model_version"]

    assert main(argv) == 0  # same data, same run: same versions and documents
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["model_version"] == summary["model_version"] and again["ndcg_at_k"] == summary["ndcg_at_k"]
    assert {doc["user_id"]: doc for doc in mongo_db[Collection.RECOMMENDATIONS].find({}, {"_id": 0})} == recs
    assert {doc["run_id"]: doc for doc in mongo_db[Collection.MODEL_RUNS].find()} == runs
    assert spark.range(1).count() == 1  # the shared session survived main
