"""The real-time loop: pure batch functions, the batch processor on real MongoDB, and the
whole query on the shared Spark session, the real broker and real MongoDB."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from kafka import KafkaProducer

from fma_platform.contracts import Collection
from fma_platform.events import MAX_EVENT_BYTES, encode_event, new_event
from fma_platform.producer import EventProducer
from fma_platform.stream_status import heartbeat_id
from infra.streaming import StreamingDeadError, StreamingLagError, streaming_health, streaming_spec
from spark_jobs import realtime
from spark_jobs.kafka_source import close_read_consumers
from spark_jobs.realtime import KafkaRecord
from spark_jobs.streaming_recommendations import (
    ModelCache,
    RecommendationStream,
    StreamConfig,
    Supervisor,
    parse_args,
    progress_lag,
    start_stream,
)

T0 = datetime(2024, 3, 1, 20, 0, tzinfo=timezone.utc)
DIM = 8
PER_CLUSTER = 12
CLUSTERS = 3  # cluster c: tracks 100*(c+1) .. +11, genre 10+c
UNKNOWN_TRACK = 999_999
QUERY_TIMEOUT_S = 90


# --- synthetic catalog --------------------------------------------------------------------------
def cluster_of(track_id: int) -> int:
    return track_id // 100 - 1


def catalog_arrays(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Track ids and unit embeddings in three tight clusters (orthogonal centres)."""
    rng = np.random.default_rng(seed)
    ids, rows = [], []
    for cluster in range(CLUSTERS):
        for i in range(PER_CLUSTER):
            vector = np.eye(DIM)[cluster] + rng.normal(0, 0.05, DIM)
            ids.append(100 * (cluster + 1) + i)
            rows.append(vector / np.linalg.norm(vector))
    return np.array(ids, dtype=np.int64), np.array(rows)


def seed_catalog(db) -> None:
    ids, embeddings = catalog_arrays()
    db[Collection.TRACKS].insert_many([
        {"track_id": int(t), "title": f"Song {t}", "top_genre_id": 10 + cluster_of(int(t)),
         "top_genre_title": f"Genre {10 + cluster_of(int(t))}", "listens": int(t) % 7}
        for t in ids
    ])
    db[Collection.TRACK_FEATURES].insert_many([
        {"track_id": int(t), "embedding": e.tolist(), "model_version": "test"} for t, e in zip(ids, embeddings)
    ])


def event(user: str, track: int, kind: str, at: datetime, *, listened: float | None = None):
    position = {"play": 0.0, "complete": 30.0, "like": 30.0, "dislike": 5.0}.get(kind, listened or 0.0)
    return new_event(user_id=user, track_id=track, type=kind, position_s=position,
                     listened_s=position if listened is None else listened, track_duration_s=30.0,
                     client_ts=at, session_id=f"{user}-s", source="simulator")


def history(rows: list[tuple[int, str, float, datetime]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"track_id": t, "type": k, "listened_s": listened, "track_duration_s": 30.0, "client_ts": at}
         for t, k, listened, at in rows]
    )


def record(value: bytes | None, offset: int, *, partition: int = 0) -> KafkaRecord:
    return KafkaRecord(value, "events", partition, offset, T0)


# --- taste and ranking (pure) ---------------------------------------------------------------------
def test_recency_weights_halve_every_half_life():
    weights = realtime.recency_weights([0.0, 600.0, 1200.0, -5.0], half_life_s=600.0)
    assert weights == pytest.approx([1.0, 0.5, 0.25, 1.0])


def test_early_skips_and_dislikes_push_completes_and_likes_pull():
    weights = realtime.signal_weights(["complete", "like", "skip", "skip", "dislike", "pause"],
                                      [30.0, 30.0, 3.0, 25.0, 5.0, 10.0], [30.0] * 6)
    complete, like, early_skip, late_skip, dislike, pause = weights
    assert like > complete > 0 and late_skip > 0 and pause == 0
    assert early_skip < 0 and dislike < 0


