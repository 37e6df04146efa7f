"""The simulator's ground-truth setups: under ``latent`` nothing a recommender reads carries the
tastes' space, and the planted latent tastes still shape behaviour.

The mechanism is asserted directly: with latent tastes the events do not depend on the
embeddings at all (swap them, same events), the attributes reach no MongoDB document, and
listening still follows the planted taste (completes concentrate on high-affinity tracks).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from fma_platform.contracts import Collection
from simulator import (
    GroundTruth,
    SimulationOptions,
    SimulationParameterError,
    Sink,
    latent_attributes,
    prepare_catalogue,
    simulate,
    synthetic_catalogue,
)
from simulator.behaviour import affinity_at, taste_similarities
from simulator.cli import main
from simulator.ground_truth import LATENT_DIMS, LATENT_GENRE_SHARE

START = datetime(2024, 3, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def catalogue() -> pd.DataFrame:
    return synthetic_catalogue(tracks=240, genres=8)


def with_other_embeddings(catalogue: pd.DataFrame) -> pd.DataFrame:
    """The same catalogue with unrelated random unit embeddings."""
    rng = np.random.default_rng(99)
    vectors = rng.normal(size=(len(catalogue), 16))
    return catalogue.assign(embedding=list(vectors / np.linalg.norm(vectors, axis=1, keepdims=True)))


def plays(result) -> list[tuple]:
    return [(event.event_id, event.user_id, event.track_id, event.type, event.client_ts) for event in result.events()]


def run(catalogue, ground_truth, *, seed=5, listeners=40, events=4000):
    return simulate(catalogue, n_listeners=listeners, target_events=events, seed=seed, start=START, days=7,
                    ground_truth=ground_truth)


def test_latent_listening_does_not_depend_on_the_embeddings(catalogue):
    swapped = with_other_embeddings(catalogue)
    assert plays(run(catalogue, "latent")) == plays(run(swapped, "latent"))
    assert plays(run(catalogue.drop(columns="embedding"), "latent")) == plays(run(catalogue, "latent"))
    # Today's setup does depend on them: the circularity the latent setup removes.
    assert plays(run(catalogue, "embedding")) != plays(run(swapped, "embedding"))


def test_latent_tastes_exist_without_embeddings_and_are_labelled(catalogue):
    result = run(catalogue.drop(columns="embedding"), GroundTruth.LATENT)
    assert result.ground_truth is GroundTruth.LATENT
    for listener in result.listeners:
        assert len(listener.taste_vector) == LATENT_DIMS
        assert listener.to_document()["taste_space"] == "latent"
    assert run(catalogue, "embedding").listeners[0].to_document()["taste_space"] == "embedding"


def test_the_setup_is_part_of_the_run_key_only_when_latent(catalogue):
    embedding, latent = run(catalogue, "embedding"), run(catalogue, "latent")
    assert embedding.run_key != latent.run_key  # both runs can share listening_events
    assert not set(e.event_id for e in embedding.events()) & set(e.event_id for e in latent.events())


def test_latent_attributes_are_seeded_per_track_and_half_genre(catalogue):
    arrays = prepare_catalogue(catalogue)
    attributes = latent_attributes(arrays, seed=3)
    assert attributes.shape == (240, LATENT_DIMS)
    assert np.allclose(np.linalg.norm(attributes, axis=1), 1.0)
    assert np.array_equal(attributes, latent_attributes(arrays, seed=3))
    assert not np.allclose(attributes, latent_attributes(arrays, seed=4))
    shuffled = prepare_catalogue(catalogue.sample(frac=1.0, random_state=1))
    by_track = dict(zip(arrays.track_ids.tolist(), attributes))
    again = latent_attributes(shuffled, seed=3)
    assert all(np.allclose(by_track[t], row) for t, row in zip(shuffled.track_ids.tolist(), again))
    # Cosine of two tracks: ~ the genre share within a genre, ~0 across genres.
    cosine = attributes @ attributes.T
    same = arrays.genre_codes[:, None] == arrays.genre_codes[None, :]
    off_diagonal = ~np.eye(len(attributes), dtype=bool)
    assert cosine[same & off_diagonal].mean() == pytest.approx(LATENT_GENRE_SHARE, abs=0.1)
    assert abs(cosine[~same].mean()) < 0.1


def test_planted_latent_tastes_shape_completes(catalogue):
    result = run(catalogue, "latent", listeners=120, events=24_000)
    arrays = result.catalogue
    space = latent_attributes(arrays, seed=5)
    row_of = {int(t): i for i, t in enumerate(arrays.track_ids)}
    completes_high = completes_low = plays_high = plays_low = 0
    for listener, plan in zip(result.listeners, result.plans):
        affinity = affinity_at(listener, arrays, taste_similarities([listener], arrays, space)[0],
                               np.arange(arrays.size))
        high = affinity > np.median(affinity)
        for track, skipped in zip(plan.track_index, plan.skipped):
            if high[row_of[int(arrays.track_ids[track])]]:
                plays_high, completes_high = plays_high + 1, completes_high + (not skipped)
            else:
                plays_low, completes_low = plays_low + 1, completes_low + (not skipped)
    assert plays_high > 2 * plays_low  # picks are pulled towards the planted taste
    assert completes_high / plays_high > completes_low / plays_low + 0.1


def test_a_bad_setup_is_refused(catalogue):
    with pytest.raises(SimulationParameterError, match="ground truth must be one of"):
        run(catalogue, "genre")
    with pytest.raises(SimulationParameterError, match="ground truth"):
        SimulationOptions(listeners=1, events=10, seed=1, start=START, sink=Sink.MONGO, ground_truth="audio")


def _numeric_arrays(value):
    """Every list of numbers inside a (nested) document."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _numeric_arrays(item)
    elif isinstance(value, list):
        if value and all(isinstance(x, float) for x in value):
            yield np.array(value)
        for item in value:
            yield from _numeric_arrays(item)


def test_a_latent_run_stores_nothing_of_the_attributes(mongo_db, mongo_server, catalogue, capsys):
    mongo_db[Collection.TRACKS].insert_many(catalogue.drop(columns="embedding").astype(object).to_dict("records"))
    here = mongo_server.model_copy(update={"mongo_db": mongo_db.name})
    assert main(["run", "--listeners", "12", "--events", "900", "--seed", "8", "--start", "2024-03-01T00:00:00Z",
                 "--to", "mongo", "--ground-truth", "latent"], settings=here) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ground_truth"] == "latent" and report["inserted"] == report["events"] > 0
    attributes = latent_attributes(prepare_catalogue(catalogue), seed=8)
    stored = [document for name in mongo_db.list_collection_names() for document in mongo_db[name].find()]
    vectors = [vector for document in stored for vector in _numeric_arrays(document)]
    assert vectors, "the saved listeners' taste directions are vectors"
    for vector in vectors:
        if vector.size == LATENT_DIMS:
            assert np.abs(attributes - vector).max(axis=1).min() > 1e-6  # no track's attributes
    listeners = list(mongo_db[Collection.SIMULATED_LISTENERS].find())
    assert {listener["taste_space"] for listener in listeners} == {"latent"}


def test_the_cli_refuses_an_unknown_setup(settings, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["run", "--listeners", "1", "--events", "10", "--seed", "1", "--start", "2024-03-01T00:00:00Z",
              "--to", "mongo", "--ground-truth", "audio"], settings=settings)
    assert exited.value.code == 2 and "invalid choice: 'audio'" in capsys.readouterr().err
