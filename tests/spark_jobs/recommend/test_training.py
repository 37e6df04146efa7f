"""ALS training: grid, tastes recovered, promotion rules, model_runs documents and the job end to end
against the real embedded MongoDB (through the spark-submit entry's ``main``)."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pandas as pd
import pytest

from fma_platform.contracts import ALS_ITEM_FACTORS, ALS_USER_FACTORS, Collection, Pointer
from fma_platform.model_runs import Metric, RunFamily, metric_interval
from fma_platform.settings import get_settings
from simulator import synthetic_catalogue
from spark_jobs.metrics import Interval, ndcg_at_k
from spark_jobs.recommend import registry
from spark_jobs.recommend.errors import TrainingError
from spark_jobs.recommend.recommenders import most_popular, recommendation_lists
from spark_jobs.recommend.training import (
    TrainingOptions, Trial, best_trial, evaluate, fit_and_recommend, make_split, parse_grid, promote_if_better,
    trial_label,
)
from spark_jobs.train_als import main
from tests.spark_jobs.recommend.conftest import simulated_documents

K = 10


def test_grid_parsing_labels_and_errors():
    grid = parse_grid("rank=4,8;alpha=1;maxIter=5")
    assert [(p["rank"], p["alpha"], p["maxIter"]) for p in grid] == [(4, 1.0, 5), (8, 1.0, 5)]
    assert trial_label(grid[0]) == "rank=4,regParam=0.1,alpha=1,maxIter=5"
    with pytest.raises(TrainingError, match="unknown"):
        parse_grid("depth=3")
    with pytest.raises(TrainingError, match="bad value"):
        parse_grid("rank=0")


def test_best_trial_is_the_highest_ndcg_and_the_earlier_on_a_tie():
    trials = [Trial(params={"rank": r}, label=str(r), metrics={"ndcg_at_k": v}, seconds=1.0)
              for r, v in [(4, 0.2), (8, 0.3), (16, 0.3)]]
    assert best_trial(trials).label == "8"
    with pytest.raises(TrainingError, match="grid is empty"):
        best_trial([])


# --- models on simulated listeners ----------------------------------------------------------

@pytest.fixture(scope="module")
def fitted(simulated):
    events, tracks = simulated
    options = TrainingOptions(job_run_id="t", grid=(), k=K, holdout=5, seed=7)
    split = make_split(events, tracks=tracks, options=options)
    params = {"rank": 8, "regParam": 0.1, "alpha": 1.0, "maxIter": 10}
    factors, items, recommendations = fit_and_recommend(split, params, tracks=tracks, options=options)
    return options, split, tracks, factors, items, recommendations


@pytest.mark.slow
def test_als_recovers_simulated_tastes_far_better_than_most_popular(spark, fitted):
    options, split, tracks, factors, items, recommendations = fitted
    users = spark.createDataFrame(pd.DataFrame({"user_id": sorted(split.relevant)}))
    popular = most_popular(users, split.train, tracks=tracks, plays=split.popularity, n=K)
    als_ndcg = evaluate(recommendations, split, tracks=tracks, k=K, embeddings=None)["ndcg_at_k"]
    popular_ndcg = evaluate(popular, split, tracks=tracks, k=K, embeddings=None)["ndcg_at_k"]
    assert als_ndcg > 2 * popular_ndcg and als_ndcg > 0.15


@pytest.mark.slow
def test_promotion_needs_a_gain_whose_lower_bound_is_above_zero(spark, fitted, tmp_path):
    options, split, tracks, factors, items, recommendations = fitted
    store = registry.als_store(tmp_path)
    good_lists = recommendation_lists(recommendations)
    registry.save_model(store, "als-good", users=factors, items=spark.createDataFrame(items), metadata={})
    first = promote_if_better(store, version="als-good", candidate_lists=good_lists, split=split, tracks=tracks,
                              options=options)
    assert first.promoted and "no champion" in first.reason and first.gain is None
    registry.crown(store, "als-good")

    # the same model from another seed: a different version, within noise of the champion
    reseeded = replace(options, seed=8)
    _, _, twin = fit_and_recommend(split, {"rank": 8, "regParam": 0.1, "alpha": 1.0, "maxIter": 10}, tracks=tracks,
                                   options=reseeded)
    noise = promote_if_better(store, version="als-twin", candidate_lists=recommendation_lists(twin), split=split,
                              tracks=tracks, options=reseeded)
    assert not noise.promoted and "within noise" in noise.reason
    assert noise.gain.low < 0 < noise.gain.high and noise.n_users == len(split.relevant)
    assert noise.champion_ndcg == pytest.approx(ndcg_at_k(good_lists, split.relevant, k=K))  # re-scored here

    bad_factors, bad_items, bad_recommendations = fit_and_recommend(
        split, {"rank": 1, "regParam": 10.0, "alpha": 0.0, "maxIter": 1}, tracks=tracks, options=options)
    worse = promote_if_better(store, version="als-bad", candidate_lists=recommendation_lists(bad_recommendations),
                              split=split, tracks=tracks, options=options)
    assert not worse.promoted and "worse: champion kept" in worse.reason and worse.gain.high < 0

    registry.save_model(store, "als-bad", users=bad_factors, items=spark.createDataFrame(bad_items), metadata={})
    registry.crown(store, "als-bad")
    better = promote_if_better(store, version="als-good", candidate_lists=good_lists, split=split, tracks=tracks,
                               options=options)
    assert better.promoted and "over champion als-bad" in better.reason and better.gain.low > 0
    document = better.as_document()  # what the final run stores: the gain with its interval
    assert document["ndcg_gain_ci_low"] == better.gain.low > 0 and document["n_users"] == len(split.relevant)
    assert registry.Promotion.from_document(document) == better


def test_promotion_rule_on_gain_intervals():
    def decide(gain, champion="v1"):
        return registry.decide_promotion(candidate_version="v2", candidate_ndcg=0.31, champion_version=champion,
                                         champion_ndcg=0.30, gain=gain, n_users=400)

    within = decide(Interval(0.01, -0.004, 0.024))
    assert not within.promoted
    assert within.reason == ("NDCG@k gain +0.0100 over champion v1, 95% CI [-0.0040, +0.0240] (paired bootstrap "
                             "over 400 holdout listeners): lower bound not above zero, within noise: champion kept")
    clear = decide(Interval(0.05, 0.021, 0.08))
    assert clear.promoted and "lower bound above zero: promoted" in clear.reason
    assert clear.as_document()["ndcg_gain"] == 0.05 and clear.as_document()["ndcg_gain_ci_high"] == 0.08
    assert clear.as_document()["confidence"] == 0.95 and clear.as_document()["resamples"] == 1000
    assert not decide(Interval(-0.05, -0.08, -0.02)).promoted
    assert decide(None, champion=None).promoted
    same = registry.decide_promotion(candidate_version="v1", candidate_ndcg=0.3, champion_version="v1",
                                     champion_ndcg=0.3)
    assert not same.promoted and "already the champion" in same.reason
    missing = decide(None)
    assert missing.promoted and "has no factors" in missing.reason
    old = {"promoted": True, "reason": "r", "previous_champion": None, "champion_ndcg_at_k": None,
           "candidate_ndcg_at_k": 0.2}  # a decision stored before intervals existed
    assert registry.Promotion.from_document(old).gain is None


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


def stored_runs(db) -> dict[str, dict]:
    """``model_runs`` by run id, without what a rerun measures anew: the time of the last
    write and a trial's seconds."""
    runs = {}
    for doc in db[Collection.MODEL_RUNS].find({}, {"_id": 0, "updated_at": 0}):
        doc["metrics"].pop(Metric.SECONDS, None)
        runs[doc["run_id"]] = doc
    return runs


