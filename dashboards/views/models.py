"""Models page (analysts): each family's champion, metrics over time, tuning grid, champion
against baselines with each metric's confidence interval, the same per segment (cold, regular,
heavy listeners; new tracks), read from ``model_runs`` by field (``fma_platform.model_runs``).

The page is a sequence of sections, each a function of the runs frame called from
``models_page``: a new panel is one more function and one more call there."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.analytics import (
    champion_run,
    champion_vs_baselines,
    cutoff,
    label_of,
    latest_final_run,
    metric_history,
    model_runs,
    run_metric,
    tuning_grid,
)
from dashboards.auth import Role
from dashboards.charts import comparison_chart, metrics_over_time_chart, tuning_heatmap
from dashboards.views.common import database_section, empty_state, service_banners
from dashboards.views.realtime_value import realtime_value_panel
from dashboards.services import database, database_key
from dashboards.session import require_role
from fma_platform.model_runs import (
    CHAMPION_METRIC, CI_BOUNDS, CI_CONFIDENCE, CI_HIGH, CI_LOW, COLD, HEAVY, HEAVY_MIN_EVENTS, NEW_TRACKS,
    RECOMMENDATION_METRICS, REGULAR, SEGMENT_COUNT, SEGMENT_PREFIX, Metric, RunFamily, interval_key, metric_label,
    segment_key,
)

RECOMMENDATIONS = RunFamily.RECOMMENDATIONS
# How the page names each family, and what to run when it has no champion yet.
FAMILY_NAMES = {RunFamily.RECOMMENDATIONS: "Recommender", RunFamily.SIMILAR_TRACKS: "Similar tracks"}
NO_CHAMPION = {
    RunFamily.RECOMMENDATIONS: "the first training run that beats the baselines becomes one",
    RunFamily.SIMILAR_TRACKS: "the similar-tracks job publishes one on its first run",
}
SEGMENT_TITLES = {  # in table order; the definitions are spark_jobs.metrics' SegmentRule
    COLD: "cold listeners (<= 5 training events)",
    REGULAR: "regular listeners",
    HEAVY: "heavy listeners (top decile by training events)",
    NEW_TRACKS: "new tracks (no training play)",
}
SEGMENT_METRICS: tuple[Metric, ...] = (
    Metric.NDCG_AT_K, Metric.HIT_RATE_AT_K, Metric.RECALL_AT_K, Metric.CATALOGUE_COVERAGE_AT_K,
    Metric.INTRA_LIST_DIVERSITY_AT_K, Metric.NOVELTY_AT_K,
)


@st.cache_data(ttl=30, show_spinner=False)
def _runs(db_key: str) -> pd.DataFrame:
    return model_runs(database())


def models_page() -> None:
    require_role(Role.ANALYST)
    st.title("Models")
    service_banners(events=False)
    with database_section("Model runs"):
        runs = _runs(database_key())
        if runs.empty:
            empty_state("model runs", "run the training DAG (ALS tuning and baselines)")
            return
        for family in RunFamily:
            _champion(runs, family)
        _history(runs)
        _tuning(runs)
        _comparison(runs)
        _segments(runs)
        realtime_value_panel()


def _champion(runs: pd.DataFrame, family: RunFamily) -> None:
    name, metric = FAMILY_NAMES[family], CHAMPION_METRIC[family]
    champion = champion_run(runs, family)
    if champion is None:
        st.info(f"No {name.lower()} champion yet: {NO_CHAMPION[family]}.")
    else:
        value = run_metric(runs, champion["run_id"], metric)
        shown = "n/a" if value is None else f"{value:.4f}" + _interval_text(runs, champion["run_id"], metric)
        st.success(f"{name} champion: {champion['model']} {champion['model_version'] or ''} "
                   f"(job run {champion['job_run_id']}, {metric_label(metric, cutoff(champion['k']))} {shown})")
        promotion = champion["promotion"] if isinstance(champion["promotion"], dict) else {}
        if promotion.get("reason"):
            st.caption(f"Why it is champion: {promotion['reason']}")
    latest = latest_final_run(runs, family)
    if latest is not None and (champion is None or latest["run_id"] != champion["run_id"]):
        promotion = latest["promotion"] or {}
        st.caption(f"Latest {name.lower()} candidate (job run {latest['job_run_id']}): "
                   f"{promotion.get('reason', 'not promoted')}")


def _interval_text(runs: pd.DataFrame, run_id: str, metric: str) -> str:
    """``", 95 % CI [0.2800, 0.3200]"`` when the run stored an interval for ``metric``, else ``""``."""
    low, high = (run_metric(runs, run_id, interval_key(metric, bound)) for bound in CI_BOUNDS)
    if low is None or high is None:
        return ""
    confidence = run_metric(runs, run_id, CI_CONFIDENCE)
    level = f"{confidence:.0%} " if confidence is not None else ""
    return f", {level}CI [{low:.4f}, {high:.4f}]"


def interval_cells(compared: pd.DataFrame, metrics) -> pd.DataFrame:
    """The ``champion_vs_baselines`` rows of ``metrics`` with a ``cell`` column ``"0.1234 [0.1100, 0.1300]"``
    (the value and its stored interval bounds; a metric without a stored interval: the value alone)."""
    names = [str(metric) for metric in metrics]
    bounds = {interval_key(metric, bound): (metric, bound) for metric in names for bound in CI_BOUNDS}
    values = compared[compared["metric"].isin(names)]
    limits = {(row.model, *bounds[row.metric]): row.value
              for row in compared[compared["metric"].isin(bounds)].itertuples()}

    def text(row) -> str:
        low, high = limits.get((row.model, row.metric, CI_LOW)), limits.get((row.model, row.metric, CI_HIGH))
        return f"{row.value:.4f}" if low is None or high is None else f"{row.value:.4f} [{low:.4f}, {high:.4f}]"

    return values.assign(cell=[text(row) for row in values.itertuples()])


def interval_table(compared: pd.DataFrame) -> pd.DataFrame:
    """Metric x model cells ``"0.1234 [0.1100, 0.1300]"`` from ``champion_vs_baselines`` rows that
    hold the metrics and their interval bounds (a metric without a stored interval: the value alone)."""
    cells = interval_cells(compared, RECOMMENDATION_METRICS)
    return cells.pivot(index="metric_label", columns="model", values="cell")


def segment_names(runs: pd.DataFrame) -> tuple[str, ...]:
    """Every per-segment figure name recorded in ``runs`` (``segment:...``)."""
    return tuple(sorted(name for name in runs["metric"].unique() if str(name).startswith(f"{SEGMENT_PREFIX}:")))


def segment_table(compared: pd.DataFrame, *, k: int | None) -> pd.DataFrame:
    """(segment, metric) x model cells with intervals, plus each segment's listener count, from the
    ``champion_vs_baselines`` rows of per-segment figures; segments in ``SEGMENT_TITLES`` order."""
    parts = []
    for segment, title in SEGMENT_TITLES.items():
        count = compared[compared["metric"] == segment_key(segment, SEGMENT_COUNT)]
        if count.empty:
            continue
        parts.append(count.assign(segment=title, shown="listeners scored",
                                  cell=[f"{value:.0f}" for value in count["value"]]))
        for metric in SEGMENT_METRICS:
            cells = interval_cells(compared, [segment_key(segment, metric)])
            parts.append(cells.assign(segment=title, shown=metric_label(metric, k)))
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    order = {name: position for position, name in enumerate(dict.fromkeys(zip(table["segment"], table["shown"])))}
    wide = table.pivot(index=["segment", "shown"], columns="model", values="cell")
    wide = wide.iloc[sorted(range(len(wide)), key=lambda row: order[wide.index[row]])]
    return wide.rename_axis(index=["segment", "metric"])


def _history(runs: pd.DataFrame) -> None:
    st.subheader("Holdout metrics over time")
    recorded = set(runs.loc[runs["family"] == RECOMMENDATIONS, "metric"])
    options = [str(m) for m in RECOMMENDATION_METRICS if m in recorded]
    if not options:
        empty_state("holdout evaluations", "the training DAG evaluates ALS and the baselines on a holdout")
        return
    default = str(CHAMPION_METRIC[RECOMMENDATIONS])
    metric = st.selectbox("Metric", options, index=options.index(default) if default in options else 0,
                          format_func=lambda m: label_of(runs, m), key="models_metric")
    st.altair_chart(metrics_over_time_chart(metric_history(runs, metric), metric=label_of(runs, metric)),
                    key="metrics_over_time_chart")


def _tuning(runs: pd.DataFrame) -> None:
    metric = CHAMPION_METRIC[RECOMMENDATIONS]
    label = label_of(runs, metric)
    st.subheader(f"Tuning grid ({label} on the validation split, latest tuning run)")
    grid = tuning_grid(runs, family=RECOMMENDATIONS, metric=metric)
    if grid.empty:
        empty_state("tuning trials", "the training DAG records each ALS trial with kind='trial'")
    else:
        st.altair_chart(tuning_heatmap(grid, metric=label), key="tuning_heatmap")


def _comparison(runs: pd.DataFrame) -> None:
    st.subheader("Champion vs baselines (same holdout)")
    compared = champion_vs_baselines(runs, family=RECOMMENDATIONS)
    if compared.empty:
        empty_state("a champion with baselines", "the training DAG promotes a champion after evaluating it")
        return
    st.altair_chart(comparison_chart(compared), key="comparison_chart")
    with_bounds = champion_vs_baselines(runs, family=RECOMMENDATIONS, metrics=(
        *RECOMMENDATION_METRICS, *(interval_key(m, bound) for m in RECOMMENDATION_METRICS for bound in CI_BOUNDS)))
    table = interval_table(with_bounds)
    confidence = run_metric(runs, champion_run(runs, RECOMMENDATIONS)["run_id"], CI_CONFIDENCE)
    if confidence is not None:
        st.caption(f"Each value with its {confidence:.0%} interval [low, high]: percentile bootstrap over the "
                   "holdout listeners (catalogue coverage is catalogue-level: no interval).")
    st.dataframe(table, key="comparison_table")


def _segments(runs: pd.DataFrame) -> None:
    st.subheader("Champion vs baselines by segment (same holdout)")
    names = segment_names(runs)
    compared = champion_vs_baselines(runs, family=RECOMMENDATIONS, metrics=names) if names else pd.DataFrame()
    champion = champion_run(runs, RECOMMENDATIONS)
    if compared.empty or champion is None:
        empty_state("per-segment metrics", "the training job scores each segment with every final and baseline run")
        return
    heavy = run_metric(runs, champion["run_id"], segment_key(HEAVY, HEAVY_MIN_EVENTS))
    threshold = "" if heavy is None else f" (here: at least {heavy:.0f} events)"
    st.caption(
        "Listeners by their events in the training window: cold at most 5, heavy above the 90th percentile of all "
        f"listeners{threshold}, regular the rest. New tracks had no play in the training window: each listener's "
        "held-out new tracks are the target, and coverage is the share of the new tracks that appear in any list. "
        "Coverage grows with a segment's size: compare it across models, not segments. Values with their "
        "bootstrap interval over the segment's listeners.")
    st.dataframe(segment_table(compared, k=cutoff(champion["k"])), key="segment_table")

