"""Access rules, the analyst pages on seeded run records, empty states and outages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from dashboards.analytics import (
    champion_vs_baselines,
    latest_trending,
    metric_history,
    model_runs,
    principal_components,
    tuning_grid,
)
from fma_platform.contracts import Collection
from infra.process import free_port
from tests.dashboards.conftest import app_test, page_test, recent, texts

ANALYST_PAGES = ("pipeline", "models", "live", "catalogue", "platform")


@pytest.mark.parametrize("name", ANALYST_PAGES)
def test_listeners_and_anonymous_users_are_refused(app_db, listener, name):
    at = page_test(name, listener).run()
    assert not at.exception
    assert "Access refused: this page is for analysts only" in texts(at)
    anonymous = page_test(name).run()
    assert "Please log in first" in texts(anonymous)


def test_analysts_are_refused_the_player(app_db, analyst):
    at = page_test("player", analyst).run()
    assert "Access refused: this page is for listeners only" in texts(at)


def test_navigation_shows_pages_by_role(app_db, listener, analyst):
    for user, visible, hidden in ((listener, "Player", "Pipeline"), (analyst, "Pipeline", "Player")):
        at = app_test()
        at.session_state["auth_user"] = user
        at.run()
        assert not at.exception
        assert [t.value for t in at.title][0] == visible
        assert hidden not in [t.value for t in at.title]


@pytest.mark.parametrize("name", ANALYST_PAGES)
def test_empty_collections_say_what_to_run(app_db, analyst, name):
    at = page_test(name, analyst).run()
    assert not at.exception
    if name != "platform":
        assert "No " in texts(at) and "yet" in texts(at)


def test_pipeline_page_from_seeded_runs(app_db, analyst, settings):
    started = datetime(2026, 1, 5, tzinfo=timezone.utc)
    app_db[Collection.ETL_RUNS].insert_one({
        "run_id": "manual__2026-01-05", "dataset": "sample", "status": "success", "started_at": started,
        "counts": {"extracted": 118, "loaded": 118, "quarantined": 2},
        "stage_seconds": {"acquire": 1.5, "extract": 40.0, "load": 3.2},
    })
    app_db[Collection.QUARANTINE].insert_many([
        {"dataset": "sample", "track_id": 7, "stage": "extract", "reason": "too_short", "etl_run_id": "manual__2026-01-05"},
        {"dataset": "sample", "track_id": 8, "stage": "extract", "reason": "no_audio", "etl_run_id": "manual__2026-01-05"},
    ])
    app_db[Collection.DATA_QUALITY].insert_one({
        "run_id": "manual__2026-01-05", "suite": "track_features", "success": False, "evaluated_expectations": 10,
        "successful_expectations": 9, "row_count": 118, "validated_at": started, "data_docs_url": None,
        "failures": [{"expectation_type": "expect_column_values_to_be_between", "columns": ["tempo_bpm"],
                      "summary": "tempo_bpm out of range for 1 row", "suite": "track_features",
                      "unexpected_count": 1, "track_ids": [9]}],
    })
    at = page_test("pipeline", analyst).run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["success", "118", "118", "2"]
    assert "tempo_bpm out of range" in at.dataframe[-1].value.to_string()
    assert "9/10 expectations" in texts(at)
    link = at.get("link_button")[0]
    assert link.proto.url == f"http://{settings.host}:{settings.airflow_port}/dags/fma_etl/runs/manual__2026-01-05"
    assert len(at.get("vega_lite_chart")) == 2  # stage timings + quarantine reasons


def _metrics(ndcg: float, **more) -> dict:
    """Holdout/validation metrics as ``train_als.evaluate`` names them (k = 10)."""
    return {"k": 10, "n_users": 400, "precision_at_k": ndcg / 2, "recall_at_k": ndcg + 0.1, "ndcg_at_k": ndcg,
            "map_at_k": ndcg * 0.7, "hit_rate_at_k": 0.7, "catalogue_coverage_at_k": 0.9,
            "intra_list_diversity_at_k": 0.8, "novelty_at_k": 8.2, **more}


def _model_runs(app_db) -> None:
    """Two training runs shaped as ``train_als`` and ``similar_tracks`` write them: run A's ALS
    is the champion; run B tuned again but was not promoted; LSH runs are their own family."""
    t0 = datetime(2026, 1, 6, tzinfo=timezone.utc)
    docs = []
    for run, at, base in (("run-A", t0, 0.20), ("run-B", t0 + timedelta(days=1), 0.10)):
        docs += [{"run_id": f"{run}-trial-{i:02d}", "model": "als", "kind": "trial", "split": "validation",
                  "params": {"rank": rank, "regParam": reg, "alpha": 1.0, "maxIter": 10},
                  "metrics": _metrics(base + rank / 1000 + reg), "champion": False, "model_version": None,
                  "created_at": at}
                 for i, (rank, reg) in enumerate((r, g) for r in (16, 32) for g in (0.01, 0.1))]
        docs += [{"run_id": f"{run}-baseline-{name}", "model": name, "kind": "baseline", "split": "holdout",
                  "params": {}, "metrics": _metrics(score), "champion": False, "model_version": None,
                  "created_at": at + timedelta(minutes=1)}
                 for name, score in (("random", 0.03), ("most_popular", 0.04 + base / 10))]
        docs.append({"run_id": f"{run}-final", "model": "als", "kind": "final", "split": "holdout",
                     "params": {"rank": 32, "regParam": 0.1}, "metrics": _metrics(base + 0.1),
                     "champion": run == "run-A", "model_version": f"als-{run}",
                     "promotion": {"promoted": run == "run-A", "reason": f"{run}: the reason"},
                     "created_at": at + timedelta(minutes=2)})
        docs.append({"run_id": f"{run}:lsh:final", "model": "lsh", "kind": "final", "champion": True,
                     "params": {"bucket_length": 2.0}, "metrics": {"recall_at_10": 0.98, "candidate_pairs": 45000},
                     "created_at": at + timedelta(minutes=3)})
    app_db[Collection.MODEL_RUNS].insert_many(docs)


def test_models_page_from_runs_shaped_as_the_jobs_write_them(app_db, analyst):
    _model_runs(app_db)
    runs = model_runs(app_db)
    grid = tuning_grid(runs)
    assert len(grid) == 4 and grid["value"].max() == pytest.approx(0.10 + 0.032 + 0.1)  # run B's trials only
    assert {grid["x_param"].iloc[0], grid["y_param"].iloc[0]} == {"rank", "regParam"}
    compared = champion_vs_baselines(runs)
    assert set(compared["model"]) == {"champion (als)", "random", "most_popular"}
    assert set(compared["metric"]) >= {"precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k",
                                       "catalogue_coverage_at_k", "intra_list_diversity_at_k", "novelty_at_k"}
    champion_ndcg = compared[(compared["model"] == "champion (als)") & (compared["metric"] == "ndcg_at_k")]
    assert champion_ndcg["value"].tolist() == [pytest.approx(0.30)]  # run A's final, not run B's
    baseline = compared[(compared["model"] == "most_popular") & (compared["metric"] == "ndcg_at_k")]
    assert baseline["value"].tolist() == [pytest.approx(0.06)]  # evaluated with the champion (run A)
    history = metric_history(runs, "ndcg_at_k")
    assert set(history["model"]) == {"als", "random", "most_popular"} and len(history) == 6  # no LSH, no trials
    at = page_test("models", analyst).run()
    assert not at.exception
    shown = texts(at)
    assert "Recommender champion: als als-run-A (run run-A-final, NDCG@k 0.3000)" in shown
    assert "Latest candidate run-B-final: run-B: the reason" in shown
    assert "Similar tracks: LSH run run-B:lsh:final (recall@10 vs exact 0.9800)" in shown
    assert len(at.get("vega_lite_chart")) == 3  # metrics over time, tuning heatmap, comparison


def test_live_page_from_seeded_events_and_stream_metrics(app_db, analyst):
    app_db[Collection.LISTENING_EVENTS].insert_many([
        {"_id": f"{i:032x}", "user_id": f"u{i % 3}", "track_id": 2, "type": "play", "position_s": 0.0,
         "listened_s": 0.0, "client_ts": recent(1 + i), "session_id": "s", "source": "simulator"} for i in range(6)])
    window = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    app_db[Collection.TRENDING].insert_many([
        {"window_start": window, "window_end": window + timedelta(minutes=5), "kind": "track", "key": 2, "plays": 6,
         "completes": 2, "skips": 1, "likes": 1},
        {"window_start": window, "window_end": window + timedelta(minutes=5), "kind": "genre", "key": 12,
         "title": "Rock", "plays": 6, "completes": 2, "skips": 1, "likes": 1}])
    app_db[Collection.STREAM_METRICS].insert_one({
        "query_id": "q", "batch_id": 1, "batch_time": window, "input_rows": 6, "valid_events": 6, "dead_letters": 0,
        "latency_seconds": {"p50": 0.8, "p95": 1.5, "max": 2.0}, "lag": {"0": 3, "1": 0}})
    at = page_test("live", analyst).run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["6", "3"]
    assert len(at.get("vega_lite_chart")) == 5


def test_trending_ranks_by_all_signals_and_names_tracks_and_genres(app_db, catalogue):
    window = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    old = window - timedelta(minutes=5)
    rows = [("track", 2, 0, 3, 1, 0, window, {}), ("track", 3, 1, 0, 0, 0, window, {}),
            ("track", 999, 2, 0, 0, 0, window, {}), ("track", 5, 50, 0, 0, 0, old, {}),
            ("genre", 12, 0, 3, 1, 0, window, {"title": "Rock"}), ("genre", 15, 1, 0, 0, 0, window, {})]
    app_db[Collection.TRENDING].insert_many([
        {"kind": kind, "key": key, "plays": plays, "completes": completes, "likes": likes, "skips": skips,
         "window_start": start, "window_end": start + timedelta(minutes=5), **extra}
        for kind, key, plays, completes, likes, skips, start, extra in rows])
    tracks = latest_trending(app_db, "track")
    assert tracks["key"].tolist() == [2, 999, 3]  # 4 signals, 2, 1; the older window is left out
    assert tracks["label"].tolist() == ["Midnight Engine — The Rivets", "track 999", "Paper Lanterns — Ocean Static"]
    genres = latest_trending(app_db, "genre")
    assert genres["label"].tolist() == ["Rock", "Electronic"]  # stored title, else FMA's genre title


def test_catalogue_page_maps_embeddings(app_db, analyst, catalogue):
    rng = np.random.default_rng(0)
    app_db[Collection.TRACK_FEATURES].insert_many(
        [{"track_id": t, "embedding": rng.normal(size=8).tolist()} for t in catalogue])
    at = page_test("catalogue", analyst).run()
    assert not at.exception
    assert at.metric[0].value == "5"
    assert len(at.get("vega_lite_chart")) == 2


def test_principal_components_find_the_main_axis():
    points = np.outer(np.arange(-5, 6), [3.0, 4.0]) / 5.0  # all on one line
    projected = principal_components(points)
    assert np.allclose(np.abs(projected[:, 0]), np.abs(np.arange(-5, 6)))
    assert np.allclose(projected[:, 1], 0)


@pytest.mark.slow
def test_outages_show_banners_and_playback_state_survives(app_db, listener, catalogue, app_env):
    at = page_test("player", listener).run()
    at.button(key="search_play_2").click().run()
    app_env(mongo_port=str(free_port()), kafka_port=str(free_port()))
    at.run(timeout=40)
    assert not at.exception
    shown = texts(at)
    assert "MongoDB is unavailable" in shown and "Kafka is unavailable" in shown
    assert "Midnight Engine" in shown  # the current track is still in the player
    at.button(key="like_button").click().run(timeout=40)
    assert not at.exception
    at.run(timeout=40)  # the banner is drawn before the button: the next run counts the like
    assert "(1 waiting)" in texts(at)
