"""Steps of the training DAG that are not Spark jobs."""

from __future__ import annotations

import re

from fma_platform.contracts import Collection
from fma_platform.mongo import platform_db
from fma_platform.settings import Settings


class TrainingDataError(RuntimeError):
    """The data the training needs is absent (no catalog, no listening events)."""


def bootstrap_listeners(settings: Settings, *, listeners: int, events: int, seed: int, start: str) -> dict:
    """Write simulated listeners' events into ``listening_events`` (idempotent: event ids
    are derived from the simulation's parameters, so a re-run adds nothing)."""
    from simulator.cli import main as simulate

    argv = ["run", "--listeners", str(listeners), "--events", str(events), "--seed", str(seed),
            "--start", start, "--to", "mongo"]
    status = simulate(argv, settings=settings)
    if status != 0:
        raise TrainingDataError(f"the listener simulator failed (exit {status}); see the log above")
    db = platform_db(settings)
    return {
        "simulated_events": db[Collection.LISTENING_EVENTS].count_documents({"source": "simulator"}),
        "player_events": db[Collection.LISTENING_EVENTS].count_documents({"source": "player"}),
    }


def require_training_data(settings: Settings, *, min_events: int = 100) -> dict:
    """Fail early, with the reason, when there is nothing to train on."""
    db = platform_db(settings)
    counts = {
        "tracks": db[Collection.TRACKS].estimated_document_count(),
        "embeddings": db[Collection.TRACK_FEATURES].estimated_document_count(),
        "events": db[Collection.LISTENING_EVENTS].estimated_document_count(),
    }
    if counts["embeddings"] == 0:
        raise TrainingDataError("track_features is empty: run the fma_etl DAG first")
    if counts["events"] < min_events:
        raise TrainingDataError(
            f"only {counts['events']} listening events (need {min_events}): enable simulated listeners or play music"
        )
    return counts


def training_report(settings: Settings, *, run_id: str) -> dict:
    """What this training run produced, from ``model_runs``; fails when a model is missing."""
    db = platform_db(settings)
    # Jobs name their records "<run_id>:lsh:final", "<run_id>-trial-01", ...
    runs = list(db[Collection.MODEL_RUNS].find({"run_id": {"$regex": f"^{re.escape(run_id)}[-:]"}},
                                                {"_id": 0, "run_id": 1, "model": 1, "kind": 1, "metrics": 1,
                                                 "champion": 1, "promotion": 1}))
    finals = {r["model"]: r for r in runs if r.get("kind") == "final"}
    missing = {"als", "lsh"} - set(finals)
    if missing:
        raise TrainingDataError(f"no final model_runs record for {sorted(missing)} in run {run_id}")
    return {
        "trials": sum(1 for r in runs if r.get("kind") == "trial"),
        "final": {model: {"metrics": r.get("metrics"), "promotion": r.get("promotion")} for model, r in finals.items()},
    }
