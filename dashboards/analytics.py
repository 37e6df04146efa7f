"""What the analyst pages read, shaped as tidy DataFrames for Altair.

Readers take a ``Database`` and return an empty frame (or ``None``) when their collection
holds nothing yet, so a page can say "no data yet" instead of crashing; the other
functions select from or reshape those frames. Documents follow ``fma_platform.contracts``
and, for ``model_runs``, ``fma_platform.model_runs`` (read by field, never by parsing ids).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from pymongo import DESCENDING
from pymongo.database import Database

from audio_features.fma_schema import TOP_LEVEL_GENRES
from fma_platform.contracts import Collection
from fma_platform.embeddings import load_track_embeddings
from fma_platform.model_runs import CHAMPION_METRIC, RECOMMENDATION_METRICS, RunFamily, RunKind, metric_label
from fma_platform.settings import Settings
from fma_platform.stream_status import (
    BATCH_KIND,
    BATCH_TIME,
    INPUT_ROWS,
    KIND,
    LAG,
    LATENCY_KEYS,
    LATENCY_SECONDS,
    Heartbeat,
    heartbeat_id,
)


# --- pipeline -----------------------------------------------------------------------------
def etl_runs(db: Database, *, limit: int = 20) -> list[dict]:
    """Latest ETL run summaries, newest first."""
    return list(db[Collection.ETL_RUNS].find({}, {"_id": 0}).sort([("started_at", DESCENDING)]).limit(limit))


def run_overview(runs: list[dict]) -> pd.DataFrame:
    """One row per run: status and the track counts of each stage."""
    rows = [{
        "run_id": run["run_id"], "dataset": run.get("dataset"), "status": run.get("status", "unknown"),
        "started_at": run.get("started_at"), "extracted": (run.get("counts") or {}).get("extracted"),
        "loaded": (run.get("counts") or {}).get("loaded"), "quarantined": (run.get("counts") or {}).get("quarantined"),
        "failure": run.get("failure"),
    } for run in runs]
    return pd.DataFrame(rows)


# The ``fma_etl`` DAG's tasks that record a stage time, in pipeline order (task ids).
ETL_STAGES = ["acquire", "catalogue", "extract", "validate", "transform", "load"]


def stage_timings(runs: list[dict]) -> pd.DataFrame:
    """Long form (run_id, run, stage, seconds) of every run's ``stage_seconds``, stages in
    pipeline order; ``run`` is a short label (start time, UTC) for charts."""
    rows = [{"run_id": run["run_id"], "run": _run_label(run), "stage": stage, "seconds": float(seconds)}
            for run in runs for stage, seconds in (run.get("stage_seconds") or {}).items()]
    order = {stage: i for i, stage in enumerate(ETL_STAGES)}
    frame = pd.DataFrame(rows, columns=["run_id", "run", "stage", "seconds"])
    return frame.sort_values("stage", key=lambda s: s.map(order).fillna(len(order)), kind="stable", ignore_index=True)


def _run_label(run: dict) -> str:
    started = run.get("started_at")
    return started.strftime("%m-%d %H:%M:%S") if isinstance(started, datetime) else str(run["run_id"])[-24:]


def quarantine_by_reason(db: Database, *, run_id: str | None = None) -> pd.DataFrame:
    """Quarantined tracks per (stage, reason), of one ETL run or of all."""
    match = {"etl_run_id": run_id} if run_id else {}
    rows = db[Collection.QUARANTINE].aggregate([
        {"$match": match},
        {"$group": {"_id": {"stage": "$stage", "reason": "$reason"}, "tracks": {"$sum": 1}}},
    ])
    frame = pd.DataFrame([{**row["_id"], "tracks": row["tracks"]} for row in rows],
                         columns=["stage", "reason", "tracks"])
    return frame.sort_values("tracks", ascending=False, ignore_index=True)


def latest_quality(db: Database) -> list[dict]:
    """The data-quality reports (one per suite) of the most recently validated run."""
    newest = db[Collection.DATA_QUALITY].find_one({}, {"run_id": 1}, sort=[("validated_at", DESCENDING)])
    if newest is None:
        return []
    return list(db[Collection.DATA_QUALITY].find({"run_id": newest["run_id"]}, {"_id": 0}))


def failed_expectations(reports: list[dict]) -> pd.DataFrame:
    rows = [{"suite": report["suite"], "expectation": failure.get("expectation_type"),
             "columns": ", ".join(failure.get("columns") or []), "unexpected": failure.get("unexpected_count"),
             "summary": failure.get("summary")}
            for report in reports for failure in report.get("failures") or []]
    return pd.DataFrame(rows, columns=["suite", "expectation", "columns", "unexpected", "summary"])


def airflow_run_url(settings: Settings, run_id: str) -> str:
    return f"http://{settings.host}:{settings.airflow_port}/dags/fma_etl/runs/{run_id}"


# --- models -------------------------------------------------------------------------------
RUN_COLUMNS = ["run_id", "job_run_id", "family", "model", "kind", "label", "k", "champion", "created_at",
               "metric", "metric_label", "value", "params", "model_version", "promotion"]


def model_runs(db: Database) -> pd.DataFrame:
    """Long form of ``model_runs`` (``fma_platform.model_runs``): one row per numeric metric of
    each run, with the run's fields, ``k`` (its ``params.k``) and the metric's label ("NDCG@10")."""
    rows = []
    for run in db[Collection.MODEL_RUNS].find({}, {"_id": 0, "data_snapshot": 0}).sort([("created_at", DESCENDING)]):
        params = run.get("params") or {}
        k = params.get("k")
        for metric, value in (run.get("metrics") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({"run_id": run["run_id"], "job_run_id": run.get("job_run_id"),
                             "family": run.get("family"), "model": run.get("model"), "kind": run.get("kind"),
                             "label": run.get("label"), "k": k, "champion": bool(run.get("champion")),
                             "created_at": run.get("created_at"), "metric": metric,
                             "metric_label": metric_label(metric, k), "value": float(value), "params": params,
                             "model_version": run.get("model_version"), "promotion": run.get("promotion")})
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def cutoff(k: object) -> int | None:
    """A run's ``k`` as an int; None when the run recorded none (NaN in the frame)."""
    return None if k is None or pd.isna(k) else int(k)