def test_a_like_pulls_the_taste_and_a_skip_pushes_it_away():
    ids, embeddings = catalog_arrays()
    index_of = {int(t): i for i, t in enumerate(ids)}
    liked = realtime.taste_vector(history([(100, "like", 30.0, T0)]), embeddings, index_of)
    assert liked @ embeddings[index_of[101]] > 0.9  # towards the liked track's neighbours
    both = history([(100, "complete", 30.0, T0), (200, "complete", 30.0, T0)])
    before = realtime.taste_vector(both, embeddings, index_of)
    skipped = pd.concat([both, history([(201, "skip", 3.0, T0 + timedelta(seconds=40))])])
    after = realtime.taste_vector(skipped, embeddings, index_of)
    assert after @ embeddings[index_of[202]] < before @ embeddings[index_of[202]] - 0.3
    assert after @ embeddings[index_of[102]] > before @ embeddings[index_of[102]]


def test_older_signals_count_less():
    ids, embeddings = catalog_arrays()
    index_of = {int(t): i for i, t in enumerate(ids)}
    rows = history([(100, "complete", 30.0, T0), (200, "complete", 30.0, T0 + timedelta(hours=2))])
    taste = realtime.taste_vector(rows, embeddings, index_of, half_life_s=1800.0)
    assert taste @ embeddings[index_of[201]] > taste @ embeddings[index_of[101]] + 0.5


def test_no_signal_gives_no_taste():
    ids, embeddings = catalog_arrays()
    index_of = {int(t): i for i, t in enumerate(ids)}
    assert realtime.taste_vector(history([(100, "pause", 3.0, T0)]), embeddings, index_of) is None
    assert realtime.taste_vector(history([(UNKNOWN_TRACK, "like", 30.0, T0)]), embeddings, index_of) is None


def test_ranking_excludes_what_was_just_heard_and_explains_each_item():
    ids, embeddings = catalog_arrays()
    index_of = {int(t): i for i, t in enumerate(ids)}
    rows = history([(100, "complete", 30.0, T0), (101, "like", 30.0, T0), (300, "skip", 2.0, T0)])
    taste = realtime.taste_vector(rows, embeddings, index_of)
    titles = {int(t): f"Song {t}" for t in ids}
    items = realtime.rank_tracks(
        track_ids=ids, embeddings=embeddings, taste=taste, excluded=realtime.recently_heard(rows),
        anchors=realtime.recent_anchors(rows, titles), index_of=index_of, k=8,
    )
    ranked = [item.track_id for item in items]
    assert not {100, 101, 300} & set(ranked)
    assert all(cluster_of(t) == 0 for t in ranked)  # the liked cluster first
    assert items[0].reason in {"because you liked Song 101", "because you played Song 100"}
    assert all(item.reason for item in items)
    assert [item.score for item in items] == sorted((item.score for item in items), reverse=True)


def test_als_scores_blend_in_and_explain_their_items():
    ids, embeddings = catalog_arrays()
    taste = embeddings[0]
    user, items_f = np.array([1.0, 0.0]), np.zeros((len(ids), 2))
    items_f[list(ids).index(205)] = [5.0, 0.0]  # collaborative signal for a track of another cluster
    als = realtime.normalised_als_scores(user, items_f, np.ones(len(ids), dtype=bool))
    assert als.max() == pytest.approx(1.0)
    items = realtime.rank_tracks(track_ids=ids, embeddings=embeddings, taste=taste, excluded={100},
                                 als_scores=als, als_weight=0.6, k=12)
    by_id = {item.track_id: item for item in items}
    assert 205 in by_id and by_id[205].reason == realtime.REASON_ALS
    cold = realtime.rank_tracks(track_ids=ids, embeddings=embeddings, taste=None, excluded=set(),
                                popularity=np.arange(len(ids), dtype=float), k=3)
    assert [item.reason for item in cold] == [realtime.REASON_POPULAR] * 3


# --- dead letters (pure) --------------------------------------------------------------------------
def test_each_malformed_kind_becomes_a_dead_letter_with_its_reason():
    good = encode_event(event("u1", 100, "play", T0))
    document = json.loads(good)
    payloads = {
        "malformed_json": b"{not json",
        "unknown_field": json.dumps({**document, "volume": 3}).encode(),
        "missing_field": json.dumps({k: v for k, v in document.items() if k != "user_id"}).encode(),
        "wrong_type": json.dumps({**document, "track_id": "100"}).encode(),
        "bad_value": json.dumps({**document, "position_s": -1}).encode(),
        "oversized": good + b" " * MAX_EVENT_BYTES,
        "unsupported_version": json.dumps({**document, "schema_version": 2}).encode(),
        "unknown_track": json.dumps({**document, "track_id": UNKNOWN_TRACK}).encode(),
        "null_payload": None,
    }
    records = [record(value, offset) for offset, value in enumerate([good, *payloads.values()])]
    batch = realtime.classify_records(records, known_track_ids={100}, received_at=T0)
    assert [item.event.track_id for item in batch.valid] == [100]
    assert [d["reason_kind"] for d in batch.dead_letters] == list(payloads)
    for letter, offset in zip(batch.dead_letters, range(1, len(records))):
        assert letter["_id"] == f"events/0/{offset}" and letter["offset"] == offset and letter["reason"]
    oversized = batch.dead_letters[list(payloads).index("oversized")]
    assert oversized["raw_bytes"] == len(payloads["oversized"]) and oversized["raw"].startswith("{")


