"""Bootstrap intervals over listeners and the paired gain behind the promotion rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fma_platform.model_runs import CI_CONFIDENCE, CI_RESAMPLES, Metric, interval_key, metric_interval
from spark_jobs.metrics import (
    Bootstrap,
    Interval,
    MetricInputError,
    accuracy_by_user,
    bootstrap_means,
    gain_interval,
    hit_rate_at_k,
    listener_intervals,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_report,
    recall_at_k,
)

NDCG = Metric.NDCG_AT_K.value


def test_per_user_accuracy_averages_to_the_metrics():
    recs = {"a": [1, 2, 3, 4, 5], "b": [9, 8], "c": [7]}
    rel = {"a": {2, 5, 9}, "b": {8, 1}, "d": {4}}  # d: no list, scores 0; c: nothing held out, ignored
    users, values = accuracy_by_user(recs, rel, k=5)
    assert users == ("a", "b", "d")
    for name, metric in ((Metric.PRECISION_AT_K, precision_at_k), (Metric.RECALL_AT_K, recall_at_k),
                         (Metric.NDCG_AT_K, ndcg_at_k), (Metric.MAP_AT_K, map_at_k),
                         (Metric.HIT_RATE_AT_K, hit_rate_at_k)):
        assert values[name].mean() == pytest.approx(metric(recs, rel, k=5))
    assert values[Metric.HIT_RATE_AT_K].tolist() == [1.0, 1.0, 0.0]


def test_interval_of_a_hit_rate_matches_the_normal_approximation():
    hits = np.zeros(400)
    hits[:120] = 1.0  # p = 0.3 over 400 listeners: standard error sqrt(0.3 * 0.7 / 400) = 0.0229
    interval = listener_intervals({"hit": hits}, Bootstrap(resamples=2000, seed=3))["hit"]
    assert interval.estimate == pytest.approx(0.3)
    half_width = 1.96 * math.sqrt(0.3 * 0.7 / 400)
    assert interval.low == pytest.approx(0.3 - half_width, abs=0.01)
    assert interval.high == pytest.approx(0.3 + half_width, abs=0.01)


def test_intervals_are_reproducible_and_narrow_with_more_listeners():
    rng = np.random.default_rng(0)
    few, many = rng.random(50), rng.random(5000)
    first = listener_intervals({"m": few}, Bootstrap(seed=1))["m"]
    assert listener_intervals({"m": few}, Bootstrap(seed=1))["m"] == first  # fixed seed: same interval
    assert first.low < first.estimate < first.high
    wide = listener_intervals({"m": many}, Bootstrap(seed=1))["m"]
    assert (wide.high - wide.low) < (first.high - first.low) / 5  # ~sqrt(100) narrower
    constant = listener_intervals({"m": np.full(30, 0.25)})["m"]
    assert constant == Interval(0.25, 0.25, 0.25)


def test_listeners_a_metric_does_not_count_are_left_out_of_its_resampled_means():
    values = np.array([[1.0, np.nan], [0.0, 4.0], [1.0, np.nan]])
    means = bootstrap_means(values, Bootstrap(resamples=500, seed=2))
    assert means.shape == (500, 2)
    assert set(np.unique(means[:, 1])) <= {0.0, 4.0}  # 0 only when listener 2 was never drawn
    assert np.all((means[:, 0] >= 0) & (means[:, 0] <= 1))
    assert bootstrap_means(np.zeros((0, 3)), Bootstrap(resamples=4)).tolist() == [[0.0] * 3] * 4


def test_large_listener_counts_are_drawn_in_blocks_with_the_same_result():
    values = np.random.default_rng(5).random((3000, 1))
    small_blocks = bootstrap_means(values, Bootstrap(resamples=3000, seed=9))
    assert small_blocks.shape == (3000, 1)  # 3000 x 3000 draws exceed one block: several blocks
    assert small_blocks.mean() == pytest.approx(values.mean(), abs=0.002)


@pytest.mark.parametrize("bad", [dict(resamples=0), dict(resamples=2.5), dict(confidence=1.0),
                                 dict(confidence=0.0), dict(resamples=True)])
def test_bad_bootstrap_settings_raise(bad):
    with pytest.raises(MetricInputError):
        Bootstrap(**bad)


def _lists(rng: np.random.Generator, relevant: dict, hit_share: float) -> dict:
    """Lists whose first item is a held-out track for about ``hit_share`` of the listeners."""
    return {user: ([min(items)] if rng.random() < hit_share else []) + [100_000 + i for i in range(9)]
            for user, items in relevant.items()}


def test_paired_gain_within_noise_and_clearly_better():
    rng = np.random.default_rng(11)
    relevant = {f"u{i}": {i * 10 + 1, i * 10 + 2} for i in range(300)}
    champion = _lists(rng, relevant, 0.30)
    same = gain_interval(champion, champion, relevant, k=10)
    assert same == Interval(0.0, 0.0, 0.0)
    # a candidate that finds a hit for 12 more listeners and loses 9 (net +3 of 300): noise
    hit = [user for user in relevant if champion[user][0] in relevant[user]]
    missed = [user for user in relevant if user not in hit]
    noisy = {**champion, **{user: champion[user][1:] for user in hit[:9]},
             **{user: [min(relevant[user])] + champion[user][:9] for user in missed[:12]}}
    within = gain_interval(noisy, champion, relevant, k=10)
    assert within.estimate > 0 and within.low < 0.0 < within.high and not within.excludes_zero_from_above()
    better = gain_interval(_lists(rng, relevant, 0.60), champion, relevant, k=10)
    assert better.excludes_zero_from_above() and better.estimate > 0.15
    worse = gain_interval(champion, _lists(rng, relevant, 0.60), relevant, k=10)
    assert worse.high < 0.0
    with pytest.raises(MetricInputError, match="metric must be one of"):
        gain_interval(champion, champion, relevant, metric=Metric.NOVELTY_AT_K.value)


def test_ranking_report_stores_an_interval_beside_each_listener_metric():
    recs = {"a": [1, 2, 3, 4, 5], "c": [7, 8], "d": [2, 9]}
    rel = {"a": {2, 5, 9}, "b": {7}, "d": {9}}
    popularity = {item: item for item in range(1, 10)}
    embeddings = {item: np.array([1.0, item / 10]) for item in range(1, 10)}
    report = ranking_report(recs, rel, catalogue=range(1, 11), item_popularity=popularity, k=5,
                            embeddings=embeddings, bootstrap=Bootstrap(resamples=300, seed=4))
    for metric in (Metric.PRECISION_AT_K, Metric.RECALL_AT_K, Metric.NDCG_AT_K, Metric.MAP_AT_K,
                   Metric.HIT_RATE_AT_K, Metric.NOVELTY_AT_K, Metric.INTRA_LIST_DIVERSITY_AT_K):
        low, high = metric_interval(report, metric)
        assert low <= report[metric] <= high, metric
    assert metric_interval(report, Metric.CATALOGUE_COVERAGE_AT_K) is None  # catalogue-level: no interval
    assert report[CI_CONFIDENCE] == 0.95 and report[CI_RESAMPLES] == 300
    assert report[interval_key(NDCG, "ci_low")] == report["ndcg_at_k_ci_low"]
    plain = ranking_report(recs, rel, catalogue=range(1, 11), item_popularity=popularity, k=5, bootstrap=None)
    assert metric_interval(plain, NDCG) is None and CI_RESAMPLES not in plain
    assert plain[NDCG] == report[NDCG]
    with pytest.raises(ValueError, match="bound must be"):
        interval_key(NDCG, "low")
