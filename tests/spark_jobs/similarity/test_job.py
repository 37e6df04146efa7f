"""The similar-tracks job against MongoDB: documents, model_runs by the contract, the model store."""

from __future__ import annotations

import json

import pytest
from pyspark.ml.feature import BucketedRandomProjectionLSHModel
from pyspark.sql import SparkSession

from fma_platform.contracts import Collection, Pointer
from fma_platform.model_store import ModelStore
from fma_platform.settings import get_settings
from spark_jobs import similar_tracks as entry
from spark_jobs.similarity.store import MODEL_FOLDER
from spark_jobs.similarity.synthetic import clustered_unit_vectors

K = 10


@pytest.fixture()
def job_db(mongo_db, monkeypatch):
    """``get_settings()`` names the test database while the test runs; restored afterwards."""
    monkeypatch.setenv("FMA_MONGO_DB", mongo_db.name)
    get_settings.cache_clear()
    yield mongo_db
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture()
def keep_session(monkeypatch):
    monkeypatch.setattr(SparkSession, "stop", lambda self: None)  # the shared test session outlives main


def test_bad_arguments_exit_2_with_a_reason_before_any_work(spark, job_db, keep_session, tmp_path, capsys):
    argv = ["--run-id", "run-x", "--model-version", "../escape", "--model-dir", str(tmp_path / "store")]
    assert entry.main(argv) == 2
    error = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert error["error"] == "bad_argument" and "../escape" in error["detail"]
    assert entry.main(["--run-id", "run-x", "--model-dir", str(tmp_path / "store")]) == 2  # no embeddings yet
    assert json.loads(capsys.readouterr().err.strip().splitlines()[-1])["error"] == "too_few_tracks"
    assert not (tmp_path / "store").exists()


@pytest.mark.slow
def test_main_writes_similar_tracks_model_runs_and_model_idempotently(spark, job_db, keep_session, tmp_path, capsys):
    ids, vectors, genres = clustered_unit_vectors(600, seed=11)
    docs = [{"track_id": int(t), "embedding": [float(x) for x in v], "model_version": "emb-v1"}
            for t, v in zip(ids, vectors)]
    docs.append({"track_id": 10_000, "embedding": [0.0] * 32, "model_version": "emb-v1"})  # a track at the centre
    docs.append({"track_id": 10_001, "embedding": [0.25] * 16, "model_version": "emb-v0"})  # an older transform's
    job_db[Collection.TRACK_FEATURES].insert_many(docs)
    job_db[Collection.TRACKS].insert_many(
        [{"track_id": int(t), "top_genre_id": int(g) + 1} for t, g in zip(ids, genres)])
    store = ModelStore(tmp_path / "similar_tracks")
    argv = ["--k", str(K), "--grid", "bucket_lengths=0.05,0.5;tables=8;hashes=3", "--run-id", "run-1",
            "--model-version", "v1", "--sample-fraction", "0.5", "--model-dir", str(store.root)]

    counts, created = [], []
    for _ in range(2):
        assert entry.main(argv) == 0
        counts.append((job_db[Collection.SIMILAR_TRACKS].count_documents({}),
                       job_db[Collection.MODEL_RUNS].count_documents({})))
        created.append({d["run_id"]: d["created_at"] for d in job_db[Collection.MODEL_RUNS].find()})
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert counts == [(600, 5), (600, 5)]  # 2 trials + final + 2 baselines, recorded again
    assert created[0] == created[1]  # a rerun keeps when each run was first recorded
    doc = job_db[Collection.SIMILAR_TRACKS].find_one({"track_id": 1})
    assert doc["k"] == K and doc["method"] == "lsh" and doc["model_version"] == "v1"
    neighbours = doc["neighbours"]
    assert len(neighbours) == K and [n["distance"] for n in neighbours] == sorted(n["distance"] for n in neighbours)
    assert all(n["score"] == pytest.approx(1 - n["distance"] ** 2 / 2) for n in neighbours)
    assert job_db[Collection.SIMILAR_TRACKS].count_documents({"track_id": {"$in": [10_000, 10_001]}}) == 0

    runs = {d["run_id"]: d for d in job_db[Collection.MODEL_RUNS].find({}, {"_id": 0})}
    assert set(runs) == {"run-1:lsh:trial:b0.05:t8:h3", "run-1:lsh:trial:b0.5:t8:h3", "run-1:lsh:final",
                         "run-1:random_neighbours:baseline", "run-1:exact_knn:baseline"}
    assert {d["family"] for d in runs.values()} == {"similar_tracks"}
    assert {d["job_run_id"] for d in runs.values()} == {"run-1"}
    trial = runs["run-1:lsh:trial:b0.5:t8:h3"]
    assert trial["kind"] == "trial" and trial["model"] == "lsh" and trial["label"] == "b0.5:t8:h3"
    assert trial["params"]["bucket_length"] == 0.5 and trial["params"]["k"] == K
    assert set(trial["metrics"]) >= {"recall_at_k", "seconds", "genre_precision_at_k", "candidate_pairs"}
    final = runs["run-1:lsh:final"]
    assert final["kind"] == "final" and final["params"]["bucket_length"] == 0.5 and final["champion"]
    assert final["params"]["method"] == "lsh" and final["params"]["k"] == K
    assert final["metrics"]["recall_at_k"] >= 0.95 and final["promotion"]["target_met"]
    assert final["metrics"]["genre_precision_at_k"] > 0.9
    left_out = final["data_snapshot"]["left_out"]
    assert left_out["zero_vector"]["examples"] == [10_000] and left_out["other_dimension"]["examples"] == [10_001]
    assert final["data_snapshot"]["tracks"] == 600 and final["data_snapshot"]["embedding_model_versions"] == [
        "emb-v0", "emb-v1"]
    random = runs["run-1:random_neighbours:baseline"]
    assert random["kind"] == "baseline" and random["metrics"]["genre_precision_at_k"] < 0.2
    exact = runs["run-1:exact_knn:baseline"]
    assert exact["metrics"]["recall_at_k"] == 1.0 and exact["params"]["seconds_measured"]
    assert exact["metrics"]["genre_precision_at_k"] > 0.9

    assert summary["chosen"]["bucket_length"] == 0.5 and summary["k"] == K and summary["recall_at_k"] >= 0.95
    assert summary["genre_precision_at_k"] > 4 * summary["random_genre_precision_at_k"]
    assert summary["exact_seconds_measured"] and summary["lsh_seconds"] > 0
    assert store.read_pointer(Pointer.CURRENT) == "v1" and store.versions() == ["v1"]
    metadata = store.metadata("v1")
    assert metadata["params"] == {"bucket_length": 0.5, "num_hash_tables": 8, "hashes_per_table": 3}
    assert metadata["tracks"] == 600 and metadata["evaluation"]["k"] == K
    model = BucketedRandomProjectionLSHModel.load(str(store.version_dir("v1") / MODEL_FOLDER))
    assert model.getNumHashTables() == 24  # 8 tables x 3 hashes: the published model is the chosen one
