"""Pipeline page (analysts): ETL runs, quarantine reasons, stage timings, data quality."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.analytics import (
    airflow_run_url,
    etl_runs,
    failed_expectations,
    latest_quality,
    quarantine_by_reason,
    run_overview,
    stage_timings,
)
from dashboards.auth import Role
from dashboards.charts import quarantine_chart, stage_timings_chart
from dashboards.views.common import database_section, empty_state, service_banners
from dashboards.services import database, database_key
from dashboards.session import require_role
from fma_platform.settings import get_settings


@st.cache_data(ttl=15, show_spinner=False)
def _runs(db_key: str) -> list[dict]:
    return etl_runs(database(), limit=20)


@st.cache_data(ttl=15, show_spinner=False)
def _quarantine(db_key: str, run_id: str | None) -> pd.DataFrame:
    return quarantine_by_reason(database(), run_id=run_id)


@st.cache_data(ttl=15, show_spinner=False)
def _quality(db_key: str) -> list[dict]:
    return latest_quality(database())


def pipeline_page() -> None:
    require_role(Role.ANALYST)
    st.title("Pipeline")
    service_banners(events=False)
    with database_section("ETL runs"):
        runs = _runs(database_key())
        if not runs:
            empty_state("ETL runs", "trigger the `fma_etl` DAG in Airflow")
            return
        _latest_run(runs[0])
        st.subheader("Runs")
        st.dataframe(run_overview(runs), hide_index=True, key="etl_runs_table")
        _timings(runs)
        _quarantine_section(runs[0]["run_id"])
        _quality_section()


def _latest_run(run: dict) -> None:
    counts = run.get("counts") or {}
    st.subheader(f"Latest run: {run['run_id']}")
    status, extracted, loaded, quarantined = st.columns(4)
    status.metric("Status", run.get("status", "unknown"))
    extracted.metric("Tracks extracted", counts.get("extracted", "–"))
    loaded.metric("Tracks loaded", counts.get("loaded", "–"))
    quarantined.metric("Quarantined", counts.get("quarantined", "–"))
    if run.get("failure"):
        st.error(f"Run failed: {run['failure']}")
    st.link_button("Open this run in Airflow", airflow_run_url(get_settings(), run["run_id"]), key="airflow_link")


def _timings(runs: list[dict]) -> None:
    st.subheader("Stage timings")
    timings = stage_timings(runs)
    if timings.empty:
        empty_state("stage timings", "they are recorded as each DAG task finishes")
    else:
        st.altair_chart(stage_timings_chart(timings), key="stage_timings_chart")


def _quarantine_section(run_id: str) -> None:
    st.subheader("Quarantined tracks by reason")
    everywhere = st.toggle("All runs", key="quarantine_all_runs")
    reasons = _quarantine(database_key(), None if everywhere else run_id)
    if reasons.empty:
        st.success("No quarantined tracks.")
    else:
        st.altair_chart(quarantine_chart(reasons), key="quarantine_chart")


def _quality_section() -> None:
    st.subheader("Data quality (latest validation)")
    reports = _quality(database_key())
    if not reports:
        empty_state("data-quality results", "the `validate` task of `fma_etl` writes them")
        return
    for report in reports:
        verdict = ":green[passed]" if report.get("success") else ":red[failed]"
        st.markdown(f"**{report['suite']}** {verdict}: {report.get('successful_expectations')}"
                    f"/{report.get('evaluated_expectations')} expectations on {report.get('row_count')} rows")
    failed = failed_expectations(reports)
    if not failed.empty:
        st.dataframe(failed, hide_index=True, key="failed_expectations_table")
