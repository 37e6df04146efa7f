"""Pure pieces of the load step and their MongoDB writes."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from fma_platform.contracts import Collection
from fma_platform.mongo import upsert_by
from pipeline.errors import PipelineError
from pipeline.etl import (
    QUARANTINE_KEYS,
    StagingError,
    prune_staging,
    read_staged_catalogue,
    snapshot_id_of,
    stage_catalogue,
    staging_dir,
    transform_plan,
    unaccounted_tracks,
)
from pipeline.load import (
    FEATURE_NAMES,
    LoadInputError,
    ToleranceExceededError,
    check_tolerance,
    close_interrupted_runs,
    failures_by_reason,
    feature_documents,
    quarantine_documents,
    release_from_quarantine,
)

WHEN = datetime(2026, 11, 1, tzinfo=timezone.utc)


def features_frame(track_ids):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((len(track_ids), len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    frame.insert(0, "track_id", track_ids)
    frame["duration_seconds"] = 30.0
    frame["sample_rate"] = 44100
    frame["tempo_bpm"] = np.nan  # not estimated: stored as None
    frame["extract_seconds"] = 1.25
    return frame


def test_tolerance_names_how_many_and_why():
    failed = [{"reason": "corrupt_audio"}] * 2 + [{"reason": "missing_file: gone"}]
    check_tolerance(failed=failed, total=30, max_failure_fraction=0.1)  # 10% is allowed
    with pytest.raises(ToleranceExceededError) as error:
        check_tolerance(failed=failed, total=20, max_failure_fraction=0.1)
    assert str(error.value) == (
        "3 of 20 tracks (15.0%) failed, above the 10.0% tolerance: corrupt_audio 2, missing_file 1"
    )
    assert failures_by_reason(failed) == {"corrupt_audio": 2, "missing_file": 1}
    assert isinstance(error.value, PipelineError)  # the DAG fails the run without retrying


def test_snapshot_ids_depend_on_tracks_and_chunk_size_only():
    assert snapshot_id_of([3, 2, 5], chunk_size=10) == snapshot_id_of([5, 3, 2], chunk_size=10)
    assert snapshot_id_of([3, 2, 5], chunk_size=10) != snapshot_id_of([3, 2], chunk_size=10)
    assert snapshot_id_of([3, 2, 5], chunk_size=10) != snapshot_id_of([3, 2, 5], chunk_size=20)


def test_tracks_of_a_dead_chunk_become_failures():
    features = features_frame([2, 3])
    failures = [{"track_id": 5, "stage": "extract", "reason": "corrupt_audio"}]
    missing = unaccounted_tracks([2, 3, 5, 8, 13], features, failures)
    assert [(m["track_id"], m["reason"]) for m in missing] == [(8, "not_extracted"), (13, "not_extracted")]


def test_transform_plan_is_deterministic(settings):
    plan = {"out_dir": "/data/etl/sample/abc", "snapshot_id": "abc",
            "chunks": [{"dataset": {"name": "sample"}, "track_ids": [2]}]}
    first = transform_plan(plan, settings=settings, k=16)
    assert first == transform_plan(plan, settings=settings, k=16)
    assert first["model_version"] == "sample-abc-k16"
    assert first["args"][first["args"].index("--k") + 1] == "16"


def test_feature_documents_carry_518_features_and_the_embedding():
    features = features_frame([2, 3])
    embeddings = pd.DataFrame({"track_id": [3, 2], "embedding": [[0.0, 1.0], [1.0, 0.0]]})
    docs = list(feature_documents(features, embeddings, run_id="r1", model_version="v1", loaded_at=WHEN))
    assert [d["track_id"] for d in docs] == [2, 3]
    assert len(docs[0]["features"]) == 518
    assert docs[0]["embedding"] == [1.0, 0.0] and docs[1]["embedding"] == [0.0, 1.0]
    assert docs[0]["sample_rate"] == 44100.0 and docs[0]["model_version"] == "v1"
    assert docs[0]["tempo_bpm"] is None and docs[0]["extract_seconds"] == 1.25
    assert "analysis_sample_rate" not in docs[0]  # extras the table lacks are left out
    with pytest.raises(LoadInputError, match="no embedding"):
        list(feature_documents(features, embeddings.iloc[:1], run_id="r1", model_version="v1", loaded_at=WHEN))


def test_upserts_are_idempotent_and_fixed_tracks_leave_quarantine(mongo_db):
    failures = [{"track_id": 5, "stage": "extract", "reason": "truncated", "detail": "4.2 s of 30 s"},
                {"track_id": 8, "stage": "extract", "reason": "empty_file"}]
    for _ in range(2):
        upsert_by(mongo_db[Collection.QUARANTINE],
                  quarantine_documents(failures, dataset="sample", run_id="r1", recorded_at=WHEN),
                  keys=QUARANTINE_KEYS)
    assert mongo_db[Collection.QUARANTINE].count_documents({}) == 2
    assert release_from_quarantine(mongo_db, dataset="sample", track_ids=[5]) == 1
    remaining = mongo_db[Collection.QUARANTINE].find_one({}, {"_id": 0, "track_id": 1, "reason": 1})
    assert remaining == {"track_id": 8, "reason": "empty_file"}


def test_a_new_run_closes_runs_left_running_by_a_killed_one(mongo_db):
    mongo_db[Collection.ETL_RUNS].insert_many([
        {"run_id": "killed", "status": "running"}, {"run_id": "done", "status": "success"},
        {"run_id": "current", "status": "running"}])
    assert close_interrupted_runs(mongo_db, "current", at=WHEN) == 1
    runs = {r["run_id"]: r for r in mongo_db[Collection.ETL_RUNS].find()}
    assert runs["killed"]["status"] == "interrupted" and "found by run current" in runs["killed"]["failure"]
    assert runs["done"]["status"] == "success" and runs["current"]["status"] == "running"
    assert close_interrupted_runs(mongo_db, "current", at=WHEN) == 0  # idempotent


def test_the_staged_catalogue_keeps_mongodb_types(tmp_path, settings):
    """What the gate validates and ``load`` publishes is exactly what the catalogue step read."""
    folder = staging_dir(settings.model_copy(update={"state_dir": tmp_path}), "local", "manual__2026-11-30T02:00:00+00:00")
    assert folder.name.isalnum() and folder.parent == tmp_path / "etl" / "local" / "staging"
    documents = [
        {"track_id": 2, "title": "Food", "date_created": datetime(2008, 11, 26, tzinfo=timezone.utc),
         "tags": ["a", "b"], "duration": None, "listens": 1832, "title_raw": "[x](http://evil/)"},
        {"track_id": 3, "title": "Électrique ♪", "genre_top": None},
    ]
    path = stage_catalogue(folder, documents)
    back = read_staged_catalogue(path)
    assert [d["track_id"] for d in back] == [2, 3]
    assert back[0]["date_created"].replace(tzinfo=timezone.utc) == documents[0]["date_created"]
    assert back[0]["tags"] == ["a", "b"] and back[0]["duration"] is None and back[1]["title"] == "Électrique ♪"
    assert list(folder.iterdir()) == [path]  # no temporary file left behind


def test_a_missing_staged_catalogue_is_a_clear_error(tmp_path):
    with pytest.raises(StagingError, match="cannot read the staged catalogue"):
        read_staged_catalogue(tmp_path / "gone" / "catalogue.bson")
    (tmp_path / "catalogue.bson").write_bytes(b"\x05\x00\x00")  # cut short
    with pytest.raises(StagingError):
        read_staged_catalogue(tmp_path / "catalogue.bson")


def test_staging_of_runs_that_never_published_is_pruned_after_a_week(tmp_path, settings):
    import os
    import time

    local = settings.model_copy(update={"state_dir": tmp_path})
    old, recent = staging_dir(local, "sample", "old-run"), staging_dir(local, "sample", "recent-run")
    for folder in (old, recent):
        stage_catalogue(folder, [{"track_id": 1}])
    eight_days_ago = time.time() - 8 * 86400
    os.utime(old, (eight_days_ago, eight_days_ago))
    assert prune_staging(local, "sample") == 1
    assert not old.exists() and recent.exists()


def test_a_chunk_whose_every_track_failed_reads_as_no_features(tmp_path):
    """A chunk of broken files writes an empty table and failure rows: not an error."""
    from pipeline.etl import read_extraction

    chunks = tmp_path / "chunk-00000" / "chunks"
    chunks.mkdir(parents=True)
    pd.DataFrame({"track_id": pd.Series([], dtype="int64")}).to_parquet(chunks / "chunk-00000.parquet")
    pd.DataFrame({"track_id": [5, 6], "reason": ["missing_file: gone", "not_audio"]}).to_csv(
        chunks / "chunk-00000.failures.csv", index=False)
    features, failures = read_extraction(tmp_path)
    assert features.empty
    assert [(f["track_id"], f["reason"], f["detail"]) for f in failures] == [
        (5, "missing_file", "gone"), (6, "not_audio", None)]
    # Today's extractor writes the detail in its own column.
    pd.DataFrame({"track_id": [7, 8], "reason": ["timeout", "too_long"],
                  "detail": ["took over 120 s", ""]}).to_csv(chunks / "chunk-00000.failures.csv", index=False)
    _, failures = read_extraction(tmp_path)
    assert [(f["track_id"], f["reason"], f["detail"]) for f in failures] == [
        (7, "timeout", "took over 120 s"), (8, "too_long", None)]
