"""Pipeline page (analysts): ETL runs, quarantine reasons, stage timings, data quality."""

from __future__ import annotations

from urllib.parse import urlsplit

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
        warnings = report.get("warnings") or []
        flagged = f", {len(warnings)} warning{'s' * (len(warnings) != 1)}" if warnings else ""
        st.markdown(f"**{report['suite']}** {verdict}: {report.get('successful_expectations')}"
                    f"/{report.get('evaluated_expectations')} expectations on {report.get('row_count')} rows{flagged}")
        _data_docs_links(report)
    failed = failed_expectations(reports)
    if not failed.empty:
        st.dataframe(failed, hide_index=True, key="failed_expectations_table")
    warned = failed_expectations([{**report, "failures": report.get("warnings")} for report in reports])
    if not warned.empty:
        st.caption("Warnings: flagged for a look, the run went on (FMA's known metadata defects, "
                   "distribution checks).")
        st.dataframe(warned, hide_index=True, key="quality_warnings_table")


def _data_docs_links(report: dict) -> None:
    """One button per Data Docs page of the run's validations (served over HTTP by the stack)."""
    pages = [url for url in report.get("data_docs_pages") or [] if _is_web_url(url)]
    if not pages and _is_web_url(report.get("data_docs_url")):
        pages = [report["data_docs_url"]]
    for column, url in zip(st.columns(max(len(pages), 1)), pages):
        name = _page_suite(url) or report["suite"]
        column.link_button(f"Data Docs: {name}", url, key=f"data_docs_{report['suite']}_{name}")


def _is_web_url(url: object) -> bool:
    """Only http(s) links are shown: a stored ``file://`` (or any other) URL opens nothing here."""
    return isinstance(url, str) and urlsplit(url).scheme in ("http", "https") and bool(urlsplit(url).netloc)


def _page_suite(url: str) -> str | None:
    """The suite of a Data Docs validation page (``.../validations/<suite>/<run>/...``)."""
    parts = urlsplit(url).path.split("/")
    return parts[parts.index("validations") + 1] if "validations" in parts[:-1] else None
