"""What the analyst pages read, shaped as tidy DataFrames for Altair.

Every function takes a ``Database`` and returns an empty frame (or ``None``) when its
collection holds nothing yet, so a page can say "no data yet" instead of crashing.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from pymongo import DESCENDING
from pymongo.database import Database

from audio_features.fma_schema import TOP_LEVEL_GENRES
from fma_platform.contracts import Collection
from fma_platform.settings import Settings


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


ETL_STAGES = ["acquire", "catalog", "extract", "validate", "transform", "load"]


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
def metric_key(name: str) -> str:
    """``"NDCG@10"``, ``"ndcg_at_10"`` and ``"ndcg_10"`` all become ``"ndcg10"``."""
    return re.sub(r"[^a-z0-9]", "", name.lower().replace("@", "").replace("_at_", ""))


def model_runs(db: Database) -> pd.DataFrame:
    """Long form (run_id, model, kind, champion, created_at, metric, value, params, model_version,
    promotion): one row per numeric metric of each run."""
    columns = ["run_id", "model", "kind", "champion", "created_at", "metric", "value", "params", "model_version",
               "promotion"]
    rows = []
    for run in db[Collection.MODEL_RUNS].find({}, {"_id": 0, "data_snapshot": 0}).sort([("created_at", DESCENDING)]):
        for metric, value in (run.get("metrics") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({"run_id": run["run_id"], "model": run.get("model"), "kind": run.get("kind"),
                             "champion": bool(run.get("champion")), "created_at": run.get("created_at"),
                             "metric": metric, "value": float(value), "params": run.get("params") or {},
                             "model_version": run.get("model_version"), "promotion": run.get("promotion")})
    return pd.DataFrame(rows, columns=columns)


RECOMMENDER = "als"
# Models of the similar-tracks job (LSH and its baselines): a family of their own.
SIMILARITY_MODELS = ("lsh", "exact_knn", "random_neighbours")
# The recommender's quality measures, as ``train_als`` names them (k = its cut-off, 10).
COMPARED_KEYS = ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "catalogue_coverage_at_k",
                 "intra_list_diversity_at_k", "novelty_at_k")


def recommender_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The recommender family's rows: ALS trials and finals and the baselines evaluated with them."""
    return runs[~runs["model"].isin(SIMILARITY_MODELS)]


def training_run_of(run_id: str) -> str:
    """The training DAG run a model run belongs to (``<run>-trial-03``, ``<run>-final``,
    ``<run>-baseline-random`` -> ``<run>``)."""
    return re.sub(r"-(trial-\d+|final|baseline-.+)$", "", run_id)


def champion_run(runs: pd.DataFrame, model: str = RECOMMENDER) -> pd.Series | None:
    """The latest final run of ``model`` marked champion (one row of ``model_runs``), if any."""
    finals = runs[(runs["model"] == model) & (runs["kind"] == "final") & runs["champion"]]
    if finals.empty:
        return None
    return finals.sort_values("created_at").iloc[-1]


def tuning_grid(runs: pd.DataFrame, *, metric: str = "ndcg_at_k", model: str = RECOMMENDER) -> pd.DataFrame:
    """The latest tuning run's trials of ``model`` as (x param, y param, value), on the two
    params with the most distinct values. Columns ``x, y, value, x_param, y_param``."""
    wanted = metric_key(metric)
    trials = runs[(runs["kind"] == "trial") & (runs["model"] == model) & (runs["metric"].map(metric_key) == wanted)]
    if trials.empty:
        return pd.DataFrame(columns=["x_param", "y_param", "x", "y", "value"])
    latest = training_run_of(trials.sort_values("created_at").iloc[-1]["run_id"])
    trials = trials[trials["run_id"].map(training_run_of) == latest]
    params = pd.DataFrame(list(trials["params"])).astype(str)
    varying = sorted(params.columns, key=lambda column: -params[column].nunique())[:2]
    x_param = varying[0]
    y_param = varying[1] if len(varying) > 1 else varying[0]
    grid = pd.DataFrame({"x": params[x_param].values, "y": params[y_param].values, "value": trials["value"].values})
    grid = grid.groupby(["x", "y"], as_index=False)["value"].max()
    return grid.assign(x_param=x_param, y_param=y_param)


def champion_vs_baselines(runs: pd.DataFrame, model: str = RECOMMENDER) -> pd.DataFrame:
    """The champion's metrics beside those of the baselines evaluated on the same holdout
    (same training run), long form (model, metric, value)."""
    champion = champion_run(runs, model)
    if champion is None:
        return pd.DataFrame(columns=["model", "metric", "value"])
    same_run = runs[runs["run_id"].map(training_run_of) == training_run_of(champion["run_id"])]
    chosen = same_run[((same_run["run_id"] == champion["run_id"]) | (same_run["kind"] == "baseline"))
                      & same_run["metric"].isin(COMPARED_KEYS)]
    chosen = chosen.assign(model=np.where(chosen["run_id"] == champion["run_id"], f"champion ({model})",
                                          chosen["model"].astype(str)))
    return chosen[["model", "metric", "value"]].reset_index(drop=True)


def metric_history(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``metric`` of every holdout evaluation (finals and baselines) of the recommender family
    over time: columns created_at, model, run_id, value."""
    rows = recommender_runs(runs)
    rows = rows[rows["kind"].isin(["final", "baseline"]) & (rows["metric"] == metric)]
    return rows[["created_at", "model", "run_id", "value"]].sort_values("created_at", ignore_index=True)


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
    """Per micro-batch: batch_time, latency p50/p95/max (s), total lag (records), input rows."""
    rows = []
    cursor = db[Collection.STREAM_METRICS].find({}, {"_id": 0}).sort([("batch_time", DESCENDING)]).limit(limit)
    for batch in cursor:
        latency = batch.get("latency_seconds") or {}
        rows.append({"batch_time": batch.get("batch_time"), "p50": latency.get("p50"), "p95": latency.get("p95"),
                     "max": latency.get("max"), "lag": sum((batch.get("lag") or {}).values()),
                     "input_rows": batch.get("input_rows")})
    return pd.DataFrame(rows, columns=["batch_time", "p50", "p95", "max", "lag", "input_rows"])


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
    """Tracks at the first two PCA coordinates of their embedding, with title and genre."""
    features = list(db[Collection.TRACK_FEATURES].find(
        {"embedding.1": {"$exists": True}}, {"_id": 0, "track_id": 1, "embedding": 1}).limit(limit))
    columns = ["track_id", "pc1", "pc2", "genre", "title"]
    if len(features) < 2:
        return pd.DataFrame(columns=columns)
    tracks = {doc["track_id"]: doc for doc in db[Collection.TRACKS].find(
        {"track_id": {"$in": [f["track_id"] for f in features]}},
        {"_id": 0, "track_id": 1, "title": 1, "top_genre_title": 1})}
    coordinates = principal_components(np.asarray([f["embedding"] for f in features], dtype=float))
    return pd.DataFrame({
        "track_id": [f["track_id"] for f in features], "pc1": coordinates[:, 0], "pc2": coordinates[:, 1],
        "genre": [tracks.get(f["track_id"], {}).get("top_genre_title") or "Unknown" for f in features],
        "title": [tracks.get(f["track_id"], {}).get("title", "") for f in features],
    })