def label_of(runs: pd.DataFrame, metric: str) -> str:
    """``metric``'s label over ``runs``: with their cut-off when all share one ("NDCG@10"), else "NDCG@k"."""
    cutoffs = runs.loc[runs["metric"] == metric, "k"].dropna().unique()
    return metric_label(metric, int(cutoffs[0]) if len(cutoffs) == 1 else None)


def family_runs(runs: pd.DataFrame, family: RunFamily) -> pd.DataFrame:
    return runs[runs["family"] == str(family)]


def champion_run(runs: pd.DataFrame, family: RunFamily) -> pd.Series | None:
    """The latest final run of ``family`` marked champion (its first metric row), if any."""
    finals = family_runs(runs, family)
    finals = finals[(finals["kind"] == RunKind.FINAL) & finals["champion"]]
    return None if finals.empty else finals.sort_values("created_at").iloc[-1]


def latest_final_run(runs: pd.DataFrame, family: RunFamily) -> pd.Series | None:
    """The latest final run of ``family`` (champion or not), if any."""
    finals = family_runs(runs, family)
    finals = finals[finals["kind"] == RunKind.FINAL]
    return None if finals.empty else finals.sort_values("created_at").iloc[-1]


def run_metric(runs: pd.DataFrame, run_id: str, metric: str) -> float | None:
    """The value of ``metric`` in run ``run_id``; None when the run did not record it."""
    values = runs.loc[(runs["run_id"] == run_id) & (runs["metric"] == metric), "value"]
    return None if values.empty else float(values.iloc[0])


def tuning_grid(runs: pd.DataFrame, *, family: RunFamily = RunFamily.RECOMMENDATIONS,
                metric: str | None = None) -> pd.DataFrame:
    """The trials of ``family``'s latest job run as (x param, y param, value of ``metric``, by
    default the family's champion metric), on the two params with the most distinct values
    (``k``, the metrics' cut-off, is not a tuned param). Columns ``x_param, y_param, x, y, value``."""
    metric = metric or CHAMPION_METRIC[family]
    trials = family_runs(runs, family)
    trials = trials[(trials["kind"] == RunKind.TRIAL) & (trials["metric"] == metric)]
    if trials.empty:
        return pd.DataFrame(columns=["x_param", "y_param", "x", "y", "value"])
    latest = trials.sort_values("created_at").iloc[-1]["job_run_id"]
    trials = trials[trials["job_run_id"] == latest]
    params = pd.DataFrame(list(trials["params"])).drop(columns=["k"], errors="ignore").astype(str)
    varying = sorted(params.columns, key=lambda column: -params[column].nunique())[:2]
    x_param = varying[0]
    y_param = varying[1] if len(varying) > 1 else varying[0]
    grid = pd.DataFrame({"x": params[x_param].values, "y": params[y_param].values, "value": trials["value"].values})
    grid = grid.groupby(["x", "y"], as_index=False)["value"].max()
    return grid.assign(x_param=x_param, y_param=y_param)