# --- trending (pure) --------------------------------------------------------------------------------
def test_trending_increments_count_per_window_track_and_genre():
    events = pd.DataFrame([
        {"track_id": 100, "type": "play", "client_ts": T0},
        {"track_id": 100, "type": "complete", "client_ts": T0 + timedelta(seconds=30)},
        {"track_id": 101, "type": "skip", "client_ts": T0 + timedelta(seconds=60)},
        {"track_id": 100, "type": "play", "client_ts": T0 + timedelta(minutes=6)},  # next window
        {"track_id": 100, "type": "pause", "client_ts": T0},  # not counted
    ])
    genres = {100: (10, "Rock"), 101: (10, "Rock")}
    documents = {d["_id"]: d for d in realtime.trending_increments(events, genres)}
    window = documents["track/100/2024-03-01T20:00:00Z"]
    assert (window["plays"], window["completes"], window["skips"], window["likes"]) == (1, 1, 0, 0)
    assert window["window_end"] - window["window_start"] == timedelta(minutes=5) and window["genre_id"] == 10
    genre = documents["genre/10/2024-03-01T20:00:00Z"]
    assert (genre["plays"], genre["completes"], genre["skips"], genre["title"]) == (1, 1, 1, "Rock")
    assert documents["track/100/2024-03-01T20:05:00Z"]["plays"] == 1
    assert len(documents) == 5  # 2 tracks + 1 genre in the first window, 1 + 1 in the next


# --- the batch processor on real MongoDB ---------------------------------------------------------------
def test_a_replayed_batch_changes_nothing(mongo_db, settings):
    seed_catalog(mongo_db)
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
    assert mongo_db[Collection.STREAM_METRICS].count_documents({"kind": "batch"}) == 1  # keyed by batch
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


def test_als_champion_is_loaded_and_reloaded_when_it_changes(mongo_db, tmp_path):
    seed_catalog(mongo_db)
    cache = ModelCache(mongo_db, tmp_path, refresh_s=600)
    catalog = cache.catalog()
    assert cache.als(catalog) is None  # no champion yet: content only
    for version, favourite in (("v1", 305), ("v2", 206)):
        folder = tmp_path / "als" / version
        folder.mkdir(parents=True)
        pd.DataFrame({"user_id": ["u1"], "features": [[1.0, 0.0]]}).to_parquet(folder / "user_factors.parquet")
        pd.DataFrame({"track_id": [favourite, 100], "features": [[3.0, 0.0], [0.5, 0.0]]}).to_parquet(
            folder / "item_factors.parquet")
        (tmp_path / "als" / "CHAMPION").write_text(version + "\n")
        als = cache.als(catalog)
        assert als.version == version
        scores = als.scores_for("u1")
        assert catalog.track_ids[int(np.argmax(scores))] == favourite
        assert als.scores_for("someone-else") is None


def test_health_reports_dead_and_lagging_jobs(mongo_db):
    with pytest.raises(StreamingDeadError, match="never ran"):
        streaming_health(mongo_db, max_lag=10, max_staleness_s=30)
    now = datetime.now(timezone.utc)
    metrics = mongo_db[Collection.STREAM_METRICS]
    metrics.insert_one({"_id": heartbeat_id(), "kind": "heartbeat", "is_active": True, "updated_at": now,
                        "lag": {"0": 50, "1": 0}, "total_lag": 50})
    assert streaming_health(mongo_db, max_lag=100, max_staleness_s=30)["status"] == "ok"
    with pytest.raises(StreamingLagError, match="50 records behind"):
        streaming_health(mongo_db, max_lag=10, max_staleness_s=30)
    with pytest.raises(StreamingDeadError, match="heartbeat"):
        streaming_health(mongo_db, max_lag=100, max_staleness_s=30, now=now + timedelta(minutes=5))
    metrics.update_one({"_id": heartbeat_id()}, {"$set": {"is_active": False, "error": "boom"}})
    with pytest.raises(StreamingDeadError, match="boom"):
        streaming_health(mongo_db, max_lag=100, max_staleness_s=30)


