"""The platform on real recorded music, end to end: ``fma_etl`` with ``dataset=local`` on the
corpus built from Debian's game soundtracks (``fma_sample.recorded``), then ``fma_training``.

The synthetic sample proves the plumbing; this proves that the gate passes real music,
that broken files of the kinds FMA has are quarantined with their reasons, and that
similar tracks on real audio group music from the same source above chance.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest

from fma_platform.contracts import Collection
from fma_platform.mongo import platform_db
from tests.dags.test_fma_etl_dag import TRAINING_CONF, counts, run_etl

pytestmark = [pytest.mark.slow, pytest.mark.recorded_music]

K = TRAINING_CONF["k"]


@pytest.fixture(scope="module")
def recorded_runs(airflow_db, mongo_server, recorded_corpus):
    from airflow.dag_processing.dagbag import DagBag

    from fma_platform.settings import PROJECT_ROOT

    db = platform_db(mongo_server)
    for name in Collection:
        db[name].drop()
    etl_states = run_etl({"dataset": "local", "metadata_dir": str(recorded_corpus.metadata_dir),
                          "audio_dir": str(recorded_corpus.audio_dir), "chunk_size": 0, "workers": 2,
                          "pca_components": 16, "max_failure_fraction": 0.2})
    training = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "fma_training.py")).get_dag("fma_training")
    run = training.test(run_conf=TRAINING_CONF)
    training_states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    return etl_states, training_states, db


def test_both_dags_succeed_on_real_music(recorded_runs):
    etl_states, training_states, _ = recorded_runs
    assert set(etl_states.values()) == {"success"}, etl_states
    assert set(training_states.values()) == {"success"}, training_states


def test_real_clips_load_and_broken_files_are_quarantined_with_their_reason(recorded_runs, recorded_corpus):
    _, _, db = recorded_runs
    found = counts(db)
    clips, planted = recorded_corpus.clip_ids, recorded_corpus.expected_failures
    assert found[Collection.TRACKS] == len(clips) + len(planted)
    assert sorted(db[Collection.TRACK_FEATURES].distinct("track_id")) == clips
    assert {d["track_id"]: d["reason"] for d in db[Collection.QUARANTINE].find()} == planted
    for doc in db[Collection.TRACK_FEATURES].find({}, {"features": 1}):
        assert len(doc["features"]) == 518 and all(math.isfinite(v) for v in doc["features"].values())
    assert db[Collection.TRACKS].count_documents({"synthetic": True}) == 0
    run = db[Collection.ETL_RUNS].find_one({"dataset": "local"})
    assert run["status"] == "success" and run["quality"] and all(run["quality"].values())


def test_similar_real_tracks_come_from_the_same_source_above_chance(recorded_runs, recorded_corpus):
    """Source-precision@k: the share of a clip's neighbours cut from the same Debian package."""
    _, _, db = recorded_runs
    source = {int(t): f["source_package"] for t, f in recorded_corpus.manifest["files"].items() if f["kind"] == "clip"}
    docs = list(db[Collection.SIMILAR_TRACKS].find())
    assert sorted(d["track_id"] for d in docs) == recorded_corpus.clip_ids
    hits = [sum(source[n["track_id"]] == source[d["track_id"]] for n in d["neighbours"]) / len(d["neighbours"])
            for d in docs]
    precision = sum(hits) / len(hits)
    sizes = Counter(source.values())
    chance = sum(n * (n - 1) / (len(source) - 1) for n in sizes.values()) / len(source)
    print(f"source-precision@{K} on real music: {precision:.3f} (chance {chance:.3f})")
    assert all(len(d["neighbours"]) == K for d in docs)
    assert precision >= 1.4 * chance, (precision, chance)
