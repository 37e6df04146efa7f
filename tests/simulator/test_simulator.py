"""The listener simulator: valid events, planted tastes visible in behaviour, idempotent sinks.

Behaviour tests run on a synthetic catalogue with known structure (200 tracks, 8 genres
of 25, embeddings clustered per genre, lognormal listens); sink tests talk to the real
embedded MongoDB and Kafka servers of the test session.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from fma_platform.contracts import Collection
from fma_platform.events import EventType, decode_event, encode_event
from fma_platform.producer import EventProducer
from infra.process import free_port
from simulator import (
    CatalogueError,
    EmptyCatalogueError,
    ServiceDownError,
    SimulationOptions,
    SimulationParameterError,
    Sink,
    load_catalogue,
    make_listeners,
    parse_start,
    prepare_catalogue,
    run_simulation,
    send_events_to_kafka,
    simulate,
    synthetic_catalogue,
    write_events_jsonl,
    write_events_to_mongo,
    write_listeners,
)
from simulator.behaviour import affinity_at, taste_similarities
from simulator.cli import main
from tests.kafka_helpers import consume_all

START = datetime(2024, 3, 1, tzinfo=timezone.utc)
DAYS = 14
GENRES = 8
TRACKS = 200


@pytest.fixture(scope="module")
def catalogue() -> pd.DataFrame:
    return synthetic_catalogue(tracks=TRACKS, genres=GENRES)


@pytest.fixture(scope="module")
def result(catalogue):
    return simulate(catalogue, n_listeners=300, target_events=30_000, seed=11, start=START, days=DAYS)


@pytest.fixture(scope="module")
def events(result):
    return list(result.events())


def affinity(listener, arrays) -> np.ndarray:
    """The listener's affinity for every track (the ground truth behaviour follows)."""
    return affinity_at(listener, arrays, taste_similarities([listener], arrays, arrays.embeddings)[0],
                       np.arange(arrays.size))


def by_user(events) -> dict[str, list]:
    grouped = defaultdict(list)
    for event in events:
        grouped[event.user_id].append(event)
    return grouped


# --- the contract -------------------------------------------------------------------------
def test_every_event_round_trips_the_schema_and_is_labelled_simulated(events):
    assert len(events) > 0
    for event in events:
        assert decode_event(encode_event(event)) == event
    assert {event.source.value for event in events} == {"simulator"}
    assert len({event.event_id for event in events}) == len(events)


def test_positions_follow_the_play(events):
    """Every play ends in exactly one skip or complete; completes end at the clip, skips early."""
    counts = Counter(event.type for event in events)
    assert counts[EventType.PLAY] == counts[EventType.SKIP] + counts[EventType.COMPLETE]
    assert all(counts[kind] > 0 for kind in EventType)
    for event in events:
        assert event.track_duration_s <= 30.0
        assert event.listened_s == event.position_s <= event.track_duration_s
        if event.type is EventType.COMPLETE:
            assert event.position_s == event.track_duration_s
        if event.type is EventType.SKIP:
            assert 0 < event.position_s < event.track_duration_s
        if event.type is EventType.PLAY:
            assert event.position_s == 0.0


def test_event_count_is_near_the_target(result, events):
    assert len(events) == result.event_count
    assert abs(len(events) - 30_000) / 30_000 < 0.05


def test_timestamps_increase_within_sessions_and_start_at_the_parameter(events):
    sessions_seen = defaultdict(list)
    for user_events in by_user(events).values():
        stamps = [event.client_ts for event in user_events]
        assert stamps == sorted(stamps), "a listener's events are yielded in time order"
        for event in user_events:
            sessions_seen[event.session_id].append(event.client_ts)
    for stamps in sessions_seen.values():
        assert all(earlier < later for earlier, later in zip(stamps, stamps[1:]))
    first = min(event.client_ts for event in events)
    last = max(event.client_ts for event in events)
    assert START <= first < START + timedelta(days=2)
    assert last > START + timedelta(days=DAYS - 2), "sessions spread over the simulated days"


def test_same_seed_gives_the_same_events_and_another_seed_does_not(catalogue):
    def run(seed):
        outcome = simulate(catalogue, n_listeners=20, target_events=2_000, seed=seed, start=START, days=DAYS)
        return [encode_event(event) for event in outcome.events()]

    first = run(5)
    assert run(5) == first
    assert run(6) != first