def champion_vs_baselines(runs: pd.DataFrame, *, family: RunFamily = RunFamily.RECOMMENDATIONS,
                          metrics: tuple[str, ...] = RECOMMENDATION_METRICS) -> pd.DataFrame:
    """The champion's ``metrics`` beside those of the baselines of the same job run (the same
    holdout), long form (model, metric, metric_label, value)."""
    columns = ["model", "metric", "metric_label", "value"]
    champion = champion_run(runs, family)
    if champion is None:
        return pd.DataFrame(columns=columns)
    same_run = family_runs(runs, family)
    same_run = same_run[same_run["job_run_id"] == champion["job_run_id"]]
    chosen = same_run[((same_run["run_id"] == champion["run_id"]) | (same_run["kind"] == RunKind.BASELINE))
                      & same_run["metric"].isin([str(m) for m in metrics])]
    chosen = chosen.assign(model=np.where(chosen["run_id"] == champion["run_id"], f"champion ({champion['model']})",
                                          chosen["model"].astype(str)))
    return chosen[columns].reset_index(drop=True)


def metric_history(runs: pd.DataFrame, metric: str, *,
                   family: RunFamily = RunFamily.RECOMMENDATIONS) -> pd.DataFrame:
    """``metric`` of every holdout evaluation (finals and baselines) of ``family`` over time:
    columns created_at, model, job_run_id, value."""
    rows = family_runs(runs, family)
    rows = rows[rows["kind"].isin([RunKind.FINAL, RunKind.BASELINE]) & (rows["metric"] == metric)]
    return rows[["created_at", "model", "job_run_id", "value"]].sort_values("created_at", ignore_index=True)


# --- live listening -----------------------------------------------------------------------
def recent_events(db: Database, *, since: datetime, limit: int = 100_000) -> pd.DataFrame:
    """Events with ``client_ts >= since``: time, user_id, track_id, type, source."""
    cursor = db[Collection.LISTENING_EVENTS].find(
        {"client_ts": {"$gte": since}}, {"_id": 0, "client_ts": 1, "user_id": 1, "track_id": 1, "type": 1,
                                         "source": 1}).limit(limit)
    return pd.DataFrame(list(cursor), columns=["client_ts", "user_id", "track_id", "type", "source"])


def events_per_minute(events: pd.DataFrame) -> pd.DataFrame:
    """Events counted per minute and type (columns minute, type, events)."""
    if events.empty:
        return pd.DataFrame(columns=["minute", "type", "events"])
    minutes = pd.to_datetime(events["client_ts"], utc=True).dt.floor("min")
    counted = events.assign(minute=minutes).groupby(["minute", "type"], as_index=False).size()
    return counted.rename(columns={"size": "events"})


def active_listeners(events: pd.DataFrame, *, now: datetime, window: timedelta = timedelta(minutes=5)) -> int:
    """Distinct users with an event in the last ``window`` before ``now``."""
    if events.empty:
        return 0
    times = pd.to_datetime(events["client_ts"], utc=True)
    return int(events.loc[times >= pd.Timestamp(now - window), "user_id"].nunique())


def latest_trending(db: Database, kind: str, *, limit: int = 10) -> pd.DataFrame:
    """The newest window's most active ``kind`` ("track" | "genre") keys, with a readable label
    ("title — artist" for a track, the genre's title for a genre), most active first."""
    newest = db[Collection.TRENDING].find_one({"kind": kind}, {"window_start": 1}, sort=[("window_start", DESCENDING)])
    columns = ["key", "label", "plays", "completes", "skips", "likes", "window_start", "window_end"]
    if newest is None:
        return pd.DataFrame(columns=columns)
    counts = ["plays", "completes", "likes", "skips"]
    ranked = db[Collection.TRENDING].aggregate([
        {"$match": {"kind": kind, "window_start": newest["window_start"]}},
        {"$addFields": {"total": {"$add": [{"$ifNull": [f"${name}", 0]} for name in counts]}}},
        {"$sort": {"total": -1, "key": 1}},
        {"$limit": limit},
        {"$project": {"_id": 0}},
    ])
    frame = pd.DataFrame(list(ranked))
    frame[counts] = frame.reindex(columns=counts).fillna(0).astype(int)
    frame["label"] = _trending_labels(db, kind, frame)
    return frame.reindex(columns=columns).reset_index(drop=True)


