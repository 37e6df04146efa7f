"""Metrics per segment: which listeners are cold, regular or heavy, and how models serve new tracks.

Pure cases with known answers first (segment of known listeners, coverage of known lists),
then the training job's split and baselines on simulated listeners in the shared Spark
session: ALS and most-popular cannot reach a track nobody played in training, the content
model can (the segment exists to show exactly that).
"""

from __future__ import annotations

import pandas as pd
import pytest

from fma_platform.model_runs import CI_HIGH, CI_LOW, COLD, HEAVY, NEW_TRACKS, REGULAR, Metric, interval_key
from spark_jobs.metrics import (
    Bootstrap,
    MetricInputError,
    SegmentRule,
    listener_segments,
    new_tracks,
    ranking_report,
    segment_key,
    segment_report,
)

NDCG, HIT, COVERAGE = Metric.NDCG_AT_K.value, Metric.HIT_RATE_AT_K.value, Metric.CATALOGUE_COVERAGE_AT_K.value
BOOTSTRAP = Bootstrap(resamples=200, seed=1)


def test_known_listeners_fall_in_their_segments():
    counts = {f"u{i}": i for i in range(1, 101)}  # 1..100 events
    segments, heavy_min = listener_segments(counts)
    assert [u for u, s in segments.items() if s == COLD] == ["u1", "u2", "u3", "u4", "u5"]  # <= 5 events
    assert [u for u, s in segments.items() if s == HEAVY] == [f"u{i}" for i in range(91, 101)]  # top decile
    assert heavy_min == 91
    assert sum(s == REGULAR for s in segments.values()) == 85
    # Everyone alike: nobody is above the 90th percentile, nobody is heavy.
    assert listener_segments({"a": 40, "b": 40}) == ({"a": REGULAR, "b": REGULAR}, None)
    # The heavy threshold never reaches into the cold range.
    assert listener_segments({"a": 1, "b": 2, "c": 3}, rule=SegmentRule(cold_max_events=5))[0] == {
        "a": COLD, "b": COLD, "c": COLD}
    with pytest.raises(MetricInputError, match="negative"):
        listener_segments({"a": -1})
    with pytest.raises(MetricInputError, match="heavy_quantile"):
        SegmentRule(heavy_quantile=1.0)


def test_each_segment_is_the_ranking_report_of_its_listeners():
    catalogue = list(range(1, 41))
    popularity = {t: 10 for t in range(1, 31)}  # 31..40 never played in training: new tracks
    assert new_tracks(catalogue, popularity) == set(range(31, 41))
    training_events = {"cold": 3, **{f"r{i}": 20 + i for i in range(9)}, "heavy": 500}
    relevant = {"cold": {1, 31}, "r0": {2}, "r1": {32, 33}, "heavy": {4}}
    lists = {"cold": [31, 5, 6], "r0": [7, 8, 2], "r1": [9, 10], "heavy": [4, 32, 11]}
    report = segment_report(lists, relevant, training_events=training_events, catalogue=catalogue,
                            item_popularity=popularity, k=3, bootstrap=BOOTSTRAP)
    cold_alone = ranking_report({"cold": lists["cold"]}, {"cold": relevant["cold"]}, catalogue=catalogue,
                                item_popularity=popularity, k=3, bootstrap=BOOTSTRAP)
    assert report[segment_key(COLD, NDCG)] == cold_alone[NDCG]
    assert report[segment_key(COLD, "n_users")] == 1
    assert report[segment_key(REGULAR, "n_users")] == 2 and report[segment_key(HEAVY, "n_users")] == 1
    assert report[segment_key(HEAVY, HIT)] == 1.0 and report[segment_key(REGULAR, HIT)] == 0.5
    assert report[segment_key(HEAVY, "min_events")] == 500
    # Regular coverage: the union of r0's and r1's lists, 5 of 40 tracks.
    assert report[segment_key(REGULAR, COVERAGE)] == pytest.approx(5 / 40)
    low = report[segment_key(REGULAR, interval_key(HIT, CI_LOW))]
    assert low == report[interval_key(segment_key(REGULAR, HIT), CI_LOW)] == 0.0
    assert report[segment_key(REGULAR, interval_key(HIT, CI_HIGH))] == 1.0


