"""The models page shows each metric with its confidence interval, the promotion's evidence and
the per-segment table, from runs written the way the training job writes them (``ranking_report``
and ``segment_report`` through ``model_runs``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dashboards.analytics import champion_vs_baselines, model_runs
from dashboards.views.models import interval_table, segment_names, segment_table
from fma_platform.model_runs import (
    CI_BOUNDS, RECOMMENDATION_METRICS, Metric, RunFamily, RunKind, interval_key, model_run_document, record_run,
)
from spark_jobs.metrics import Bootstrap, Interval, ranking_report, segment_key, segment_report
from spark_jobs.recommend import registry
from tests.dashboards.conftest import page_test, texts

CATALOGUE = range(1, 201)
BOOTSTRAP = Bootstrap(resamples=400, seed=1)


# 40 cold listeners (3 training events), 70 regular (50), 10 heavy (500).
TRAINING_EVENTS = {f"u{i}": 3 if i < 40 else 500 if i >= 110 else 50 for i in range(120)}
POPULARITY = {t: 1 for t in CATALOGUE if t <= 100}  # tracks 101..200 never played: new tracks


def _report(hit_every: int) -> dict:
    """Metrics (overall and per segment) of a model whose first item is held out for every
    ``hit_every``-th of 120 listeners."""
    relevant = {f"u{i}": {i + 1} for i in range(120)}
    lists = {user: ([min(items)] if i % hit_every == 0 else []) + [150 + j for j in range(9)]
             for i, (user, items) in enumerate(relevant.items())}
    common = dict(catalogue=CATALOGUE, item_popularity=POPULARITY, k=10, bootstrap=BOOTSTRAP)
    return {**ranking_report(lists, relevant, **common),
            **segment_report(lists, relevant, training_events=TRAINING_EVENTS, **common)}


def _seed_runs(db) -> tuple[dict, dict]:
    at = datetime(2026, 2, 1, tzinfo=timezone.utc)
    champion, popular = _report(2), _report(10)
    promotion = registry.decide_promotion(candidate_version="als-1", candidate_ndcg=0.5, champion_version="als-0",
                                          champion_ndcg=0.45, gain=Interval(0.05, 0.01, 0.09), n_users=120,
                                          bootstrap=BOOTSTRAP)
    for minutes, (model, kind, metrics, extra) in enumerate((
            ("most_popular", RunKind.BASELINE, popular, {}),
            ("als", RunKind.FINAL, champion, {"champion": True, "promotion": promotion.as_document()}))):
        record_run(db, model_run_document(job_run_id="job-1", family=RunFamily.RECOMMENDATIONS, model=model,
                                          kind=kind, params={"k": 10}, metrics=metrics, data_snapshot={},
                                          model_version=f"{model}-v", **extra),
                   now=at + timedelta(minutes=minutes))
    return champion, popular


def test_interval_table_pairs_each_value_with_its_bounds(app_db):
    champion, popular = _seed_runs(app_db)
    names = (*RECOMMENDATION_METRICS, *(interval_key(m, b) for m in RECOMMENDATION_METRICS for b in CI_BOUNDS))
    table = interval_table(champion_vs_baselines(model_runs(app_db), metrics=names))
    ndcg, low, high = (champion[name] for name in ("ndcg_at_k", "ndcg_at_k_ci_low", "ndcg_at_k_ci_high"))
    assert table.loc["NDCG@10", "champion (als)"] == f"{ndcg:.4f} [{low:.4f}, {high:.4f}]"
    assert low < ndcg < high
    assert table.loc["NDCG@10", "most_popular"].startswith(f"{popular[Metric.NDCG_AT_K]:.4f} [")
    assert table.loc["catalogue coverage@10", "champion (als)"] == f"{champion['catalogue_coverage_at_k']:.4f}"


def test_models_page_shows_intervals_and_the_promotion_evidence(app_db, analyst):
    champion, _ = _seed_runs(app_db)
    at = page_test("models", analyst).run()
    assert not at.exception
    shown = texts(at)
    low, high = champion["ndcg_at_k_ci_low"], champion["ndcg_at_k_ci_high"]
    assert (f"Recommender champion: als als-v (job run job-1, NDCG@10 {champion['ndcg_at_k']:.4f}, "
            f"95% CI [{low:.4f}, {high:.4f}])") in shown
    assert "Each value with its 95% interval [low, high]" in shown
    assert ("Why it is champion: NDCG@k gain +0.0500 over champion als-0, 95% CI [+0.0100, +0.0900] (paired "
            "bootstrap over 120 holdout listeners): lower bound above zero: promoted") in shown
    table = at.dataframe[0].value
    assert table.loc["NDCG@10", "champion (als)"].endswith(f"[{low:.4f}, {high:.4f}]")


def test_segment_table_pairs_each_segment_value_with_its_bounds(app_db):
    champion, popular = _seed_runs(app_db)
    runs = model_runs(app_db)
    table = segment_table(champion_vs_baselines(runs, metrics=segment_names(runs)), k=10)
    cold = "cold listeners (<= 5 training events)"
    ndcg, low, high = (champion[segment_key("cold", name)] for name in ("ndcg_at_k", "ndcg_at_k_ci_low",
                                                                         "ndcg_at_k_ci_high"))
    assert table.loc[(cold, "NDCG@10"), "champion (als)"] == f"{ndcg:.4f} [{low:.4f}, {high:.4f}]"
    assert table.loc[(cold, "listeners scored"), "champion (als)"] == "40"
    assert table.loc[("heavy listeners (top decile by training events)", "listeners scored"), "most_popular"] == "10"
    # Listeners u100..u119 hold out tracks 101..120, never played in training: 20 new-track listeners.
    new = "new tracks (no training play)"
    assert table.loc[(new, "listeners scored"), "champion (als)"] == "20"
    assert table.loc[(new, "hit rate@10"), "most_popular"].startswith(
        f"{popular[segment_key('new_tracks', 'hit_rate_at_k')]:.4f} [")
    assert [segment for segment, _ in table.index][::7] == [cold, "regular listeners",
                                                            "heavy listeners (top decile by training events)", new]


def test_models_page_shows_the_segment_table(app_db, analyst):
    champion, _ = _seed_runs(app_db)
    at = page_test("models", analyst).run()
    assert not at.exception
    assert "heavy above the 90th percentile of all listeners (here: at least 500 events)" in texts(at)
    table = at.dataframe[1].value
    hit = champion[segment_key("regular", "hit_rate_at_k")]
    assert table.loc[("regular listeners", "hit rate@10"), "champion (als)"].startswith(f"{hit:.4f} [")