def _trending_labels(db: Database, kind: str, frame: pd.DataFrame) -> list[str]:
    if kind == "genre":
        titles = frame.get("title", pd.Series(index=frame.index, dtype=object))
        return [title if isinstance(title, str) and title else TOP_LEVEL_GENRES.get(int(key), f"genre {key}")
                for key, title in zip(frame["key"], titles)]
    tracks = {doc["track_id"]: doc for doc in db[Collection.TRACKS].find(
        {"track_id": {"$in": [int(k) for k in frame["key"]]}}, {"_id": 0, "track_id": 1, "title": 1, "artist_name": 1})}
    labels = []
    for key in frame["key"]:
        track = tracks.get(int(key))
        labels.append(f"{track.get('title') or 'Untitled'} — {track.get('artist_name') or 'Unknown artist'}"
                      if track else f"track {key}")
    return labels


def stream_health(db: Database, *, limit: int = 200) -> pd.DataFrame:
    """Per micro-batch (the newest ``limit`` batch documents of ``fma_platform.stream_status``):
    batch_time, latency p50/p95/max (s), total lag (records; None until Spark has reported the
    batch's progress), input rows."""
    columns = [BATCH_TIME, *LATENCY_KEYS, "lag", INPUT_ROWS]
    cursor = db[Collection.STREAM_METRICS].find(
        {KIND: BATCH_KIND}, {"_id": 0, BATCH_TIME: 1, LATENCY_SECONDS: 1, LAG: 1, INPUT_ROWS: 1},
    ).sort([(BATCH_TIME, DESCENDING)]).limit(limit)
    rows = []
    for batch in cursor:
        latency = batch.get(LATENCY_SECONDS) or {}
        rows.append({BATCH_TIME: batch.get(BATCH_TIME), **{key: latency.get(key) for key in LATENCY_KEYS},
                     "lag": sum(batch[LAG].values()) if batch.get(LAG) else None, INPUT_ROWS: batch.get(INPUT_ROWS)})
    return pd.DataFrame(rows, columns=columns)


def stream_heartbeat(db: Database) -> Heartbeat | None:
    """The streaming job's heartbeat (``fma_platform.stream_status``); None when it never ran."""
    document = db[Collection.STREAM_METRICS].find_one({"_id": heartbeat_id()})
    return Heartbeat.from_document(document) if document else None


# --- catalogue ----------------------------------------------------------------------------
def genre_distribution(db: Database) -> pd.DataFrame:
    """Tracks per top-level genre (columns genre, tracks), largest first."""
    rows = db[Collection.TRACKS].aggregate([{"$group": {"_id": "$top_genre_title", "tracks": {"$sum": 1}}}])
    frame = pd.DataFrame([{"genre": row["_id"] or "Unknown", "tracks": row["tracks"]} for row in rows],
                         columns=["genre", "tracks"])
    return frame.sort_values("tracks", ascending=False, ignore_index=True)


def principal_components(matrix: np.ndarray, *, n: int = 2) -> np.ndarray:
    """Projection of the rows of ``matrix`` on its first ``n`` principal axes (numpy SVD)."""
    if matrix.ndim != 2 or matrix.shape[0] < 2:
        raise ValueError(f"need a 2-D matrix with at least 2 rows, got shape {matrix.shape}")
    centred = matrix - matrix.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ axes[:n].T
    if projected.shape[1] < n:  # fewer dimensions than asked: pad with zeros
        projected = np.hstack([projected, np.zeros((projected.shape[0], n - projected.shape[1]))])
    return projected


def embedding_map(db: Database, *, limit: int = 5000) -> pd.DataFrame:
    """Up to ``limit`` tracks (evenly spread over the track ids) at the first two principal
    coordinates of their embedding, with title and genre. Embeddings are read by
    ``fma_platform.embeddings.load_track_embeddings``: tracks its rule leaves out are not drawn."""
    columns = ["track_id", "pc1", "pc2", "genre", "title"]
    ids = np.unique([doc["track_id"] for doc in db[Collection.TRACK_FEATURES].find({}, {"_id": 0, "track_id": 1})])
    if ids.size > limit:
        ids = ids[np.unique(np.linspace(0, ids.size - 1, limit).round().astype(int))]
    embeddings = load_track_embeddings(db, track_ids=ids.tolist())
    if embeddings.size < 2:
        return pd.DataFrame(columns=columns)
    track_ids = embeddings.ids.tolist()
    tracks = {doc["track_id"]: doc for doc in db[Collection.TRACKS].find(
        {"track_id": {"$in": track_ids}}, {"_id": 0, "track_id": 1, "title": 1, "top_genre_title": 1})}
    coordinates = principal_components(embeddings.vectors.astype(np.float64))
    return pd.DataFrame({
        "track_id": track_ids, "pc1": coordinates[:, 0], "pc2": coordinates[:, 1],
        "genre": [tracks.get(t, {}).get("top_genre_title") or "Unknown" for t in track_ids],
        "title": [tracks.get(t, {}).get("title", "") for t in track_ids],
    })