# --- planted tastes show in behaviour ----------------------------------------------------------
def test_activity_is_long_tailed(events):
    per_user = np.sort(np.array(list(Counter(event.user_id for event in events).values())))[::-1]
    top_tenth = per_user[: max(len(per_user) // 10, 1)].sum()
    assert top_tenth / per_user.sum() > 0.3
    assert np.median(per_user) < per_user.mean(), "many light listeners, few heavy ones"


def test_completes_and_likes_concentrate_on_the_favourite_genre(result, events, catalogue):
    genre_of = dict(zip(catalogue["track_id"], catalogue["top_genre_id"]))
    listeners = {listener.user_id: listener for listener in result.listeners}
    shares, correlations = [], []
    for user_id, user_events in by_user(events).items():
        kept = [genre_of[e.track_id] for e in user_events if e.type in (EventType.COMPLETE, EventType.LIKE)]
        if len(kept) < 30:
            continue
        listener = listeners[user_id]
        counts = Counter(kept)
        favourite = listener.genre_ids[int(np.argmax(listener.genre_preferences))]
        shares.append(counts[favourite] / len(kept))
        observed = np.array([counts[genre] / len(kept) for genre in listener.genre_ids])
        correlations.append(np.corrcoef(observed, listener.genre_preferences)[0, 1])
    catalogue_share = 1 / GENRES
    assert len(shares) >= 30
    assert np.mean(shares) > 3 * catalogue_share
    assert np.median(correlations) > 0.8


def test_skips_are_rarer_for_high_affinity_tracks(result, events, catalogue):
    arrays = prepare_catalogue(catalogue)
    listeners = {listener.user_id: listener for listener in result.listeners}
    position = {track_id: index for index, track_id in enumerate(arrays.track_ids)}
    affinities = {user_id: affinity(listener, arrays) for user_id, listener in listeners.items()}
    ends = [e for e in events if e.type in (EventType.SKIP, EventType.COMPLETE)]
    scores = np.array([affinities[e.user_id][position[e.track_id]] for e in ends])
    skipped = np.array([e.type is EventType.SKIP for e in ends])
    low, high = np.quantile(scores, [1 / 3, 2 / 3])
    assert skipped[scores <= low].mean() - skipped[scores >= high].mean() > 0.15


def test_likes_rise_and_dislikes_fall_with_affinity(result, events, catalogue):
    arrays = prepare_catalogue(catalogue)
    position = {track_id: index for index, track_id in enumerate(arrays.track_ids)}
    affinities = {listener.user_id: affinity(listener, arrays) for listener in result.listeners}

    def mean_affinity(kind):
        return np.mean([affinities[e.user_id][position[e.track_id]] for e in events if e.type is kind])

    assert mean_affinity(EventType.LIKE) > mean_affinity(EventType.PLAY) > mean_affinity(EventType.DISLIKE)


def test_more_listened_tracks_get_more_plays(events, catalogue):
    plays = Counter(event.track_id for event in events if event.type is EventType.PLAY)
    frame = catalogue.assign(plays=catalogue["track_id"].map(plays).fillna(0))
    low, high = frame["listens"].quantile([0.25, 0.75])
    assert frame.loc[frame["listens"] >= high, "plays"].mean() > 2 * frame.loc[frame["listens"] <= low, "plays"].mean()
    assert frame["listens"].corr(frame["plays"], method="spearman") > 0.3


def test_listeners_are_reproducible_and_labelled(result):
    again = make_listeners(5, genres=[10, 20, 30], seed=3)
    assert again == make_listeners(5, genres=[10, 20, 30], seed=3)
    assert [listener.user_id for listener in again] == [f"sim-{i:06d}" for i in range(1, 6)]
    for listener in again:
        assert abs(sum(listener.genre_preferences) - 1) < 1e-9
        assert 1 <= len(listener.favourite_genre_ids) <= 3
        assert listener.taste_vector is None  # no embeddings given
    taste = np.array(result.listeners[0].taste_vector)
    assert abs(np.linalg.norm(taste) - 1) < 1e-9
    document = result.listeners[0].to_document()
    assert document["simulated"] is True and document["source"] == "simulator"


# --- bad input ----------------------------------------------------------------------------
def test_bad_input_is_refused_with_a_reason(catalogue):
    with pytest.raises(EmptyCatalogueError, match="no tracks"):
        simulate(catalogue.iloc[:0], n_listeners=1, target_events=10, seed=1, start=START)
    with pytest.raises(CatalogueError, match="listens"):
        simulate(catalogue.drop(columns="listens"), n_listeners=1, target_events=10, seed=1, start=START)
    with pytest.raises(CatalogueError, match="unique"):
        simulate(pd.concat([catalogue, catalogue.iloc[:1]]), n_listeners=1, target_events=10, seed=1, start=START)
    with pytest.raises(SimulationParameterError, match="timezone"):
        simulate(catalogue, n_listeners=1, target_events=10, seed=1, start=datetime(2024, 1, 1))
    with pytest.raises(SimulationParameterError, match="n_listeners"):
        simulate(catalogue, n_listeners=0, target_events=10, seed=1, start=START)


def test_catalogue_without_embeddings_still_simulates(catalogue):
    outcome = simulate(catalogue.drop(columns="embedding"), n_listeners=10, target_events=500, seed=2, start=START)
    assert all(listener.taste_vector is None for listener in outcome.listeners)
    assert sum(1 for _ in outcome.events()) == outcome.event_count > 0


# --- sinks -----------------------------------------------------------------------------------
def small_run(catalogue, *, seed: int = 4):
    return simulate(catalogue, n_listeners=15, target_events=1_200, seed=seed, start=START, days=3)


def test_mongo_sink_is_idempotent(mongo_db, catalogue):
    outcome = small_run(catalogue)
    first = write_events_to_mongo(mongo_db, outcome.events())
    second = write_events_to_mongo(mongo_db, outcome.events())
    stored = mongo_db[Collection.LISTENING_EVENTS]
    assert stored.count_documents({}) == outcome.event_count == first.inserted
    assert (second.inserted, second.matched) == (0, outcome.event_count)
    assert stored.count_documents({"source": "simulator"}) == outcome.event_count


def test_listeners_saved_to_mongo_once(mongo_db, catalogue):
    outcome = small_run(catalogue)
    assert write_listeners(mongo_db, outcome.listeners) == 15
    assert write_listeners(mongo_db, outcome.listeners) == 15
    saved = mongo_db[Collection.SIMULATED_LISTENERS]
    assert saved.count_documents({"simulated": True}) == 15
    document = saved.find_one({"_id": "sim-000001"})
    assert document["genre_preferences"][0].keys() == {"genre_id", "share"}


def test_jsonl_sink_writes_the_wire_form(catalogue, tmp_path):
    outcome = small_run(catalogue)
    path = tmp_path / "out" / "events.jsonl"
    assert write_events_jsonl(path, outcome.events()) == outcome.event_count
    decoded = [decode_event(line) for line in path.read_bytes().splitlines()]
    assert decoded == list(outcome.events())


def test_load_catalogue_joins_usable_embeddings(mongo_db, catalogue):
    documents = catalogue.drop(columns="embedding").astype(object).to_dict("records")
    documents[0]["top_genre_id"] = None  # FMA tracks spanning several top-level genres
    mongo_db[Collection.TRACKS].insert_many([dict(doc, title=f"t{doc['track_id']}") for doc in documents])
    embedded = catalogue.iloc[: TRACKS // 2]
    mongo_db[Collection.TRACK_FEATURES].insert_many([
        {"track_id": int(track_id), "embedding": [float(x) for x in vector]}
        for track_id, vector in zip(embedded["track_id"], embedded["embedding"])
    ])
    damaged = int(catalogue["track_id"].iloc[TRACKS // 2])  # a vector of another size: left out, not fatal
    mongo_db[Collection.TRACK_FEATURES].insert_one({"track_id": damaged, "embedding": [1.0, 0.0, 0.0]})
    loaded = load_catalogue(mongo_db)
    assert len(loaded) == TRACKS
    assert loaded["embedding"].notna().sum() == TRACKS // 2
    assert loaded.loc[loaded["track_id"] == damaged, "embedding"].isna().all()
    arrays = prepare_catalogue(loaded)
    assert int(np.any(arrays.embeddings != 0.0, axis=1).sum()) == TRACKS // 2
    assert arrays.genre_ids == tuple(range(10, 10 * GENRES + 1, 10))
    assert arrays.size - arrays.known_genre_tracks == 1
    outcome = simulate(loaded, n_listeners=5, target_events=300, seed=1, start=START)
    assert outcome.event_count > 0


def test_empty_database_gives_an_empty_catalogue(mongo_db):
    assert load_catalogue(mongo_db).empty


def test_kafka_sink_delivers_every_event_once(kafka_broker, unique_topic, catalogue):
    outcome = small_run(catalogue)
    with EventProducer(kafka_broker, topic=unique_topic) as producer:
        report = send_events_to_kafka(producer, outcome.events())
    assert (report.handed_over, report.sent, report.buffered, report.dropped) == (outcome.event_count,) * 2 + (0, 0)
    records = consume_all(kafka_broker, unique_topic, outcome.event_count)
    assert sorted(decode_event(record.value).event_id for record in records) == sorted(
        event.event_id for event in outcome.events()
    )
    assert all(record.key == decode_event(record.value).user_id.encode() for record in records)


def test_kafka_sink_paces_to_the_rate(kafka_broker, unique_topic, catalogue):
    events = list(small_run(catalogue).events())[:200]
    with EventProducer(kafka_broker, topic=unique_topic) as producer:
        report = send_events_to_kafka(producer, events, rate_per_s=1_000)
    assert report.sent == 200
    assert report.elapsed_s >= 0.19
    with pytest.raises(ValueError, match="positive"), EventProducer(kafka_broker, topic=unique_topic) as producer:
        send_events_to_kafka(producer, events, rate_per_s=0)


# --- the library entry and its command line ----------------------------------------------------
def options(sink: Sink, **extra) -> SimulationOptions:
    return SimulationOptions(listeners=10, events=800, seed=3, start=START, sink=sink, **extra)


def seed_tracks(mongo_db, catalogue) -> None:
    mongo_db[Collection.TRACKS].insert_many(catalogue.drop(columns="embedding").astype(object).to_dict("records"))


def test_options_refuse_sink_settings_of_another_sink(tmp_path):
    with pytest.raises(SimulationParameterError, match="output path"):
        options(Sink.JSONL)
    with pytest.raises(SimulationParameterError, match="jsonl sink only"):
        options(Sink.MONGO, out=tmp_path / "events.jsonl")
    with pytest.raises(SimulationParameterError, match="kafka sink only"):
        options(Sink.MONGO, rate_per_s=10.0)
    assert parse_start("2024-03-01T00:00:00") == START  # no offset: UTC
    with pytest.raises(SimulationParameterError, match="ISO 8601"):
        parse_start("yesterday")


def test_a_down_database_is_a_service_down_error(settings):
    down = settings.model_copy(update={"mongo_port": free_port()})
    with pytest.raises(ServiceDownError, match="^MongoDB at"):
        run_simulation(down, options(Sink.MONGO))


def test_an_empty_catalogue_is_refused(mongo_server):
    empty = mongo_server.model_copy(update={"mongo_db": f"test_{uuid.uuid4().hex[:10]}"})
    with pytest.raises(EmptyCatalogueError, match="catalogue is empty"):
        run_simulation(empty, options(Sink.MONGO))


def test_run_to_jsonl_writes_events_and_saves_listeners(mongo_db, mongo_server, catalogue, tmp_path):
    seed_tracks(mongo_db, catalogue)
    here = mongo_server.model_copy(update={"mongo_db": mongo_db.name})
    out = tmp_path / "events.jsonl"
    report = run_simulation(here, options(Sink.JSONL, out=out))
    assert report.written == report.events == len(out.read_bytes().splitlines()) > 0
    assert report.listeners_saved == 10 and report.sent is None
    assert mongo_db[Collection.SIMULATED_LISTENERS].count_documents({"simulated": True}) == 10


def test_run_to_mongo_twice_stores_each_event_once(mongo_db, mongo_server, catalogue):
    seed_tracks(mongo_db, catalogue)
    here = mongo_server.model_copy(update={"mongo_db": mongo_db.name})
    first = run_simulation(here, options(Sink.MONGO))
    second = run_simulation(here, options(Sink.MONGO))
    assert second.run_key == first.run_key
    assert second.already_present == first.inserted == first.events and second.inserted == 0
    assert mongo_db[Collection.LISTENING_EVENTS].count_documents({}) == first.events


def test_run_to_kafka_sends_every_event(mongo_db, mongo_server, kafka_broker, catalogue):
    seed_tracks(mongo_db, catalogue)
    here = kafka_broker.model_copy(update={"mongo_db": mongo_db.name})
    report = run_simulation(here, options(Sink.KAFKA, rate_per_s=5000.0))
    assert report.sent == report.events > 0
    assert report.as_dict().keys() == {"run_key", "listeners", "events", "sink", "listeners_saved", "ground_truth",
                                        "sent", "elapsed_s"}
    assert report.ground_truth == "embedding"  # the default


RUN_ARGS = ["run", "--listeners", "10", "--events", "800", "--seed", "3", "--start", "2024-03-01T00:00:00Z"]


def test_cli_reports_a_down_database_in_one_line(settings, capsys):
    down = settings.model_copy(update={"mongo_port": free_port()})
    assert main([*RUN_ARGS, "--to", "mongo"], settings=down) == 1
    error = capsys.readouterr().err
    assert error.startswith("simulator: MongoDB at") and error.count("\n") == 1


def test_cli_prints_the_report_as_one_json_line(mongo_db, mongo_server, catalogue, tmp_path, capsys):
    seed_tracks(mongo_db, catalogue)
    here = mongo_server.model_copy(update={"mongo_db": mongo_db.name})
    out = tmp_path / "events.jsonl"
    assert main([*RUN_ARGS, "--to", "jsonl", "--out", str(out)], settings=here) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == summary["events"] == len(out.read_bytes().splitlines()) > 0
    assert summary["sink"] == "jsonl" and summary["out"] == str(out)
    with pytest.raises(SystemExit) as exited:
        main([*RUN_ARGS[:-1], "not-a-date", "--to", "mongo"], settings=here)
    assert exited.value.code == 2 and "ISO 8601" in capsys.readouterr().err
