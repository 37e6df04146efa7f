"""Access rules, the analyst pages on seeded run records, empty states and outages."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from dashboards.analytics import (
    champion_vs_baselines,
    embedding_map,
    latest_trending,
    metric_history,
    model_runs,
    principal_components,
    stream_health,
    tuning_grid,
)
from fma_platform.contracts import Collection
from fma_platform.model_runs import Metric, RunFamily, RunKind, model_run_document, record_run
from fma_platform.stream_status import QUERY_NAME, BatchMetrics, batch_progress_fields, running_heartbeat
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


def test_pipeline_page_from_seeded_runs(app_db, analyst, settings, app_env):
    app_env(mongo_db=app_db.name, bind_host="0.0.0.0")  # services listen everywhere; links use the advertised host
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
    assert "0.0.0.0" not in link.proto.url
    assert len(at.get("vega_lite_chart")) == 2  # stage timings + quarantine reasons


def test_pipeline_page_links_each_runs_data_docs_over_http(app_db, analyst, settings, app_env):
    app_env(mongo_db=app_db.name, bind_host="0.0.0.0")  # links use the advertised host, never the bind address
    started = datetime(2026, 1, 5, tzinfo=timezone.utc)
    run_id = "manual__2026-01-05T00:00:00+00:00"
    app_db[Collection.ETL_RUNS].insert_one({"run_id": run_id, "dataset": "local", "status": "success",
                                            "started_at": started, "counts": {"extracted": 64, "loaded": 64}})
    docs = settings.data_docs_url  # what the validate task stored
    pages = [f"{docs}/validations/{suite}/manual__2026-01-05T00%3A00%3A00%2B00%3A00/20260105T000000.000000Z/"
             f"fma_dataframes-{suite}.html" for suite in ("track_features", "track_feature_values", "track_feature_columns")]
    warning = {"expectation_type": "expect_column_values_to_be_between", "columns": ["tempo_bpm"],
               "summary": "tempo_bpm: 9 of 64 values 0 BPM (no onsets found)", "suite": "track_features",
               "unexpected_count": 9, "track_ids": [4], "severity": "warning"}
    app_db[Collection.DATA_QUALITY].insert_many([
        {"run_id": run_id, "suite": "track_features", "success": True, "evaluated_expectations": 32,
         "successful_expectations": 31, "row_count": 64, "validated_at": started, "failures": [],
         "warnings": [warning], "data_docs_url": f"{docs}/index.html", "data_docs_pages": pages},
        # A record from before Data Docs were served: its file:// link would open nothing.
        {"run_id": run_id, "suite": "tracks_catalogue", "success": True, "evaluated_expectations": 12,
         "successful_expectations": 12, "row_count": 70, "validated_at": started, "failures": [],
         "data_docs_url": "file:///srv/fma/.platform/gx/gx/uncommitted/data_docs/local_site/index.html"},
    ])

    at = page_test("pipeline", analyst).run()

    assert not at.exception
    links = {button.proto.label: button.proto.url for button in at.get("link_button")}
    assert {label: url for label, url in links.items() if label.startswith("Data Docs")} == {
        "Data Docs: track_features": pages[0], "Data Docs: track_feature_values": pages[1],
        "Data Docs: track_feature_columns": pages[2]}
    assert not any(url.startswith("file:") or "0.0.0.0" in url for url in links.values())
    assert "31/32 expectations on 64 rows, 1 warning" in texts(at)
    assert any("tempo_bpm: 9 of 64 values 0 BPM" in frame.value.to_string() for frame in at.dataframe)


def _metrics(ndcg: float) -> dict:
    """Holdout/validation metrics named by ``Metric`` (at the run's ``params.k``), plus a job figure."""
    return {Metric.PRECISION_AT_K: ndcg / 2, Metric.RECALL_AT_K: ndcg + 0.1, Metric.NDCG_AT_K: ndcg,
            Metric.MAP_AT_K: ndcg * 0.7, Metric.HIT_RATE_AT_K: 0.7, Metric.CATALOGUE_COVERAGE_AT_K: 0.9,
            Metric.INTRA_LIST_DIVERSITY_AT_K: 0.8, Metric.NOVELTY_AT_K: 8.2, "n_users": 400}


def _model_runs(app_db) -> None:
    """Two training job runs and their similar-tracks runs, written through the ``model_runs``
    contract: run A's ALS is the champion; run B tuned again but was not promoted."""
    t0 = datetime(2026, 1, 6, tzinfo=timezone.utc)
    for job, at, base in (("run-A", t0, 0.20), ("run-B", t0 + timedelta(days=1), 0.10)):
        def record(minutes: int, **fields) -> None:
            document = model_run_document(job_run_id=job, data_snapshot={"interactions": 5000}, **fields)
            record_run(app_db, document, now=at + timedelta(minutes=minutes))

        for rank, reg in ((r, g) for r in (16, 32) for g in (0.01, 0.1)):
            record(0, family=RunFamily.RECOMMENDATIONS, model="als", kind=RunKind.TRIAL,
                   label=f"rank={rank} regParam={reg}",
                   params={"rank": rank, "regParam": reg, "alpha": 1.0, "maxIter": 10, "k": 10},
                   metrics=_metrics(base + rank / 1000 + reg), model_version=f"als-{job}-{rank}-{reg}")
        for name, score in (("random", 0.03), ("most_popular", 0.04 + base / 10)):
            record(1, family=RunFamily.RECOMMENDATIONS, model=name, kind=RunKind.BASELINE, params={"k": 10},
                   metrics=_metrics(score), model_version=f"data-{job}")
        record(2, family=RunFamily.RECOMMENDATIONS, model="als", kind=RunKind.FINAL,
               params={"rank": 32, "regParam": 0.1, "k": 10}, metrics=_metrics(base + 0.1),
               model_version=f"als-{job}", champion=job == "run-A",
               promotion={"promoted": job == "run-A", "reason": f"{job}: the reason"})
        record(3, family=RunFamily.SIMILAR_TRACKS, model="lsh", kind=RunKind.FINAL,
               params={"bucket_length": 2.0, "k": 10}, champion=True, model_version=f"lsh-{job}",
               metrics={Metric.RECALL_AT_K: 0.98 if job == "run-B" else 0.9, "candidate_pairs": 45000})


def test_models_page_from_runs_written_through_the_contract(app_db, analyst):
    _model_runs(app_db)
    runs = model_runs(app_db)
    grid = tuning_grid(runs)
    assert len(grid) == 4 and grid["value"].max() == pytest.approx(0.10 + 0.032 + 0.1)  # run B's trials only
    assert {grid["x_param"].iloc[0], grid["y_param"].iloc[0]} == {"rank", "regParam"}
    compared = champion_vs_baselines(runs)
    assert set(compared["model"]) == {"champion (als)", "random", "most_popular"}
    assert set(compared["metric_label"]) == {"precision@10", "recall@10", "NDCG@10", "MAP@10",
                                             "catalogue coverage@10", "intra list diversity@10", "novelty@10"}
    champion_ndcg = compared[(compared["model"] == "champion (als)") & (compared["metric"] == Metric.NDCG_AT_K)]
    assert champion_ndcg["value"].tolist() == [pytest.approx(0.30)]  # run A's final, not run B's
    baseline = compared[(compared["model"] == "most_popular") & (compared["metric"] == Metric.NDCG_AT_K)]
    assert baseline["value"].tolist() == [pytest.approx(0.06)]  # evaluated with the champion (run A)
    history = metric_history(runs, Metric.NDCG_AT_K)
    assert set(history["model"]) == {"als", "random", "most_popular"} and len(history) == 6  # no LSH, no trials
    at = page_test("models", analyst).run()
    assert not at.exception
    shown = texts(at)
    assert "Recommender champion: als als-run-A (job run run-A, NDCG@10 0.3000)" in shown
    assert "Latest recommender candidate (job run run-B): run-B: the reason" in shown
    assert "Similar tracks champion: lsh lsh-run-B (job run run-B, recall@10 0.9800)" in shown
    assert "Tuning grid (NDCG@10 on the validation split, latest tuning run)" in shown
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
    batches = [BatchMetrics(batch_id=b, input_rows=6, valid_events=6, latency_seconds={"p50": 0.8, "p95": 1.5,
                                                                                     "max": 2.0 + b})
               .document(query_id="q", query_name=QUERY_NAME, batch_time=window - timedelta(seconds=2 - b))
               for b in (1, 2)]
    batches[0] |= batch_progress_fields(end_offsets={"0": 10, "1": 4}, lag={"0": 3, "1": 0}, spark_duration_ms={})
    heartbeat = running_heartbeat(query_name=QUERY_NAME, query_id="q", run_id="r", is_active=True, status=None,
                                  error=None, last_batch_id=2, end_offsets={"0": 13, "1": 4}, lag={"0": 0, "1": 0},
                                  started_at_epoch=0.0, now=datetime.now(timezone.utc) - timedelta(seconds=4))
    app_db[Collection.STREAM_METRICS].insert_many([*batches, heartbeat.document()])
    health = stream_health(app_db)  # the batches only, newest first; lag once Spark reported it
    assert health["max"].tolist() == [4.0, 3.0] and health["lag"].tolist()[1] == 3 and pd.isna(health["lag"][0])
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    app_db[Collection.REJECTED_REPORTS].insert_many([
        {"_id": f"{hour:%Y-%m-%dT%H}/s1/rate_limited", "hour": hour, "reason": "rate_limited", "count": 40},
        {"_id": f"{hour:%Y-%m-%dT%H}/s2/replay", "hour": hour, "reason": "replay", "count": 2},
        {"_id": "old/s1/replay", "hour": hour - timedelta(hours=3), "reason": "replay", "count": 99}])
    at = page_test("live", analyst).run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["6", "3", "42"]
    assert "Refused by reason: rate_limited 40, replay 2" in texts(at)
    seen = re.search(r"Streaming job streaming_recommendations: active, last heartbeat (\d+) s ago, "
                     r"0 records behind\.", texts(at))
    assert seen and 4 <= int(seen.group(1)) < 60  # written 4 s before the page ran (a slow machine adds some)
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
    vectors = rng.normal(size=(len(catalogue), 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # unit embeddings, as the ETL stores them
    documents = [{"track_id": t, "embedding": v.tolist(), "model_version": "v1"} for t, v in zip(catalogue, vectors)]
    documents[-1]["embedding"] = [0.0] * 8  # a damaged document: the embedding rule leaves it out
    app_db[Collection.TRACK_FEATURES].insert_many(documents)
    points = embedding_map(app_db)
    assert sorted(points["track_id"]) == sorted(catalogue)[:-1]
    assert set(points["genre"]) == {"Rock", "Electronic", "Jazz"}
    # At most ``limit`` tracks, spread over the ids (2, 3, 10, 20); the damaged one is still left out.
    assert embedding_map(app_db, limit=4)["track_id"].tolist() == [2, 3, 10]
    at = page_test("catalogue", analyst).run()
    assert not at.exception
    assert at.metric[0].value == "5"
    assert len(at.get("vega_lite_chart")) == 2


def test_platform_page_counts_documents_and_names_an_unreachable_database(app_db, analyst, catalogue, app_env):
    at = page_test("platform", analyst).run()
    assert not at.exception
    counts = at.dataframe[0].value.set_index("collection")["documents"]
    assert counts["tracks"] == 5 and counts["users"] == 1 and counts["model_runs"] == 0
    assert f"database `{app_db.name}`" in texts(at)
    app_env(mongo_db=app_db.name, mongo_port=str(free_port()))
    at = page_test("platform", analyst).run(timeout=30)
    assert not at.exception
    assert "MongoDB at" in texts(at) and "did not answer" in texts(at)


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
