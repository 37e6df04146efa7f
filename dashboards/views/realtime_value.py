"""Models page panel: the value of real time. The latest training run's replay of its holdout
(``realtime_value``, written by the training job; shape in ``fma_platform.contracts``): the
streaming job's live list after every held-out event against the nightly list, next-play hit
rate@k and NDCG@k with bootstrap intervals over listeners, and the paired uplift."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st
from pymongo import DESCENDING
from pymongo.database import Database

from dashboards.services import database, database_key
from dashboards.views.common import database_section, empty_state
from fma_platform.contracts import Collection
from fma_platform.model_runs import CI_CONFIDENCE, CI_HIGH, CI_LOW, Metric, interval_key, metric_label

METRICS = (Metric.HIT_RATE_AT_K.value, Metric.NDCG_AT_K.value)
LISTS = {"live": "live (stream, after each event)", "batch": "nightly (before the holdout)"}
SIMULATOR = "simulator"


def latest_realtime_value(db: Database) -> dict | None:
    """The newest ``realtime_value`` document, without its data snapshot; None before the first."""
    return db[Collection.REALTIME_VALUE].find_one({}, {"_id": 0, "data_snapshot": 0},
                                                  sort=[("created_at", DESCENDING)])


@st.cache_data(ttl=30, show_spinner=False)
def _latest(db_key: str) -> dict | None:
    return latest_realtime_value(database())


def interval_frame(document: dict) -> pd.DataFrame:
    """One row per (list, metric): value and interval bounds, for the chart."""
    k = document.get("k")
    rows = []
    for part, title in LISTS.items():
        figures = document.get(part) or {}
        for metric in METRICS:
            if figures.get(metric) is not None:
                rows.append({"list": title, "metric": metric_label(metric, k), "value": figures[metric],
                             "low": figures.get(interval_key(metric, CI_LOW)),
                             "high": figures.get(interval_key(metric, CI_HIGH))})
    return pd.DataFrame(rows, columns=["list", "metric", "value", "low", "high"])


def uplift_text(document: dict, metric: str) -> str:
    """``"+0.0123 [-0.0040, +0.0290]"``: the paired live - batch uplift and its interval."""
    uplift = document.get("uplift") or {}
    low, high = uplift.get(interval_key(metric, CI_LOW)), uplift.get(interval_key(metric, CI_HIGH))
    text = f"{uplift[metric]:+.4f}"
    return text if low is None or high is None else f"{text} [{low:+.4f}, {high:+.4f}]"


def verdict(document: dict, metric: str) -> str:
    """Plain words: does the live list find the next play more often, less often, or is it noise?"""
    uplift = document.get("uplift") or {}
    low, high = uplift.get(interval_key(metric, CI_LOW)), uplift.get(interval_key(metric, CI_HIGH))
    if low is None or high is None:
        return "no interval recorded"
    if low > 0:
        return "real time helps: the whole interval is above zero"
    if high < 0:
        return "real time hurts: the whole interval is below zero"
    return "no clear difference: the interval includes zero"


def data_wording(document: dict) -> str:
    """Which events were replayed, in words (simulated or not)."""
    sources = document.get("data_source") or {}
    total = sum(sources.values())
    if not total:
        return "events whose source was not recorded (a training run on an events file)"
    simulated = sources.get(SIMULATOR, 0)
    if simulated == total:
        return ("**simulated** listening events (the platform's listener simulator: FMA has no per-user "
                "listening data), not real listeners")
    return f"listening events of which {simulated / total:.0%} are **simulated** (the listener simulator)"


def interval_chart(frame: pd.DataFrame) -> alt.Chart:
    """Live vs nightly bars per metric with their interval as a rule."""
    base = alt.Chart(frame).encode(x=alt.X("list:N", title=None, axis=alt.Axis(labelAngle=0, labelLimit=220)),
                                   color=alt.Color("list:N", legend=None))
    bars = base.mark_bar().encode(y=alt.Y("value:Q", title=None),
                                  tooltip=["list", "metric", alt.Tooltip("value:Q", format=".4f"),
                                           alt.Tooltip("low:Q", format=".4f"), alt.Tooltip("high:Q", format=".4f")])
    rules = base.mark_rule(color="black").encode(y="low:Q", y2="high:Q")
    return (bars + rules).properties(width=260, height=220).facet(
        column=alt.Column("metric:N", title=None)).resolve_scale(y="independent")


def step_chart(document: dict) -> alt.Chart | None:
    """Hit rate of both lists by how many held-out events the listener had played."""
    steps = pd.DataFrame(document.get("by_step") or [])
    if steps.empty:
        return None
    key = Metric.HIT_RATE_AT_K.value
    long = steps.melt(id_vars=["step", "points"], value_vars=[f"live_{key}", f"batch_{key}"], var_name="list",
                      value_name="hit rate")
    long["list"] = long["list"].map({f"live_{key}": LISTS["live"], f"batch_{key}": LISTS["batch"]})
    return alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("step:Q", title="held-out events played (last: that many or more)"),
        y=alt.Y("hit rate:Q", title=metric_label(key, document.get("k"))), color=alt.Color("list:N", title=None),
        tooltip=["step", "points", alt.Tooltip("hit rate:Q", format=".4f")],
    ).properties(height=220)


def realtime_value_panel() -> None:
    """The panel: what was replayed, the uplift with its interval, live vs nightly charts."""
    st.subheader("The value of real time: live lists vs the nightly list")
    with database_section("The real-time replay"):
        document = _latest(database_key())
        if document is None:
            empty_state("real-time replay", "each training run replays its holdout through the streaming ranking")
            return
        _show(document)


def _show(document: dict) -> None:
    k = document.get("k")
    if document.get("reason"):
        st.info(f"Training run {document.get('job_run_id')} could not measure it: {document['reason']}.")
        return
    replay = document.get("replay") or {}
    st.markdown(
        f"Training run `{document.get('job_run_id')}` (model `{document.get('model_version')}`) replayed the "
        f"held-out events of {document['listeners']} listeners in time order: {data_wording(document)}. After "
        f"each event, the streaming job's own ranking computed the list it would have shown, from the history it "
        f"would have had at that moment ({document['points']} lists); the nightly list is the trained model's "
        f"top-{k}, computed before the holdout. Each list is scored against the listener's next play "
        f"({replay.get('play_rule', 'a completed or liked play')}; {document['plays']} plays).")
    columns = st.columns(len(METRICS))
    for column, metric in zip(columns, METRICS):
        column.metric(f"{metric_label(metric, k)} uplift (live − nightly)", uplift_text(document, metric))
        column.caption(verdict(document, metric))
    st.altair_chart(interval_chart(interval_frame(document)), key="realtime_value_chart")
    confidence = document.get(CI_CONFIDENCE)
    level = f"{confidence:.0%} " if confidence is not None else ""
    st.caption(f"Bars: mean over listeners; black rules: {level}percentile-bootstrap intervals over listeners "
               "(each listener one unit, however many lists); the uplift is paired per listener.")
    heard = document.get("heard_share_at_k") or {}
    if heard:
        st.caption(f"Share of each top-{k} the listener had already heard: live {heard.get('live', 0):.1%}, "
                   f"nightly {heard.get('batch', 0):.1%} (the stream leaves out only its last "
                   f"{replay.get('exclude_recent', '?')} events; such tracks are never a next play here).")
    chart = step_chart(document)
    if chart is not None:
        st.altair_chart(chart, key="realtime_value_steps")
