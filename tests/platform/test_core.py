"""The shared core: model store, embeddings rule, listening semantics, MongoDB write patterns, model_runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fma_platform import listening
from fma_platform.embeddings import EmbeddingsError, embeddings_from_frame, load_track_embeddings
from fma_platform.model_runs import Metric, RunFamily, RunKind, metric_label, model_run_document, record_run
from fma_platform.model_store import ModelStore, ModelStoreError, NoModelError
from fma_platform.mongo import insert_once, upsert_by


# --- model store -----------------------------------------------------------------------------
def test_pointer_names_a_version_only_once_it_is_complete(tmp_path):
    store = ModelStore.of(tmp_path, "als")
    assert store.read_pointer("CHAMPION") is None
    folder = store.prepare("als-1")
    (folder / "factors.txt").write_text("x")
    with pytest.raises(NoModelError, match="incomplete"):
        store.point("CHAMPION", "als-1")  # no metadata yet: not complete
    store.write_metadata("als-1", {"rank": 8})
    store.point("CHAMPION", "als-1")
    assert store.require_pointer("CHAMPION") == "als-1"
    assert store.metadata("als-1") == {"rank": 8}
    assert store.versions() == ["als-1"]


def test_missing_pointer_says_which_job_writes_it(tmp_path):
    with pytest.raises(NoModelError, match="feature_transform"):
        ModelStore.of(tmp_path, "feature_transform").require_pointer("CURRENT")


@pytest.mark.parametrize("version", ["../etc", "a/b", "", ".hidden"])
def test_unsafe_versions_and_pointers_are_refused(tmp_path, version):
    store = ModelStore.of(tmp_path, "lsh")
    with pytest.raises(ModelStoreError):
        store.prepare(version)
    store.root.mkdir(parents=True, exist_ok=True)
    (store.root / "CURRENT").write_text("../../outside\n")
    with pytest.raises(ModelStoreError):
        store.read_pointer("CURRENT")


# --- embeddings -------------------------------------------------------------------------------
def test_one_rule_for_bad_and_mixed_embeddings():
    frame = pd.DataFrame({
        "track_id": [3, 1, 2, 5, 6, 7, 8, 9],
        "embedding": [[1, 0], [0, 1], None, [0.6, 0.8, 0.0], [np.nan, 1], [0, 0], [3, 4], [0.6, 0.8]],
        "model_version": ["v2"] * 8,
    })
    embeddings = embeddings_from_frame(frame)
    assert embeddings.ids.tolist() == [1, 3, 9]
    np.testing.assert_allclose(np.linalg.norm(embeddings.vectors, axis=1), 1.0, rtol=1e-6)
    assert {reason: info["examples"] for reason, info in embeddings.left_out.items()} == {
        "missing_embedding": [2], "other_dimension": [5], "non_finite_values": [6], "zero_vector": [7],
        "not_unit_length": [8],
    }
    assert embeddings.positions([9, 2, 1]).tolist() == [2, -1, 0]
    assert embeddings.model_versions == ("v2",)


def test_whole_input_problems_raise():
    with pytest.raises(EmbeddingsError, match="duplicate_track_ids"):
        embeddings_from_frame(pd.DataFrame({"track_id": [1, 1], "embedding": [[1.0], [1.0]]}))
    with pytest.raises(EmbeddingsError, match="missing_columns"):
        embeddings_from_frame(pd.DataFrame({"track_id": [1]}))


def test_loader_reads_track_features(mongo_db):
    mongo_db["track_features"].insert_many([
        {"track_id": 10, "embedding": [0.0, 1.0], "model_version": "t1"},
        {"track_id": 11, "embedding": [1.0, 0.0], "model_version": "t1"},
        {"track_id": 12},
    ])
    embeddings = load_track_embeddings(mongo_db)
    assert embeddings.ids.tolist() == [10, 11] and embeddings.dimension == 2
    assert embeddings.left_out["missing_embedding"]["examples"] == [12]
    assert load_track_embeddings(mongo_db, track_ids=[11]).ids.tolist() == [11]


# --- listening semantics -----------------------------------------------------------------------
def test_early_skip_rule():
    listened = [5.0, 12.0, 8.0, 12.0, 40.0]
    duration = [30.0, 30.0, None, None, 200.0]
    # 5 s: under 10 s; 12 of 30 s: 40 %: kept; 8 s without duration: under 10 s;
    # 12 s without duration: seconds rule only; 40 of 200 s: 20 % of the track: early.
    assert listening.is_early_skip(listened, duration).tolist() == [True, False, True, False, True]


def test_blend_weights_and_reachability():
    als = np.array([[3.0, 1.0, -np.inf], [1.0, 2.0, 3.0]])
    content = np.array([[-np.inf, 0.5, 0.9], [0.9, 0.5, 0.1]])
    weights = listening.history_als_weight([0, 1e9])
    blended = listening.blend_scores(als, content, als_weight=weights)
    # Row 0 has no history: content alone decides (track 2 above track 1); track 0 only ALS
    # can score, so it keeps content's mean (0), still reachable.
    assert np.argmax(blended[0]) == 2 and np.isfinite(blended[0]).all()
    # Row 1 is all history: ALS decides.
    assert np.argmax(blended[1]) == 2
    assert listening.blend_scores(None, None, als_weight=0.4) is None


# --- MongoDB write patterns -----------------------------------------------------------------------
def test_upsert_by_is_idempotent(mongo_db):
    documents = [{"track_id": t, "title": f"t{t}"} for t in range(7)]
    first = upsert_by(mongo_db["tracks"], documents, keys=("track_id",), batch_size=3)
    again = upsert_by(mongo_db["tracks"], documents, keys=("track_id",), batch_size=3)
    assert (first.inserted, first.matched) == (7, 0)
    assert (again.inserted, again.matched, again.modified) == (0, 7, 0)
    assert mongo_db["tracks"].count_documents({}) == 7


def test_insert_once_reports_what_was_already_there(mongo_db):
    collection = mongo_db["listening_events"]
    assert insert_once(collection, [{"_id": "a", "v": 1}]) == ({"a"}, [])
    new, duplicates = insert_once(collection, [{"_id": "a", "v": 2}, {"_id": "b", "v": 1}])
    assert new == {"b"} and duplicates == ["a"]
    assert collection.find_one({"_id": "a"})["v"] == 1  # the first write wins


# --- model_runs -----------------------------------------------------------------------------------
def test_model_runs_have_one_id_format_and_keep_created_at(mongo_db):
    document = model_run_document(job_run_id="manual__1", family=RunFamily.RECOMMENDATIONS, model="als",
                                  kind=RunKind.TRIAL, label="rank=8", params={"k": 10},
                                  metrics={Metric.NDCG_AT_K: 0.1}, data_snapshot={}, model_version="als-1")
    assert document["run_id"] == "manual__1:als:trial:rank=8"
    record_run(mongo_db, document)
    created = mongo_db["model_runs"].find_one({"run_id": document["run_id"]})["created_at"]
    record_run(mongo_db, {**document, "metrics": {Metric.NDCG_AT_K: 0.2}})
    stored = mongo_db["model_runs"].find_one({"run_id": document["run_id"]})
    assert stored["created_at"] == created and stored["metrics"]["ndcg_at_k"] == 0.2
    assert stored["job_run_id"] == "manual__1" and stored["family"] == "recommendations"
    assert metric_label(Metric.NDCG_AT_K, 10) == "NDCG@10"
    assert metric_label(Metric.CATALOGUE_COVERAGE_AT_K, 10) == "catalogue coverage@10"


def test_restricting_embeddings_keeps_rows_and_renames_the_data():
    embeddings = embeddings_from_frame(pd.DataFrame({"track_id": [1, 2, 3], "embedding": [[1, 0], [0, 1], [1, 0]]}))
    known = embeddings.restricted_to([3, 1, 99])
    assert known.ids.tolist() == [1, 3] and known.vectors.shape == (2, 2)
    assert known.fingerprint and known.fingerprint != embeddings.fingerprint
    assert embeddings.restricted_to([1, 2, 3]) is embeddings


def test_embeddings_aligned_to_other_track_orders():
    embeddings = embeddings_from_frame(pd.DataFrame({"track_id": [1, 3], "embedding": [[1, 0], [0, 1]]}))
    matrix, found = embeddings.aligned_to(np.array([3, 2, 1]))
    assert found.tolist() == [True, False, True]
    np.testing.assert_array_equal(matrix, [[0, 1], [0, 0], [1, 0]])
    assert embeddings.aligned_to(np.array([7]))[0] is None
