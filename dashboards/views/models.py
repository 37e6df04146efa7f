"""Models page (analysts): metrics over time, tuning grid, champion against baselines."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.analytics import (
    COMPARED_KEYS,
    RECOMMENDER,
    champion_run,
    champion_vs_baselines,
    metric_history,
    model_runs,
    tuning_grid,
)
from dashboards.auth import Role
from dashboards.charts import comparison_chart, metrics_over_time_chart, tuning_heatmap
from dashboards.views.common import database_section, empty_state, service_banners
from dashboards.services import database, database_key
from dashboards.session import require_role

GRID_METRIC = "ndcg_at_k"


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
        _champions(runs)
        _history(runs)
        st.subheader("Tuning grid (NDCG@k on the validation split, latest tuning run)")
        grid = tuning_grid(runs, metric=GRID_METRIC)
        if grid.empty:
            empty_state("tuning trials", "the training DAG records each ALS trial with kind='trial'")
        else:
            st.altair_chart(tuning_heatmap(grid, metric=GRID_METRIC), key="tuning_heatmap")
        st.subheader("Champion vs baselines (same holdout)")
        compared = champion_vs_baselines(runs)
        if compared.empty:
            empty_state("a champion with baselines", "the training DAG promotes a champion after evaluating it")
        else:
            st.altair_chart(comparison_chart(compared), key="comparison_chart")
            st.dataframe(compared.pivot(index="metric", columns="model", values="value"), key="comparison_table")


def _champions(runs: pd.DataFrame) -> None:
    champion = champion_run(runs)
    if champion is None:
        st.info("No ALS champion yet: the first training run that beats the baselines becomes one.")
    else:
        st.success(f"Recommender champion: {champion['model']} {champion.get('model_version') or ''} "
                   f"(run {champion['run_id']}, NDCG@k {_metric(runs, champion['run_id'], 'ndcg_at_k')})")
    latest = runs[(runs["model"] == RECOMMENDER) & (runs["kind"] == "final")].sort_values("created_at")
    if not latest.empty and (champion is None or latest.iloc[-1]["run_id"] != champion["run_id"]):
        promotion = latest.iloc[-1].get("promotion") or {}
        st.caption(f"Latest candidate {latest.iloc[-1]['run_id']}: {promotion.get('reason', 'not promoted')}")
    similar = champion_run(runs, "lsh")
    if similar is not None:
        st.caption(f"Similar tracks: LSH run {similar['run_id']} "
                   f"(recall@10 vs exact {_metric(runs, similar['run_id'], 'recall_at_10')})")


def _metric(runs: pd.DataFrame, run_id: str, metric: str) -> str:
    values = runs[(runs["run_id"] == run_id) & (runs["metric"] == metric)]["value"]
    return f"{values.iloc[0]:.4f}" if not values.empty else "n/a"


def _history(runs: pd.DataFrame) -> None:
    st.subheader("Holdout metrics over time")
    options = [m for m in COMPARED_KEYS if m in set(runs["metric"])]
    if not options:
        empty_state("holdout evaluations", "the training DAG evaluates ALS and the baselines on a holdout")
        return
    metric = st.selectbox("Metric", options, index=options.index("ndcg_at_k") if "ndcg_at_k" in options else 0,
                          key="models_metric")
    st.altair_chart(metrics_over_time_chart(metric_history(runs, metric), metric=metric),
                    key="metrics_over_time_chart")
