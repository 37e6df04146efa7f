"""The ETL DAG end to end on a small generated sample, against real MongoDB and Spark.

One module-scoped run of the DAG, then a second run (idempotence), then a run with a
corrupted feature chunk (the quality gate stops the load).
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from fma_platform.contracts import Collection
from fma_platform.mongo import platform_db

pytestmark = pytest.mark.slow

CONF = {"dataset": "sample", "sample_tracks": 24, "sample_seed": 3, "chunk_size": 10, "workers": 1,
        "pca_components": 8, "max_failure_fraction": 0.25}


def run_etl(conf: dict) -> dict[str, str]:
    from airflow.dag_processing.dagbag import DagBag

    from fma_platform.settings import PROJECT_ROOT

    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "fma_etl.py")).get_dag("fma_etl")
    run = dag.test(run_conf=conf)
    states = {}
    for ti in run.get_task_instances():
        states[ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"] = ti.state
    return states


def counts(db) -> dict[str, int]:
    return {name: db[name].count_documents({}) for name in
            (Collection.TRACKS, Collection.TRACK_FEATURES, Collection.QUARANTINE)}


@pytest.fixture(scope="module")
def first_run(airflow_db, mongo_server):
    db = platform_db(mongo_server)
    for name in Collection:
        db[name].drop()
    states = run_etl(CONF)
    return states, db, counts(db)


def test_every_task_succeeds(first_run):
    states, _, _ = first_run
    assert set(states.values()) == {"success"}, states
    assert sum(1 for task in states if task.startswith("extract_chunk[")) == 3  # 24 tracks, chunks of 10


# What the extractor says about each kind of broken file the sample plants.
EXPECTED_REASON = {"missing": "missing_file", "short": "truncated", "truncated": "truncated", "no_audio": "not_audio"}


def test_catalogue_features_and_quarantine_are_in_mongo(first_run, settings):
    _, db, found = first_run
    manifest = json.loads((settings.sample_dir / "manifest.json").read_text())
    planted = {item["track_id"]: EXPECTED_REASON[item["kind"]] for item in manifest["planted"]}
    quarantined = {doc["track_id"]: doc["reason"] for doc in db[Collection.QUARANTINE].find()}
    assert len(planted) == 4
    assert quarantined == planted
    assert found[Collection.TRACKS] == 24
    assert found[Collection.TRACK_FEATURES] == 24 - 4
    assert set(db[Collection.TRACK_FEATURES].distinct("track_id")).isdisjoint(planted)
    doc = db[Collection.TRACK_FEATURES].find_one({})
    assert len(doc["features"]) == 518 and len(doc["embedding"]) == 8
    assert sum(x * x for x in doc["embedding"]) == pytest.approx(1.0, abs=1e-5)  # L2-normalised
    assert db[Collection.TRACKS].find_one({"track_id": doc["track_id"]})["synthetic"] is True


def test_run_summary_and_quality_results_are_stored(first_run):
    _, db, found = first_run
    run = db[Collection.ETL_RUNS].find_one({})
    assert run["status"] == "success"
    assert run["counts"]["loaded"] == found[Collection.TRACK_FEATURES]
    assert set(run["stage_seconds"]) == {"acquire", "catalogue", "extract", "validate", "transform", "load"}
    assert run["stage_seconds"]["extract"] > 0 and run["stage_seconds"]["transform"] > 5  # spark-submit at least
    suites = {d["suite"]: d["success"] for d in db[Collection.DATA_QUALITY].find()}
    assert suites and all(suites.values()), suites


def test_a_second_run_leaves_the_same_documents(first_run):
    _, db, before = first_run
    states = run_etl(CONF)
    assert set(states.values()) == {"success"}, states
    assert counts(db) == before
    assert db[Collection.ETL_RUNS].count_documents({}) == 2


def test_a_corrupted_feature_file_stops_the_load(first_run, settings):
    _, db, before = first_run
    chunk = sorted((settings.state_dir / "etl" / "sample").glob("*/chunk-00000/chunks/chunk-00000.parquet"))[0]
    frame = pd.read_parquet(chunk)
    frame.loc[frame.index[0], "zcr_mean_01"] = 7.5  # a zero-crossing rate cannot exceed 1
    frame.to_parquet(chunk, index=False)
    loaded_before = db[Collection.TRACK_FEATURES].find_one({}, sort=[("loaded_at", -1)])["etl_run_id"]

    states = run_etl(CONF)
    assert states["validate"] == "failed"
    assert states["load"] in ("upstream_failed", None)
    failed_run = db[Collection.ETL_RUNS].find_one({"status": "failed"})
    assert "zcr_mean_01" in failed_run["failure"]
    assert db[Collection.TRACK_FEATURES].find_one({}, sort=[("loaded_at", -1)])["etl_run_id"] == loaded_before


def test_a_run_the_gate_rejects_changes_nothing_listeners_see(first_run, settings, tmp_path):
    """Staging: the rejected run's catalogue (same ids, new titles) never reaches ``tracks``."""
    from fma_sample.sample import METADATA_DIR

    _, db, before = first_run
    metadata = tmp_path / "fma_metadata"
    shutil.copytree(settings.sample_dir / METADATA_DIR, metadata)
    tracks = pd.read_csv(metadata / "tracks.csv", index_col=0, header=[0, 1])
    tracks[("track", "title")] = "Renamed by a rejected run"
    tracks.to_csv(metadata / "tracks.csv")
    (tmp_path / "audio").mkdir()  # no audio at all: every track fails, above the tolerance
    titles_before = sorted(d["title"] for d in db[Collection.TRACKS].find({}, {"title": 1}))

    states = run_etl(CONF | {"dataset": "local", "metadata_dir": str(metadata), "audio_dir": str(tmp_path / "audio")})
    assert states["catalogue"] == "success" and states["validate"] == "failed"
    assert sorted(d["title"] for d in db[Collection.TRACKS].find({}, {"title": 1})) == titles_before
    assert db[Collection.TRACKS].count_documents({"title": "Renamed by a rejected run"}) == 0
    assert counts(db) == before
    failed = db[Collection.ETL_RUNS].find_one({"dataset": "local"})
    assert failed["status"] == "failed" and "tolerance" in failed["failure"]


