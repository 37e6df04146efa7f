"""The real-time value panel shows the stored replay: the uplift with its interval, the verdict,
what was replayed and that the events are simulated; a run without plays shows its reason."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from spark_jobs.metrics import Bootstrap, Interval
from spark_jobs.recommend import realtime_value as rv
from tests.dashboards.conftest import TIMEOUT_S, texts


def _panel():
    from dashboards.views.realtime_value import realtime_value_panel

    realtime_value_panel()


def _document(*, uplift: Interval) -> dict:
    result = rv.RealtimeValue(
        k=10, listeners=120, points=2400, plays=500,
        live={rv.HIT_RATE: Interval(0.30, 0.26, 0.34), rv.NDCG: Interval(0.15, 0.13, 0.17)},
        batch={rv.HIT_RATE: Interval(0.20, 0.17, 0.23), rv.NDCG: Interval(0.10, 0.08, 0.12)},
        uplift={rv.HIT_RATE: uplift, rv.NDCG: Interval(0.05, 0.02, 0.08)},
        heard_share={rv.LIVE: 0.25, rv.BATCH: 0.05},
        by_step=[{"step": 0, "points": 120, "live_hit_rate_at_k": 0.2, "batch_hit_rate_at_k": 0.2},
                 {"step": 1, "points": 118, "live_hit_rate_at_k": 0.3, "batch_hit_rate_at_k": 0.2}],
        bootstrap=Bootstrap(resamples=500))
    return rv.realtime_value_document(result, job_run_id="job-7", model_version="als-abc", data_snapshot={},
                                      data_source={"simulator": 9000})


def test_the_panel_shows_the_uplift_its_interval_and_that_the_data_is_simulated(app_db):
    rv.record_realtime_value(app_db, _document(uplift=Interval(0.10, 0.06, 0.14)))
    at = AppTest.from_function(_panel, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    shown = texts(at)
    assert "hit rate@10 uplift (live − nightly) +0.1000 [+0.0600, +0.1400]" in shown
    assert "real time helps: the whole interval is above zero" in shown
    assert "**simulated** listening events" in shown and "120 listeners" in shown
    assert "live 25.0%, nightly 5.0%" in shown
    assert len(at.get("vega_lite_chart")) == 2


def test_an_uplift_within_noise_is_called_so(app_db):
    rv.record_realtime_value(app_db, _document(uplift=Interval(-0.01, -0.05, 0.03)))
    shown = texts(AppTest.from_function(_panel, default_timeout=TIMEOUT_S).run())
    assert "-0.0100 [-0.0500, +0.0300]" in shown and "no clear difference: the interval includes zero" in shown


def test_a_run_without_plays_says_why(app_db):
    rv.record_realtime_value(app_db, {"run_id": "job-8:als:final", "job_run_id": "job-8", "listeners": 0,
                                      "reason": "none of 3 holdout listeners has a counted play to predict"})
    shown = texts(AppTest.from_function(_panel, default_timeout=TIMEOUT_S).run())
    assert "Training run job-8 could not measure it: none of 3 holdout listeners" in shown


def test_before_any_replay_the_panel_says_how_to_get_one(app_db):
    shown = texts(AppTest.from_function(_panel, default_timeout=TIMEOUT_S).run())
    assert "No real-time replay yet" in shown
