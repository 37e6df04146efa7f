"""Training DAG helpers against the real embedded MongoDB."""

from __future__ import annotations

import pytest

from fma_platform.contracts import Collection
from pipeline.training import TrainingDataError, require_training_data, training_report


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


def test_training_report_needs_both_final_models(db_settings, mongo_db):
    runs = mongo_db[Collection.MODEL_RUNS]
    runs.insert_one({"run_id": "manual__1:lsh:final", "model": "lsh", "kind": "final", "metrics": {"recall_at_10": 0.97}})
    with pytest.raises(TrainingDataError, match=r"\['als'\]"):
        training_report(db_settings, run_id="manual__1")
    runs.insert_one({"run_id": "manual__1:als:final", "model": "als", "kind": "final",
                     "metrics": {"ndcg_at_10": 0.3}, "promotion": {"promoted": True, "reason": "first model"}})
    runs.insert_one({"run_id": "manual__1:als:r16", "model": "als", "kind": "trial"})
    runs.insert_one({"run_id": "manual__2:als:final", "model": "als", "kind": "final"})  # another run
    report = training_report(db_settings, run_id="manual__1")
    assert report["trials"] == 1
    assert report["final"]["als"]["promotion"] == {"promoted": True, "reason": "first model"}
