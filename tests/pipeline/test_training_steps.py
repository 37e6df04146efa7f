"""Training DAG helpers against the real embedded MongoDB."""

from __future__ import annotations

import pytest

from fma_platform.contracts import Collection
from fma_platform.model_runs import Metric, RunFamily, RunKind, model_run_document, record_run
from pipeline.training import TrainingDataError, bootstrap_listeners, require_training_data, training_report
from simulator import EmptyCatalogueError, synthetic_catalogue


@pytest.fixture()
def db_settings(settings, mongo_db):
    return settings.model_copy(update={"mongo_db": mongo_db.name})


def test_training_refuses_to_start_without_data(db_settings, mongo_db):
    with pytest.raises(TrainingDataError, match="track_features is empty: run the fma_etl DAG first"):
        require_training_data(db_settings)
    mongo_db[Collection.TRACK_FEATURES].insert_one({"track_id": 2, "embedding": [1.0, 0.0]})
    mongo_db[Collection.LISTENING_EVENTS].insert_many([{"_id": str(i)} for i in range(5)])
    with pytest.raises(TrainingDataError, match="only 5 listening events"):
        require_training_data(db_settings, min_events=10)
    assert require_training_data(db_settings, min_events=5)["events"] == 5


def test_bootstrap_listeners_writes_simulated_events_once(db_settings, mongo_db):
    with pytest.raises(EmptyCatalogueError, match="catalogue is empty"):
        bootstrap_listeners(db_settings, listeners=5, events=300, seed=1, start="2026-01-01T00:00:00+00:00")
    tracks = synthetic_catalogue(tracks=40, genres=4).drop(columns="embedding")
    mongo_db[Collection.TRACKS].insert_many(tracks.astype(object).to_dict("records"))
    first = bootstrap_listeners(db_settings, listeners=5, events=300, seed=1, start="2026-01-01T00:00:00")
    again = bootstrap_listeners(db_settings, listeners=5, events=300, seed=1, start="2026-01-01T00:00:00")
    assert first["simulated_events"] == again["simulated_events"] == first["simulation"]["events"] > 0
    assert again["simulation"]["already_present"] == first["simulation"]["events"]
    assert first["player_events"] == 0


def run_document(job_run_id, model, kind, *, family=RunFamily.RECOMMENDATIONS, label=None, metrics=None,
                 promotion=None):
    return model_run_document(job_run_id=job_run_id, family=family, model=model, kind=kind, label=label,
                              params={"k": 10}, metrics=metrics or {}, data_snapshot={}, model_version="v1",
                              promotion=promotion)


def test_training_report_reads_the_runs_of_its_job_run(db_settings, mongo_db):
    record_run(mongo_db, run_document("manual__1", "lsh", RunKind.FINAL, family=RunFamily.SIMILAR_TRACKS,
                                      metrics={Metric.RECALL_AT_K: 0.97}))
    with pytest.raises(TrainingDataError, match=r"\['als'\]"):
        training_report(db_settings, run_id="manual__1")
    record_run(mongo_db, run_document("manual__1", "als", RunKind.FINAL, metrics={Metric.NDCG_AT_K: 0.3},
                                      promotion={"promoted": True, "reason": "first model"}))
    record_run(mongo_db, run_document("manual__1", "als", RunKind.TRIAL, label="rank=16"))
    record_run(mongo_db, run_document("manual__10", "als", RunKind.TRIAL, label="rank=16"))  # another run
    record_run(mongo_db, run_document("manual__2", "als", RunKind.FINAL))  # another run
    report = training_report(db_settings, run_id="manual__1")
    assert report["trials"] == 1
    assert report["final"]["als"]["promotion"] == {"promoted": True, "reason": "first model"}
    assert report["final"]["als"]["metrics"] == {"ndcg_at_k": 0.3}
