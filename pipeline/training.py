"""Steps of the training DAG that are not Spark jobs."""

from __future__ import annotations

from fma_platform.contracts import Collection
from fma_platform.model_runs import RunKind
from fma_platform.mongo import platform_db
from fma_platform.settings import Settings
from pipeline.errors import PipelineError


class TrainingDataError(PipelineError):
    """The data the training needs is absent (no catalogue, no listening events, a model run missing)."""


def bootstrap_listeners(settings: Settings, *, listeners: int, events: int, seed: int, start: str) -> dict:
    """Write simulated listeners' events into ``listening_events`` (idempotent: event ids
    are derived from the simulation's parameters, so a re-run adds nothing).

    ``start`` is ISO 8601 (no offset means UTC). A failing simulation raises its
    ``simulator.SimulatorError`` with the reason.
    """
    from simulator import SimulationOptions, Sink, parse_start, run_simulation

    report = run_simulation(settings, SimulationOptions(listeners=listeners, events=events, seed=seed,
                                                        start=parse_start(start), sink=Sink.MONGO))
    db = platform_db(settings)
    return {
        "simulation": report.as_dict(),
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
    """What this training run produced, from its ``model_runs`` (read by ``job_run_id``).

    Fails when the run has no final ALS or LSH record.
    """
    db = platform_db(settings)
    runs = list(db[Collection.MODEL_RUNS].find({"job_run_id": run_id},
                                                {"_id": 0, "model": 1, "kind": 1, "metrics": 1, "promotion": 1}))
    finals = {r["model"]: r for r in runs if r.get("kind") == RunKind.FINAL}
    missing = {"als", "lsh"} - set(finals)
    if missing:
        raise TrainingDataError(f"no final model_runs record for {sorted(missing)} in run {run_id}")
    return {
        "trials": sum(1 for r in runs if r.get("kind") == RunKind.TRIAL),
        "final": {model: {"metrics": r.get("metrics"), "promotion": r.get("promotion")} for model, r in finals.items()},
    }
