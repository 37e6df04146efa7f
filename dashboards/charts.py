"""Altair charts of the analyst pages, built from the tidy frames of ``dashboards.analytics``."""

from __future__ import annotations

from datetime import datetime

import altair as alt
import pandas as pd


def stage_timings_chart(timings: pd.DataFrame) -> alt.Chart:
    """One stacked bar per ETL run (labelled by its start, newest on top), stages in pipeline order."""
    stages = list(dict.fromkeys(timings["stage"]))
    return alt.Chart(timings).transform_calculate(order=f"indexof({stages}, datum.stage)").mark_bar().encode(
        x=alt.X("seconds:Q", title="seconds", stack="zero"),
        y=alt.Y("run:N", title="ETL run (start, UTC)", sort="descending"),
        color=alt.Color("stage:N", sort=stages), order=alt.Order("order:Q"),
        tooltip=["run_id", "stage", "seconds"],
    )


def quarantine_chart(reasons: pd.DataFrame) -> alt.Chart:
    return alt.Chart(reasons).mark_bar().encode(
        x=alt.X("tracks:Q"), y=alt.Y("reason:N", sort="-x"), color="stage:N", tooltip=["stage", "reason", "tracks"],
    )


def metrics_over_time_chart(history: pd.DataFrame, *, metric: str) -> alt.Chart:
    """One metric of each model's holdout evaluations over time (one line per model)."""
    return alt.Chart(history).mark_line(point=True).encode(
        x=alt.X("created_at:T", title="evaluated at (UTC)", scale=alt.Scale(type="utc"),
                axis=alt.Axis(format="%m-%d %H:%M")),
        y=alt.Y("value:Q", title=metric), color="model:N",
        tooltip=["job_run_id", "model", alt.Tooltip("value:Q", format=".4f")],
    )


def tuning_heatmap(grid: pd.DataFrame, *, metric: str) -> alt.Chart:
    """Trials as cells (two params), coloured and labelled by ``metric``."""
    x_param, y_param = grid["x_param"].iloc[0], grid["y_param"].iloc[0]
    base = alt.Chart(grid).encode(
        x=alt.X("x:O", title=x_param, axis=alt.Axis(labelAngle=0)), y=alt.Y("y:O", title=y_param),
        tooltip=[alt.Tooltip("x:O", title=x_param), alt.Tooltip("y:O", title=y_param),
                 alt.Tooltip("value:Q", title=metric, format=".4f")],
    )
    cells = base.mark_rect().encode(color=alt.Color("value:Q", title=metric, scale=alt.Scale(scheme="viridis")))
    labels = base.mark_text(fontSize=13, color="white").encode(text=alt.Text("value:Q", format=".3f"))
    return (cells + labels).properties(height=max(160, 60 * grid["y"].nunique()))


def comparison_chart(compared: pd.DataFrame) -> alt.Chart:
    """One small bar chart per metric (each on its own scale: novelty is in bits, the rest in 0..1)."""
    return alt.Chart(compared).mark_bar().encode(
        x=alt.X("model:N", title=None, axis=alt.Axis(labels=False, ticks=False)), y=alt.Y("value:Q", title=None),
        color="model:N", tooltip=["model", "metric_label", alt.Tooltip("value:Q", format=".4f")],
    ).properties(width=110, height=160).facet(facet=alt.Facet("metric_label:N", title=None), columns=4).resolve_scale(
        y="independent")


def events_per_minute_chart(per_minute: pd.DataFrame, *, start: datetime, end: datetime) -> alt.Chart:
    """One-minute bars, stacked by event type, over the window ``start``..``end`` (UTC).

    Bars span their minute exactly (x..x2) and are stacked here (y..y2), so a single
    busy minute in an hour is a thin bar, not a chart-wide block.
    """
    bars = per_minute.assign(minute=pd.to_datetime(per_minute["minute"], utc=True)).sort_values(["minute", "type"])
    bars["top"] = bars.groupby("minute")["events"].cumsum()
    bars = bars.assign(bottom=bars["top"] - bars["events"], minute_end=bars["minute"] + pd.Timedelta(minutes=1))
    return alt.Chart(bars).mark_bar().encode(
        x=alt.X("minute:T", title="minute (UTC)", axis=alt.Axis(format="%H:%M"),
                scale=alt.Scale(type="utc", domain=[_epoch_ms(start), _epoch_ms(end)])),
        x2="minute_end:T", y=alt.Y("top:Q", title="events"), y2="bottom:Q", color="type:N",
        tooltip=[alt.Tooltip("utcyearmonthdatehoursminutes(minute):T", title="minute (UTC)", format="%H:%M"),
                 "type", "events"],
    )


def _epoch_ms(moment: datetime) -> float:
    return moment.timestamp() * 1000.0


TRENDING_SIGNALS = ["plays", "completes", "likes", "skips"]


def trending_chart(trending: pd.DataFrame, *, label: str) -> alt.Chart:
    """Each key's signals as stacked bars, the most active key on top."""
    signals = trending.melt(id_vars=["label"], value_vars=TRENDING_SIGNALS, var_name="signal", value_name="events")
    return alt.Chart(signals).mark_bar().encode(
        x=alt.X("events:Q", stack="zero", title="events in the window"),
        y=alt.Y("label:N", sort=alt.EncodingSortField("events", op="sum", order="descending"), title=label,
                axis=alt.Axis(labelLimit=280)),
        color=alt.Color("signal:N", sort=TRENDING_SIGNALS), tooltip=["label", "signal", "events"],
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
