"""Altair charts of the analyst pages, built from the tidy frames of ``dashboards.analytics``."""

from __future__ import annotations

import altair as alt
import pandas as pd


def stage_timings_chart(timings: pd.DataFrame) -> alt.Chart:
    return alt.Chart(timings).mark_bar().encode(
        x=alt.X("seconds:Q", title="seconds", stack="zero"), y=alt.Y("run_id:N", title="ETL run"),
        color=alt.Color("stage:N"), tooltip=["run_id", "stage", "seconds"],
    )


def quarantine_chart(reasons: pd.DataFrame) -> alt.Chart:
    return alt.Chart(reasons).mark_bar().encode(
        x=alt.X("tracks:Q"), y=alt.Y("reason:N", sort="-x"), color="stage:N", tooltip=["stage", "reason", "tracks"],
    )


def metrics_over_time_chart(runs: pd.DataFrame) -> alt.Chart:
    return alt.Chart(runs).mark_line(point=True).encode(
        x=alt.X("created_at:T", title="run time"), y=alt.Y("value:Q"), color="metric:N",
        strokeDash="model:N", tooltip=["run_id", "model", "kind", "metric", "value"],
    )


def tuning_heatmap(grid: pd.DataFrame, *, metric: str) -> alt.Chart:
    x_param, y_param = grid["x_param"].iloc[0], grid["y_param"].iloc[0]
    return alt.Chart(grid).mark_rect().encode(
        x=alt.X("x:O", title=x_param), y=alt.Y("y:O", title=y_param),
        color=alt.Color("value:Q", title=metric, scale=alt.Scale(scheme="viridis")),
        tooltip=[alt.Tooltip("x:O", title=x_param), alt.Tooltip("y:O", title=y_param),
                 alt.Tooltip("value:Q", title=metric, format=".4f")],
    )


def comparison_chart(compared: pd.DataFrame) -> alt.Chart:
    return alt.Chart(compared).mark_bar().encode(
        x=alt.X("model:N", title=None), y=alt.Y("value:Q"), color="model:N", column=alt.Column("metric:N"),
        tooltip=["model", "metric", alt.Tooltip("value:Q", format=".4f")],
    )


def events_per_minute_chart(per_minute: pd.DataFrame) -> alt.Chart:
    return alt.Chart(per_minute).mark_area().encode(
        x=alt.X("minute:T"), y=alt.Y("events:Q", stack="zero"), color="type:N", tooltip=["minute", "type", "events"],
    )


def trending_chart(trending: pd.DataFrame, *, label: str) -> alt.Chart:
    return alt.Chart(trending).mark_bar().encode(
        x=alt.X("plays:Q"), y=alt.Y("key:N", sort="-x", title=label),
        tooltip=["key", "plays", "completes", "skips", "likes"],
    )


def stream_latency_chart(health: pd.DataFrame) -> alt.Chart:
    latency = health.melt(id_vars=["batch_time"], value_vars=["p50", "p95", "max"], var_name="latency",
                          value_name="seconds")
    return alt.Chart(latency).mark_line().encode(
        x=alt.X("batch_time:T", title="batch"), y="seconds:Q", color="latency:N",
        tooltip=["batch_time", "latency", "seconds"],
    )


def stream_lag_chart(health: pd.DataFrame) -> alt.Chart:
    return alt.Chart(health).mark_bar().encode(
        x=alt.X("batch_time:T", title="batch"), y=alt.Y("lag:Q", title="records behind"),
        tooltip=["batch_time", "lag", "input_rows"],
    )


def genre_chart(genres: pd.DataFrame) -> alt.Chart:
    return alt.Chart(genres).mark_bar().encode(
        x="tracks:Q", y=alt.Y("genre:N", sort="-x"), tooltip=["genre", "tracks"],
    )


def embedding_chart(points: pd.DataFrame) -> alt.Chart:
    return alt.Chart(points).mark_circle(size=40, opacity=0.7).encode(
        x=alt.X("pc1:Q", title="PC 1"), y=alt.Y("pc2:Q", title="PC 2"), color="genre:N",
        tooltip=["track_id", "title", "genre"],
    ).interactive()