@pytest.mark.slow
def test_main_trains_registers_and_publishes_idempotently(spark, mongo_db, job_settings, capsys):
    catalogue = synthetic_catalogue(tracks=200, genres=8)
    mongo_db[Collection.TRACKS].insert_many(
        catalogue[["track_id", "top_genre_id", "top_genre_title"]].to_dict("records"))
    mongo_db[Collection.TRACK_FEATURES].insert_many(
        [{"track_id": int(t), "embedding": [float(x) for x in e]}
         for t, e in zip(catalogue["track_id"], catalogue["embedding"])])
    mongo_db[Collection.LISTENING_EVENTS].insert_many(simulated_documents(catalogue, listeners=80, events=6_000,
                                                                          seed=5))
    mongo_db[Collection.USERS].insert_one({"username": "newbie", "user_id": "u-new", "genres": [20, 30]})
    argv = ["--run-id", "r1", "--k", "10", "--grid", "rank=8;regParam=0.1;alpha=1;maxIter=5", "--holdout", "3",
            "--seed", "7"]

    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["promoted"] and summary["champion"] == summary["model_version"]
    store = registry.als_store(job_settings.models_dir)
    assert store.read_pointer(Pointer.CHAMPION) == summary["model_version"]
    version_dir = store.version_dir(summary["model_version"])
    assert (version_dir / ALS_USER_FACTORS).exists() and (version_dir / ALS_ITEM_FACTORS).exists()
    assert store.metadata(summary["model_version"])["job_run_id"] == "r1"

    runs = stored_runs(mongo_db)
    trial = runs["r1:als:trial:rank=8,regParam=0.1,alpha=1,maxIter=5"]
    assert trial["kind"] == "trial" and trial["job_run_id"] == "r1" and trial["family"] == RunFamily.RECOMMENDATIONS
    assert trial["data_snapshot"]["events"] > 5_000 and trial["data_snapshot"]["split"] == "validation"
    assert trial["params"]["k"] == 10 and trial["metrics"]["ndcg_at_k"] > 0
    assert mongo_db[Collection.MODEL_RUNS].find_one({"kind": "trial"})["metrics"]["seconds"] > 0
    final = runs["r1:als:final"]
    assert final["champion"] and final["promotion"]["promoted"] and final["metrics"]["ndcg_at_k"] > 0
    assert final["model_version"] == summary["model_version"]
    low, high = metric_interval(final["metrics"], Metric.NDCG_AT_K)  # every metric with its interval
    assert low <= final["metrics"]["ndcg_at_k"] <= high and final["metrics"]["ci_resamples"] == 1000
    baselines = {d["model"]: d for d in runs.values() if d["kind"] == "baseline"}
    assert set(baselines) == {"random", "most_popular", "content", "hybrid"}
    assert "r1:hybrid:baseline" in runs and baselines["hybrid"]["params"]["hybrid_shrink"] == 20.0

    recs = {doc["user_id"]: doc for doc in mongo_db[Collection.RECOMMENDATIONS].find({}, {"_id": 0})}
    assert len(recs) == 81  # 80 listeners + the cold-start user
    assert recs["u-new"]["source"] == "popular" and recs["u-new"]["items"][0]["reason"].startswith("popular in Genre")
    listener = next(doc for doc in recs.values() if doc["source"] == "als")
    assert len(listener["items"]) == 10 and listener["model_version"] == summary["model_version"]
    assert sum(summary["published"].values()) == 81

    assert main(argv) == 0  # same data, same run: same versions and documents
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["model_version"] == summary["model_version"] and again["ndcg_at_k"] == summary["ndcg_at_k"]
    assert again["promotion_reason"] == summary["promotion_reason"]
    assert {doc["user_id"]: doc for doc in mongo_db[Collection.RECOMMENDATIONS].find({}, {"_id": 0})} == recs
    assert stored_runs(mongo_db) == runs
    assert spark.range(1).count() == 1  # the shared session survived main


def test_main_refuses_a_bad_grid_with_a_json_reason(capsys):
    assert main(["--run-id", "r", "--grid", "depth=3"]) == 2
    error = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert error["error"] == "TrainingError" and "depth" in error["detail"]
