"""Similar tracks by LSH, on clustered unit vectors whose cluster is the genre.

Each synthetic genre is a random direction plus variation in a few latent directions of
its own, so a track's nearest neighbours are (almost always) of its genre, as similar
music should be, while a random track shares its genre 1 time in 16.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from fma_platform.contracts import Collection
from fma_platform.settings import get_settings
from spark_jobs import similar_tracks as job
from spark_jobs.similar_tracks import (
    CURRENT_FILE,
    METADATA_FILE,
    REASON_BAD_GRID,
    REASON_DUPLICATE_TRACK_IDS,
    REASON_MIXED_DIMENSIONS,
    REASON_NON_FINITE,
    REASON_NOT_UNIT_LENGTH,
    REASON_TOO_FEW_TRACKS,
    REASON_ZERO_VECTOR,
    LshParams,
    SimilarTracksInputError,
    Trial,
    approx_neighbours,
    build_catalogue,
    catalogue_frame,
    check_catalogue_size,
    choose_trial,
    exact_neighbours,
    exact_top_k,
    fit_lsh,
    genre_precision,
    load_current_lsh,
    neighbour_lists,
    parse_grid,
    random_neighbours,
    recall_at_k,
    tune_lsh,
)

K = 10


def clustered_unit_vectors(n: int, *, dim: int = 32, clusters: int = 16, latent: int = 4, spread: float = 0.35,
                           noise: float = 0.03, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(track_ids 1..n, unit vectors float32 (n, dim), genre per track)``.

    A genre is a random direction plus ``latent`` directions of its own along which its
    tracks vary (``spread``), plus small isotropic ``noise``.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    bases = rng.standard_normal((clusters, latent, dim)) / np.sqrt(latent)
    genres = rng.integers(0, clusters, n)
    offsets = np.einsum("nl,nld->nd", rng.standard_normal((n, latent)) * spread, bases[genres]) * 0.5
    vectors = centres[genres] + offsets + noise * rng.standard_normal((n, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.arange(1, n + 1, dtype=np.int64), vectors.astype(np.float32), genres


def embeddings_frame(ids, vectors) -> pd.DataFrame:
    return pd.DataFrame({"track_id": ids, "embedding": [list(map(float, v)) for v in vectors]})


@pytest.fixture(scope="module")
def clustered():
    ids, vectors, genres = clustered_unit_vectors(1500, seed=3)
    return build_catalogue(embeddings_frame(ids, vectors)), dict(zip(ids.tolist(), genres.tolist()))


@pytest.fixture(scope="module")
def clustered_df(spark, clustered):
    df = catalogue_frame(spark, clustered[0]).cache()
    yield df
    df.unpersist()


# -- exact neighbours ---------------------------------------------------------------------


def _unit_circle(degrees) -> pd.DataFrame:
    radians = np.radians(degrees)
    return pd.DataFrame({"track_id": range(1, len(degrees) + 1),
                         "embedding": [[math.cos(a), math.sin(a)] for a in radians]})


def test_exact_neighbours_of_a_hand_made_case(spark):
    # Tracks 1..5 at 0, 10, 30, 90, 180 degrees: chord length 2 sin(angle / 2).
    df = spark.createDataFrame(_unit_circle([0, 10, 30, 90, 180]), "track_id long, embedding array<float>")
    rows = exact_neighbours(df, k=2).orderBy("track_id", "rank").collect()
    got = {(r.track_id, r["rank"]): (r.neighbour_id, round(r.distance, 4)) for r in rows}
    chord = lambda deg: round(2 * math.sin(math.radians(deg) / 2), 4)  # noqa: E731
    assert got[(1, 1)] == (2, chord(10)) and got[(1, 2)] == (3, chord(30))
    assert got[(3, 1)] == (2, chord(20)) and got[(3, 2)] == (1, chord(30))
    assert got[(5, 1)] == (4, chord(90)) and got[(5, 2)] == (3, chord(150))
    assert len(rows) == 10  # 5 tracks x 2, nobody its own neighbour


def test_identical_tracks_are_each_others_nearest_and_ties_break_by_id():
    vectors = np.array([[1, 0], [1, 0], [0, 1], [-1, 0]], dtype=np.float32)
    top = exact_top_k(vectors, np.array([7, 3, 5, 9]), k=2)
    lists = neighbour_lists(top)
    assert lists[7] == [3, 5] and lists[3] == [7, 5]  # identical twin first, never itself
    assert lists[5] == [3, 7]  # 3 and 7 tie at sqrt(2): smaller id first
    assert top.loc[top.track_id == 7, "distance"].iloc[0] == pytest.approx(0.0)


# -- recall and baselines -----------------------------------------------------------------


def test_recall_is_the_share_of_exact_neighbours_found():
    exact = {1: [2, 3, 4], 2: [1, 3, 6], 3: [1, 2, 4]}
    approx = {1: [2, 3, 9], 2: [5, 1, 7]}  # 3 was not answered at all: counts 0
    assert recall_at_k(approx, exact, 3) == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert recall_at_k(exact, exact, 3) == 1.0
    assert recall_at_k({1: [4, 3, 2]}, {1: [2, 3, 4]}, 3) == 1.0  # order inside the top k does not matter


def test_random_neighbours_are_distinct_others_with_chance_genre_precision():
    ids = np.arange(1, 4001)
    lists = random_neighbours(ids, k=K, seed=1)
    assert all(len(v) == K and len(set(v)) == K and t not in v for t, v in lists.items())
    genres = {int(t): int(t) % 16 for t in ids}
    assert genre_precision(lists, genres, K) == pytest.approx(1 / 16, abs=0.01)


# -- input checks -------------------------------------------------------------------------


def test_bad_tracks_are_left_out_with_reasons_and_bad_inputs_raise():
    rows = pd.DataFrame({"track_id": [1, 2, 3, 4, 5, 6],
                         "embedding": [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [float("nan"), 1.0], [3.0, 4.0], None]})
    catalogue = build_catalogue(rows)
    assert catalogue.ids.tolist() == [1, 2]
    assert {reason: info["examples"] for reason, info in catalogue.skipped.items()} == {
        REASON_ZERO_VECTOR: [3], REASON_NON_FINITE: [4], REASON_NOT_UNIT_LENGTH: [5], "missing_embedding": [6]}
    with pytest.raises(SimilarTracksInputError) as too_few:
        check_catalogue_size(catalogue, K)
    assert too_few.value.reason == REASON_TOO_FEW_TRACKS and "k=10" in str(too_few.value)

    duplicated = pd.DataFrame({"track_id": [1, 1], "embedding": [[1.0, 0.0], [0.0, 1.0]]})
    with pytest.raises(SimilarTracksInputError) as dup:
        build_catalogue(duplicated)
    assert dup.value.reason == REASON_DUPLICATE_TRACK_IDS and "[1]" in dup.value.detail
    mixed = pd.DataFrame({"track_id": [1, 2], "embedding": [[1.0, 0.0], [0.0, 0.0, 1.0]]})
    with pytest.raises(SimilarTracksInputError, match=REASON_MIXED_DIMENSIONS):
        build_catalogue(mixed)


def test_grid_text_gives_every_combination_and_rejects_nonsense():
    grid = parse_grid("bucket_lengths=0.1,0.2; tables=4,8 ;hashes=3")
    assert [p.label for p in grid] == ["b0.1:t4:h3", "b0.1:t8:h3", "b0.2:t4:h3", "b0.2:t8:h3"]
    assert parse_grid("bucket_lengths=1;tables=2") == [LshParams(1.0, 2, 1)]
    for bad in ("tables=4", "bucket_lengths=x;tables=4", "bucket_lengths=0.1;tables=0", "bucket_lengths=-1;tables=2",
                "bucket_lengths=0.1;tables=4;depth=2"):
        with pytest.raises(SimilarTracksInputError) as error:
            parse_grid(bad)
        assert error.value.reason == REASON_BAD_GRID


# -- choosing a configuration ---------------------------------------------------------------


def _trial(label_tables: int, recall: float, pairs: int, seconds: float) -> Trial:
    return Trial(LshParams(0.1, label_tables, 3), recall, seconds, pairs, pairs / 1e6)


def test_the_cheapest_configuration_meeting_the_target_wins_not_the_best_recall():
    trials = [_trial(32, 1.00, 90_000, 9.0), _trial(8, 0.96, 20_000, 4.0), _trial(4, 0.90, 5_000, 1.0),
              _trial(16, 0.97, 20_000, 3.0)]
    chosen, met = choose_trial(trials, target_recall=0.95)
    assert met and chosen.params.num_hash_tables == 16  # same comparisons as t8, faster


def test_when_nothing_meets_the_target_the_best_recall_is_taken_and_flagged():
    trials = [_trial(4, 0.80, 5_000, 1.0), _trial(8, 0.90, 20_000, 4.0)]
    chosen, met = choose_trial(trials, target_recall=0.95)
    assert not met and chosen.recall == 0.90


# -- LSH on Spark ---------------------------------------------------------------------------


@pytest.mark.slow
def test_tuning_picks_the_cheapest_config_that_reaches_recall_095(clustered_df, clustered):
    catalogue, genres = clustered
    # Same seed: the 32-table model's first 16 tables are the 16-table model's, so it
    # compares a superset and can only be dearer; 16 tables already suffice here.
    grid = [LshParams(0.2, 32, 3), LshParams(0.2, 16, 3), LshParams(0.2, 4, 3)]
    tuning = tune_lsh(clustered_df, grid=grid, k=K, sample_fraction=0.2, seed=5, track_genres=genres,
                      catalogue=catalogue)
    by_label = {t.params.label: t for t in tuning.trials}
    cheap, dear, weak = by_label["b0.2:t16:h3"], by_label["b0.2:t32:h3"], by_label["b0.2:t4:h3"]
    assert weak.recall < 0.95 and weak.candidate_pairs < cheap.candidate_pairs  # cheapest, but not good enough
    assert cheap.recall >= 0.95 and cheap.candidate_pairs < dear.candidate_pairs
    assert tuning.target_met and tuning.chosen == cheap
    # At 1,500 tracks LSH still compares a good share of what brute force does; it pays at scale.
    assert cheap.work_fraction < 0.75 and cheap.work_fraction < dear.work_fraction
    assert len(tuning.queries) == 300 and tuning.exact[tuning.exact.track_id.isin(tuning.queries)].shape[0] == 3000
    assert cheap.genre_precision > 0.9


@pytest.mark.slow
def test_lsh_neighbours_of_every_track_match_exact_and_genres(clustered_df, clustered):
    catalogue, genres = clustered
    index = fit_lsh(clustered_df, bucket_length=0.2, num_hash_tables=16, hashes_per_table=3, seed=5)
    approx = approx_neighbours(index, clustered_df, k=K).toPandas()
    exact = exact_top_k(catalogue.vectors, catalogue.ids, k=K)

    assert approx.groupby("track_id").size().eq(K).all() and approx.track_id.nunique() == catalogue.size
    assert (approx.track_id != approx.neighbour_id).all()
    assert recall_at_k(approx, exact, K) >= 0.95
    merged = approx.merge(exact, on=["track_id", "neighbour_id"], suffixes=("", "_exact"))
    assert np.allclose(merged.distance, merged.distance_exact, atol=1e-5)  # distances are exact, only candidates approximate
    lsh_precision = genre_precision(neighbour_lists(approx), genres, K)
    random_precision = genre_precision(random_neighbours(catalogue.ids, k=K, seed=1), genres, K)
    assert lsh_precision > 0.9 and random_precision < 0.15


# -- the job against MongoDB ----------------------------------------------------------------


@pytest.fixture()
def job_db(mongo_db, monkeypatch):
    """``get_settings()`` names the test database while the test runs; restored afterwards."""
    monkeypatch.setenv("FMA_MONGO_DB", mongo_db.name)
    get_settings.cache_clear()
    yield mongo_db
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.slow
def test_main_writes_similar_tracks_model_runs_and_model_idempotently(spark, job_db, tmp_path, monkeypatch, capsys):
    ids, vectors, genres = clustered_unit_vectors(600, seed=11)
    docs = embeddings_frame(ids, vectors).assign(model_version="emb-v1").to_dict("records")
    docs.append({"track_id": 10_000, "embedding": [0.0] * 32, "model_version": "emb-v1"})  # a track at the centre
    job_db[Collection.TRACK_FEATURES].insert_many(docs)
    job_db[Collection.TRACKS].insert_many(
        [{"track_id": int(t), "top_genre_id": int(g) + 1} for t, g in zip(ids, genres)])
    monkeypatch.setattr(SparkSession, "stop", lambda self: None)  # the shared test session outlives main
    argv = ["--k", str(K), "--grid", "bucket_lengths=0.05,0.5;tables=8;hashes=3", "--run-id", "run-1",
            "--model-version", "v1", "--sample-fraction", "0.5", "--model-dir", str(tmp_path / "lsh")]

    counts = []
    for _ in range(2):
        assert job.main(argv) == 0
        counts.append((job_db[Collection.SIMILAR_TRACKS].count_documents({}),
                       job_db[Collection.MODEL_RUNS].count_documents({})))
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert counts == [(600, 5), (600, 5)]  # 2 trials + final + 2 baselines, upserted again
    doc = job_db[Collection.SIMILAR_TRACKS].find_one({"track_id": 1})
    assert doc["k"] == K and doc["method"] == "lsh" and doc["model_version"] == "v1"
    neighbours = doc["neighbours"]
    assert len(neighbours) == K and [n["distance"] for n in neighbours] == sorted(n["distance"] for n in neighbours)
    assert all(n["score"] == pytest.approx(1 - n["distance"] ** 2 / 2) for n in neighbours)
    assert job_db[Collection.SIMILAR_TRACKS].count_documents({"track_id": 10_000}) == 0

    runs = {d["run_id"]: d for d in job_db[Collection.MODEL_RUNS].find({}, {"_id": 0})}
    assert set(runs) == {"run-1:lsh:b0.05:t8:h3", "run-1:lsh:b0.5:t8:h3", "run-1:lsh:final",
                         "run-1:random_neighbours", "run-1:exact_knn"}
    trial = runs["run-1:lsh:b0.5:t8:h3"]
    assert trial["kind"] == "trial" and trial["model"] == "lsh"
    assert trial["params"]["bucket_length"] == 0.5 and set(trial["metrics"]) >= {
        "recall_at_10", "seconds", "genre_precision_at_10"}
    final = runs["run-1:lsh:final"]
    assert final["kind"] == "final" and final["params"]["bucket_length"] == 0.5 and final["champion"]
    assert final["metrics"]["recall_at_10"] >= 0.95 and final["metrics"]["target_met"]
    assert final["metrics"]["skipped_tracks"]["zero_vector"]["examples"] == [10_000]
    baseline = runs["run-1:random_neighbours"]
    assert baseline["kind"] == "baseline" and baseline["metrics"]["genre_precision_at_10"] < 0.2
    assert final["metrics"]["genre_precision_at_10"] > 0.9

    assert summary["chosen"]["bucket_length"] == 0.5 and summary["recall_at_10"] >= 0.95
    assert summary["genre_precision_at_10"] > 4 * summary["random_genre_precision_at_10"]
    assert summary["exact_seconds_measured"] and summary["lsh_seconds"] > 0
    assert (tmp_path / "lsh" / CURRENT_FILE).read_text().strip() == "v1"
    index, metadata = load_current_lsh(tmp_path / "lsh")
    assert metadata["params"] == {"bucket_length": 0.5, "num_hash_tables": 8, "hashes_per_table": 3}
    assert (tmp_path / "lsh" / "v1" / METADATA_FILE).is_file()
    assert index.model.getNumHashTables() == 24
