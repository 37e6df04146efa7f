"""Models page (analysts): metrics over time, tuning grid, champion against baselines."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.analytics import champion_vs_baselines, model_runs, tuning_grid
from dashboards.auth import Role
from dashboards.charts import comparison_chart, metrics_over_time_chart, tuning_heatmap
from dashboards.views.common import database_section, empty_state, service_banners
from dashboards.services import database, database_key
from dashboards.session import require_role

GRID_METRIC = "ndcg@10"


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
        champion = runs[runs["champion"]]
        if not champion.empty:
            st.success(f"Champion: {champion.iloc[0]['model']} (run {champion.iloc[0]['run_id']})")
        st.subheader("Metrics over time")
        st.altair_chart(metrics_over_time_chart(runs.drop(columns=["params"])), key="metrics_over_time_chart")
        st.subheader(f"Tuning grid ({GRID_METRIC})")
        grid = tuning_grid(runs, metric=GRID_METRIC)
        if grid.empty:
            empty_state("tuning trials", "the tuning step records each trial with kind='trial'")
        else:
            st.altair_chart(tuning_heatmap(grid, metric=GRID_METRIC), key="tuning_heatmap")
        st.subheader("Champion vs baselines")
        compared = champion_vs_baselines(runs)
        if compared.empty:
            empty_state("champion or baseline metrics", "the evaluation step records them")
        else:
            st.altair_chart(comparison_chart(compared), key="comparison_chart")
            st.dataframe(compared.pivot(index="metric", columns="model", values="value"), key="comparison_table")