def test_new_tracks_are_scored_against_held_out_new_tracks_only():
    catalogue = list(range(1, 41))
    popularity = {t: 10 for t in range(1, 31)}
    relevant = {"cold": {1, 31}, "r1": {32, 33}, "heavy": {4}}  # heavy has no new track held out
    lists = {"cold": [31, 5, 6], "r1": [9, 10, 34], "heavy": [4, 32, 11]}
    report = segment_report(lists, relevant, training_events={"cold": 3, "r1": 30, "heavy": 40},
                            catalogue=catalogue, item_popularity=popularity, k=3, bootstrap=BOOTSTRAP)
    assert report[segment_key(NEW_TRACKS, "n_users")] == 2  # cold (31) and r1 (32, 33)
    assert report[segment_key(NEW_TRACKS, HIT)] == 0.5  # cold found 31, r1 found neither
    assert report[segment_key(NEW_TRACKS, Metric.RECALL_AT_K.value)] == pytest.approx((1.0 + 0.0) / 2)
    # New tracks shown to anybody: 31, 34 and 32 (heavy's list counts too) of the 10.
    assert report[segment_key(NEW_TRACKS, COVERAGE)] == pytest.approx(3 / 10)
    assert report[segment_key(NEW_TRACKS, "n_tracks")] == 10


def test_unknown_segment_names_are_refused():
    with pytest.raises(MetricInputError, match="segment must be one of"):
        segment_key("warm", NDCG)


# --- the training job's split and baselines (shared Spark session) ----------------------------

@pytest.fixture(scope="module")
def evaluated(spark):
    """Split + every baseline's per-segment report on 400 simulated listeners (train >= 1 track)."""
    from simulator import synthetic_catalogue
    from spark_jobs.recommend.events import EVENT_COLUMNS, event_schema
    from spark_jobs.recommend.recommenders import recommendation_lists
    from spark_jobs.recommend.training import (
        TrainingOptions, baseline_recommendations, evaluate_lists, fit_and_recommend, make_split,
    )
    from tests.spark_jobs.recommend.conftest import simulated_documents, tracks_of

    catalogue = synthetic_catalogue(tracks=600, genres=8)
    documents = pd.DataFrame(simulated_documents(catalogue, listeners=400, events=24_000, seed=5))
    events = spark.createDataFrame(documents[list(EVENT_COLUMNS)], schema=event_schema()).cache()
    tracks = tracks_of(catalogue)
    options = TrainingOptions(job_run_id="segments", grid=(), min_train_tracks=1, bootstrap=BOOTSTRAP)
    split = make_split(events, tracks=tracks, options=options)
    factors, items, als = fit_and_recommend(split, {"rank": 8, "regParam": 0.1, "alpha": 10.0, "maxIter": 5},
                                            tracks=tracks, options=options)
    lists = {"als": recommendation_lists(als)}
    lists.update({name: recommendation_lists(frame) for name, frame in baseline_recommendations(
        split, tracks=tracks, items=items, factors=factors, options=options).items()})
    reports = {name: evaluate_lists(found, split, tracks=tracks, k=10, embeddings=tracks.embedding_map(),
                                    bootstrap=BOOTSTRAP, by_segment=True) for name, found in lists.items()}
    return documents, split, reports


def test_training_events_are_each_listeners_events_before_the_cut_off(evaluated):
    documents, split, _ = evaluated
    assert sum(split.training_events.values()) < len(documents)  # the holdout is left out
    everything = documents.groupby("user_id").size()
    assert all(0 < count <= everything[user] for user, count in split.training_events.items())
    tracks = documents.groupby("user_id")["track_id"].nunique()
    train_only = tracks[tracks < 5 + 1].index  # too few tracks to hold out 5 (and train on 1): all their events
    assert len(train_only) > 0
    assert all(split.training_events[user] == everything[user] for user in train_only)


def test_every_segment_is_populated_and_adds_up(evaluated):
    _, split, reports = evaluated
    als = reports["als"]
    counts = [als[segment_key(s, "n_users")] for s in (COLD, REGULAR, HEAVY)]
    assert all(count > 0 for count in counts), counts
    assert sum(counts) == als["n_users"] == len(split.relevant)
    assert als[segment_key(NEW_TRACKS, "n_users")] > 0 and als[segment_key(NEW_TRACKS, "n_tracks")] > 0


def test_only_the_content_models_recommend_new_tracks(evaluated):
    _, _, reports = evaluated
    new_hits = {name: report[segment_key(NEW_TRACKS, HIT)] for name, report in reports.items()}
    new_coverage = {name: report[segment_key(NEW_TRACKS, COVERAGE)] for name, report in reports.items()}
    # No training play, no ALS factor and no popularity: those models never show a new track.
    assert new_coverage["als"] == new_coverage["most_popular"] == 0.0
    assert new_hits["als"] == new_hits["most_popular"] == 0.0
    assert new_coverage["content"] > 0.0 and new_coverage["random"] > 0.0
    # Heavy listeners are served at least as well as cold ones by ALS (more history to learn from).
    als = reports["als"]
    assert als[segment_key(HEAVY, NDCG)] > als[segment_key(COLD, NDCG)]