def test_a_failure_before_the_gate_marks_the_run_failed(first_run, tmp_path):
    """Not only validate: a run that fails in any task ends "failed" in etl_runs, with why."""
    _, db, before = first_run
    states = run_etl(CONF | {"dataset": "local", "metadata_dir": str(tmp_path / "none"),
                             "audio_dir": str(tmp_path / "none")})
    assert states["acquire"] == "failed"
    run = db[Collection.ETL_RUNS].find_one({"failure": {"$regex": "DAG run failed"}})
    assert run is not None and run["status"] == "failed"
    assert "acquire" in run["failure"]
    assert counts(db) == before


TRAINING_CONF = {"listeners": 60, "events": 4000, "seed": 5, "k": 5,
                 "lsh_grid": "bucket_lengths=0.2;tables=8;hashes=3", "als_grid": "rank=8;regParam=0.1;alpha=10;maxIter=5",
                 "holdout": 3}


def test_training_dag_publishes_models_on_the_etl_output(first_run):
    from airflow.dag_processing.dagbag import DagBag

    from fma_platform.settings import PROJECT_ROOT

    _, db, _ = first_run
    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "fma_training.py")).get_dag("fma_training")
    run = dag.test(run_conf=TRAINING_CONF)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}, states
    assert db[Collection.SIMILAR_TRACKS].count_documents({}) == db[Collection.TRACK_FEATURES].count_documents({})
    neighbours = db[Collection.SIMILAR_TRACKS].find_one({})["neighbours"]
    assert len(neighbours) == 5
    simulated_users = db[Collection.LISTENING_EVENTS].distinct("user_id", {"source": "simulator"})
    assert db[Collection.RECOMMENDATIONS].count_documents({}) >= len(simulated_users) * 0.9
    rec = db[Collection.RECOMMENDATIONS].find_one({})
    assert rec["items"] and all(item["reason"] for item in rec["items"])
    finals = {r["model"] for r in db[Collection.MODEL_RUNS].find({"kind": "final"})}
    assert {"als", "lsh"} <= finals
