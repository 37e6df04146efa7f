"""The batch processor and the model cache on the real MongoDB server (no Spark)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from fma_platform.contracts import ALS_ITEM_FACTORS, ALS_USER_FACTORS, Collection, ModelFamily, Pointer
from fma_platform.events import encode_event
from fma_platform.model_store import ModelStore
from fma_platform.stream_status import BATCH_KIND, KIND
from spark_jobs.streaming.batch import RecommendationStream
from spark_jobs.streaming.models import ModelCache, load_stream_catalogue
from spark_jobs.streaming.ranking import rank_tracks
from tests.spark_jobs.streaming.conftest import T0, event, record, seed_catalogue


def test_a_replayed_batch_changes_nothing(mongo_db, settings, tmp_path):
    settings = settings.model_copy(update={"state_dir": tmp_path})  # no models: content ranking, unversioned
    seed_catalogue(mongo_db)
    stream = RecommendationStream(mongo_db, settings, checkpoint=None, query_name="replay-test")
    valid = [event("u1", 100, "play", T0), event("u1", 100, "complete", T0 + timedelta(seconds=30)),
             event("u2", 200, "like", T0 + timedelta(seconds=5))]
    records = [record(encode_event(e), i) for i, e in enumerate(valid)] + [record(b"[]", 3)]
    first = stream.process(records, batch_id=0)
    assert (first.valid_events, first.new_events, first.dead_letters, first.users_updated) == (3, 3, 1, 2)
    names = (Collection.LISTENING_EVENTS, Collection.DEAD_LETTERS, Collection.TRENDING)
    state = {name: list(mongo_db[name].find().sort("_id")) for name in names}
    again = stream.process(records, batch_id=0)
    assert (again.valid_events, again.new_events, again.dead_letters) == (3, 3, 1)  # the same batch's events
    for name in names:
        assert list(mongo_db[name].find().sort("_id")) == state[name], name
    assert mongo_db[Collection.STREAM_METRICS].count_documents({KIND: BATCH_KIND}) == 1  # keyed by batch
    track = mongo_db[Collection.TRENDING].find_one({"kind": "track", "key": 100})
    assert (track["plays"], track["completes"]) == (1, 1)
    # The same events again in a later batch (a producer's re-send): stored once, counted once.
    later = stream.process(records[:2], batch_id=1)
    assert (later.valid_events, later.new_events) == (2, 0)
    track = mongo_db[Collection.TRENDING].find_one({"kind": "track", "key": 100})
    assert (track["plays"], track["completes"]) == (1, 1)
    assert mongo_db[Collection.TRENDING].find_one({"kind": "listeners"})["listeners"] == 2
    recs = mongo_db[Collection.REALTIME_RECOMMENDATIONS].find_one({"user_id": "u1"})
    assert recs["triggered_by"] == valid[1].event_id and recs["items"] and 100 not in {i["track_id"] for i in recs["items"]}
    assert recs["model_version"] == "content:unversioned"


def publish_als(models_dir, version: str, *, user: str, favourite: int, with_files: bool = True) -> None:
    """An ALS version in the model store, made champion, as the training job leaves it."""
    store = ModelStore.of(models_dir, ModelFamily.ALS)
    folder = store.prepare(version)
    if with_files:
        pd.DataFrame({"user_id": [user], "features": [[1.0, 0.0]]}).to_parquet(folder / ALS_USER_FACTORS)
        pd.DataFrame({"track_id": [favourite, 100], "features": [[3.0, 0.0], [0.5, 0.0]]}).to_parquet(
            folder / ALS_ITEM_FACTORS)
    store.write_metadata(version, {"version": version})
    store.point(Pointer.CHAMPION, version)


def test_als_champion_is_loaded_and_reloaded_when_it_changes(mongo_db, tmp_path):
    seed_catalogue(mongo_db)
    cache = ModelCache(mongo_db, tmp_path, refresh_s=600)
    catalogue = cache.catalogue()
    assert cache.als(catalogue) is None and cache.als_error is None  # no champion yet: content only
    for version, favourite in (("v1", 305), ("v2", 206)):
        publish_als(tmp_path, version, user="u1", favourite=favourite)
        als = cache.als(catalogue)
        assert als.version == version
        scores = als.scores_for("u1")
        assert catalogue.track_ids[int(np.nanargmax(scores))] == favourite
        assert np.isnan(scores).sum() == catalogue.embeddings.size - 2  # tracks without factors: no ALS score
        assert als.scores_for("someone-else") is None


def test_an_unreadable_champion_is_reported_and_ranking_goes_on_by_content(mongo_db, settings, tmp_path):
    seed_catalogue(mongo_db)
    settings = settings.model_copy(update={"state_dir": tmp_path})
    publish_als(settings.models_dir, "broken", user="u1", favourite=305, with_files=False)
    stream = RecommendationStream(mongo_db, settings, checkpoint=None, query_name="broken-als")
    metrics = stream.process([record(encode_event(event("u1", 100, "complete", T0)), 0)], batch_id=0)
    assert metrics.users_updated == 1 and metrics.model_version == "content:unversioned"
    assert metrics.als_error.startswith("ALS champion broken unreadable")
    stored = mongo_db[Collection.STREAM_METRICS].find_one({KIND: BATCH_KIND})
    assert stored["als_error"] == metrics.als_error


def test_the_catalogue_has_the_transform_version_and_only_tracks_of_the_catalogue(mongo_db, tmp_path):
    seed_catalogue(mongo_db)
    mongo_db[Collection.TRACK_FEATURES].insert_one({"track_id": 4242, "embedding": [1.0] + [0.0] * 7})
    transforms = ModelStore.of(tmp_path, ModelFamily.FEATURE_TRANSFORM)
    transforms.write_metadata("t1", {})
    transforms.point(Pointer.CURRENT, "t1")
    catalogue = ModelCache(mongo_db, tmp_path).catalogue()
    assert catalogue.version == "t1" and 4242 not in catalogue.index_of  # not in ``tracks``: never recommended
    assert catalogue.embeddings.size == len(catalogue.known_ids) == 36


def test_an_empty_catalogue_loads_before_the_first_etl(mongo_db):
    """A fresh machine starts the job before any track has an embedding: it must not crash."""
    catalogue = load_stream_catalogue(mongo_db, version=None)
    assert catalogue.embeddings.size == 0
    ranked = rank_tracks(track_ids=catalogue.track_ids, embeddings=catalogue.vectors, taste=None, excluded=set(),
                         popularity=catalogue.popularity, index_of=catalogue.index_of)
    assert ranked == []


def test_histories_read_at_most_the_recent_events_of_each_listener(mongo_db):
    from fma_platform.events import to_document
    from spark_jobs.streaming.sink import ensure_indexes, load_histories

    ensure_indexes(mongo_db)
    stored = [event("busy", 100 + n % 12, "complete", T0 + timedelta(seconds=n)) for n in range(300)]
    stored += [event("quiet", 200, "like", T0 + timedelta(seconds=5)), event("quiet", 201, "play", T0 - timedelta(hours=9))]
    mongo_db[Collection.LISTENING_EVENTS].insert_many([to_document(e) for e in stored])

    histories = load_histories(mongo_db, ["busy", "quiet", "nobody"], limit=50, since=T0 - timedelta(hours=1))

    assert sorted(histories) == ["busy", "quiet"]
    busy = histories["busy"]
    assert len(busy) == 50 and busy["client_ts"].is_monotonic_decreasing
    assert busy["client_ts"].iloc[0] == T0 + timedelta(seconds=299)  # the newest 50, newest first
    assert histories["quiet"]["track_id"].tolist() == [200]  # the event before `since` is not read