def test_service_spec_runs_the_job_with_spark_submit(settings, tmp_path):
    spec = streaming_spec(settings, trigger_seconds=0.5, max_offsets_per_trigger=500)
    assert spec.command[0].endswith("spark-submit") and "local[2]" in spec.command
    assert spec.command[spec.command.index("--trigger-seconds") + 1] == "0.5"
    assert spec.command[spec.command.index("--max-offsets-per-trigger") + 1] == "500"
    assert spec.command[-5].endswith("spark_jobs/streaming_recommendations.py")
    assert spec.env["FMA_MONGO_PORT"] == str(settings.mongo_port) and "PYSPARK_PYTHON" in spec.env
    args = parse_args(["--trigger-seconds", "2", "--checkpoint", str(tmp_path), "--run-for", "5"], settings)
    assert (args.trigger_seconds, args.checkpoint, args.run_for, args.starting_offsets) == (2.0, tmp_path, 5.0, "earliest")


# --- end to end: Spark + Kafka + MongoDB ---------------------------------------------------------------
def wait_for(predicate, *, query, what: str, timeout_s: float = QUERY_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if query.exception() is not None:
            raise AssertionError(f"query failed while waiting for {what}: {query.exception()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {timeout_s} s")
        time.sleep(0.2)


def recs_after(db, user: str, event_id: str):
    document = db[Collection.REALTIME_RECOMMENDATIONS].find_one({"user_id": user})
    return document if document is not None and document["triggered_by"] == event_id else None


class CrashAfterWrites:
    """Processes a batch fully, then fails it once: Spark must replay it on restart."""

    def __init__(self, stream: RecommendationStream) -> None:
        self.stream = stream
        self.crashed = False

    def __call__(self, batch_df, batch_id):
        self.stream(batch_df, batch_id)
        if not self.crashed and self.stream.last_report.input_rows:
            self.crashed = True
            raise RuntimeError("injected crash after the batch's writes")


@pytest.mark.slow
def test_events_to_recommendations_exactly_once_across_restarts(spark, settings, mongo_db, unique_topic, tmp_path):
    seed_catalog(mongo_db)
    checkpoint = tmp_path / "checkpoint"
    config = StreamConfig(top_k=20)
    producer = EventProducer(settings, topic=unique_topic)
    raw = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    produced: list = []

    def send(*events):
        for item in events:
            producer.send(item)
            produced.append(item)
        assert producer.flush(30)
        return events[-1]

    def run(wrap=None):
        return start_stream(spark, settings, db=mongo_db, checkpoint=checkpoint, topic=unique_topic,
                            trigger_seconds=0.5, config=config, query_name="e2e", wrap_handler=wrap)

    now = datetime.now(timezone.utc) - timedelta(minutes=2)
    at = lambda seconds: now + timedelta(seconds=seconds)  # noqa: E731
    query, stream = run()
    try:
        # A listener who liked cluster 0 gets cluster 0, with reasons.
        last = send(event("fan", 100, "play", at(0)), event("fan", 100, "complete", at(30)),
                    event("fan", 101, "like", at(31)))
        recs = wait_for(lambda: recs_after(mongo_db, "fan", last.event_id), query=query, what="fan's recommendations")
        ids = [item["track_id"] for item in recs["items"]]
        assert ids and not {100, 101} & set(ids) and all(cluster_of(t) == 0 for t in ids[:5])
        assert all(item["reason"] for item in recs["items"])
        assert recs["items"][0]["reason"].startswith("because you")
        assert abs(recs["event_time"] - last.client_ts) < timedelta(milliseconds=1)  # MongoDB keeps ms
        assert recs["updated_at"] >= recs["event_time"]

        # Skips change the next recommendations: the skipped tracks and their neighbours drop.
        last = send(event("mixed", 100, "complete", at(0)), event("mixed", 200, "complete", at(31)))
        before = [i["track_id"] for i in wait_for(lambda: recs_after(mongo_db, "mixed", last.event_id),
                                                   query=query, what="mixed's recommendations")["items"]]
        last = send(event("mixed", 201, "play", at(62)), event("mixed", 201, "skip", at(64), listened=2.0),
                    event("mixed", 202, "play", at(66)), event("mixed", 202, "skip", at(68), listened=2.0))
        after = [i["track_id"] for i in wait_for(lambda: recs_after(mongo_db, "mixed", last.event_id),
                                                  query=query, what="recommendations after the skips")["items"]]
        cluster1 = lambda tracks: sum(cluster_of(t) == 1 for t in tracks)  # noqa: E731
        assert 201 not in after and 202 not in after
        assert cluster1(before) >= 5 and cluster1(after) == 0  # below every other cluster now

        # Malformed payloads become dead letters; the stream goes on.
        bad = [b"{oops", json.dumps({"schema_version": 1, "nope": True}).encode(), b"x" * (MAX_EVENT_BYTES + 1),
               encode_event(event("fan", UNKNOWN_TRACK, "play", at(90)))]
        for payload in bad:
            raw.send(unique_topic, key=b"bad", value=payload)
        raw.flush(30)
        wait_for(lambda: mongo_db[Collection.DEAD_LETTERS].count_documents({}) == len(bad), query=query,
                 what="dead letters")
        kinds = sorted(d["reason_kind"] for d in mongo_db[Collection.DEAD_LETTERS].find())
        assert kinds == sorted(["malformed_json", "unknown_field", "oversized", "unknown_track"])
        supervisor = Supervisor(mongo_db, query, stream)
        heartbeat = supervisor.record_progress()
        assert heartbeat["is_active"] and heartbeat["total_lag"] == 0
    finally:
        query.stop()
        producer.flush(30)

    # Events produced while the job is down, then a crash right after a batch's writes.
    send(*[event(f"late{i % 3}", 300 + i % 12, "complete", at(100 + i)) for i in range(30)])
    query, stream = run(wrap=CrashAfterWrites)
    try:
        with pytest.raises(Exception, match="injected crash"):
            query.awaitTermination(QUERY_TIMEOUT_S)
    finally:
        query.stop()
    send(*[event(f"later{i % 4}", 200 + i % 12, "like", at(200 + i)) for i in range(20)])
    query, stream = run()
    try:
        wait_for(lambda: mongo_db[Collection.LISTENING_EVENTS].count_documents({}) >= len(produced), query=query,
                 what="all produced events")
        time.sleep(2)  # a few more triggers: nothing more may arrive
        assert mongo_db[Collection.LISTENING_EVENTS].count_documents({}) == len(produced)
        assert set(mongo_db[Collection.LISTENING_EVENTS].distinct("_id")) == {e.event_id for e in produced}
        assert mongo_db[Collection.DEAD_LETTERS].count_documents({}) == len(bad)
        batches = list(mongo_db[Collection.STREAM_METRICS].find({"kind": "batch"}))
        assert sum(b["valid_events"] for b in batches) == len(produced)  # the replayed batch counted once
        assert sum(b["new_events"] for b in batches) == len(produced)
        plays = sum(d["completes"] + d["likes"] for d in mongo_db[Collection.TRENDING].find({"kind": "track"}))
        assert plays == sum(e.type.value in ("complete", "like") for e in produced)
        assert all(b["latency_seconds"]["p95"] is None or b["latency_seconds"]["p95"] < 60 for b in batches)
        end, lag = progress_lag(query.recentProgress[-1])
        assert sum(lag.values()) == 0 and sum(end.values()) == len(produced) + len(bad)
    finally:
        query.stop()
        close_read_consumers()  # the driver-side batch reads of this process
        producer.close()
        raw.close()


def test_an_empty_catalogue_loads_before_the_first_etl(mongo_db):
    """A fresh machine starts the job before any track has an embedding: it must not crash."""
    from spark_jobs.realtime import rank_tracks
    from spark_jobs.streaming_recommendations import load_track_catalog

    catalog = load_track_catalog(mongo_db, version=None)
    assert catalog.track_ids.size == 0 and catalog.embeddings.shape[0] == 0
    ranked = rank_tracks(track_ids=catalog.track_ids, embeddings=catalog.embeddings, taste=None, excluded=set(),
                         popularity=catalog.popularity, index_of=catalog.index_of)
    assert ranked == []
