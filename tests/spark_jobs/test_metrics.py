"""Ranking metrics: hand-computed cases and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fma_platform.errors import PlatformError
from fma_platform.model_runs import RECOMMENDATION_METRICS, Metric
from spark_jobs.metrics import (
    MetricInputError,
    catalogue_coverage_at_k,
    count_unknown_items,
    genre_precision_at_k,
    hit_rate_at_k,
    intra_list_diversity_at_k,
    map_at_k,
    ndcg_at_k,
    novelty_at_k,
    precision_at_k,
    ranking_report,
    recall_at_k,
)

ACCURACY = {
    "precision_at_k": precision_at_k,
    "recall_at_k": recall_at_k,
    "ndcg_at_k": ndcg_at_k,
    "map_at_k": map_at_k,
    "hit_rate_at_k": hit_rate_at_k,
}


def accuracy(recommendations, relevant, k):
    return {name: metric(recommendations, relevant, k=k) for name, metric in ACCURACY.items()}


# --- accuracy: hand-computed -------------------------------------------------------------

def test_brief_example_at_5():
    # recs [1,2,3,4,5], relevant {2,5,9}: hits at positions 2 and 5.
    recs, rel = {"u": [1, 2, 3, 4, 5]}, {"u": {2, 5, 9}}
    got = accuracy(recs, rel, k=5)
    assert got["precision_at_k"] == pytest.approx(2 / 5)
    assert got["recall_at_k"] == pytest.approx(2 / 3)
    # DCG = 1/log2(2+1) + 1/log2(5+1); ideal: min(5, 3) = 3 hits at the top = 1 + 1/log2(3) + 1/log2(4)
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert got["ndcg_at_k"] == pytest.approx(dcg / ideal)
    # AP = (P@2 + P@5) / min(5, 3) = (1/2 + 2/5) / 3 = 0.3
    assert got["map_at_k"] == pytest.approx(0.3)
    assert got["hit_rate_at_k"] == 1.0


def test_brief_example_at_3_ignores_items_past_k():
    # top 3 = [1,2,3]: one hit at position 2.
    got = accuracy({"u": [1, 2, 3, 4, 5]}, {"u": {2, 5, 9}}, k=3)
    assert got["precision_at_k"] == pytest.approx(1 / 3)
    assert got["recall_at_k"] == pytest.approx(1 / 3)
    # DCG = 1/log2(3); ideal = 1 + 1/log2(3) + 1/log2(4) (min(3, 3) = 3)
    assert got["ndcg_at_k"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3) + 0.5))
    # AP = P@2 / min(3, 3) = (1/2) / 3
    assert got["map_at_k"] == pytest.approx(1 / 6)


def test_perfect_ranking_scores_one():
    got = accuracy({"u": [2, 5, 9, 1]}, {"u": {2, 5, 9}}, k=3)
    assert got == pytest.approx({name: 1.0 for name in ACCURACY})


def test_perfect_ranking_with_k_above_relevant_count():
    # k=5, 3 relevant all on top: P = 3/5, but recall, NDCG and MAP (divided by min(5, 3)) are 1.
    got = accuracy({"u": [2, 5, 9, 1, 4]}, {"u": {2, 5, 9}}, k=5)
    assert got == pytest.approx({"precision_at_k": 0.6, "recall_at_k": 1.0, "ndcg_at_k": 1.0,
                                 "map_at_k": 1.0, "hit_rate_at_k": 1.0})


def test_perfect_top_k_when_more_relevant_than_k():
    # relevant {1..6}, k=2, top [1,2]: NDCG ideal uses min(2, 6) = 2 hits; AP = (1/1 + 2/2) / 2 = 1.
    got = accuracy({"u": [1, 2]}, {"u": set(range(1, 7))}, k=2)
    assert got["ndcg_at_k"] == pytest.approx(1.0)
    assert got["map_at_k"] == pytest.approx(1.0)
    assert got["recall_at_k"] == pytest.approx(2 / 6)


def test_worst_ranking_scores_zero():
    got = accuracy({"u": [1, 3, 4]}, {"u": {2}}, k=3)
    assert got == {name: 0.0 for name in ACCURACY}


def test_short_list_counts_as_padded_with_misses():
    # one recommendation, relevant: P@5 = 1/5; recall, NDCG (ideal min(5, 1) = 1) and AP are 1.
    got = accuracy({"u": [2]}, {"u": {2}}, k=5)
    assert got == pytest.approx({"precision_at_k": 0.2, "recall_at_k": 1.0, "ndcg_at_k": 1.0,
                                 "map_at_k": 1.0, "hit_rate_at_k": 1.0})


def test_averages_over_users_with_held_out_items_only():
    recs = {
        "a": [1, 2, 3, 4, 5],  # P@5 = 0.4 (brief example)
        "c": [7, 8],           # no held-out items: ignored
    }
    rel = {
        "a": {2, 5, 9},
        "b": {7},              # no recommendations: scores 0
        "d": set(),            # empty holdout: ignored
    }
    # mean over a and b: (0.4 + 0) / 2; hit rate (1 + 0) / 2
    assert precision_at_k(recs, rel, k=5) == pytest.approx(0.2)
    assert hit_rate_at_k(recs, rel, k=5) == pytest.approx(0.5)
    assert map_at_k(recs, rel, k=5) == pytest.approx(0.3 / 2)


def test_empty_inputs_give_zero_not_nan():
    assert accuracy({}, {}, k=10) == {name: 0.0 for name in ACCURACY}
    assert accuracy({"u": [1, 2]}, {"u": set()}, k=10) == {name: 0.0 for name in ACCURACY}


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3"])
def test_bad_k_raises(k):
    with pytest.raises(MetricInputError, match="k must be"):
        precision_at_k({"u": [1]}, {"u": {1}}, k=k)


def test_repeated_item_raises_naming_the_user():
    # the repeat is past k: the list is still wrong, so it still raises.
    with pytest.raises(MetricInputError, match="'bob'.*item 3") as caught:
        ndcg_at_k({"ann": [1, 2], "bob": [3, 4, 3]}, {"ann": {1}}, k=2)
    assert caught.value.user == "bob" and isinstance(caught.value, PlatformError)


# --- beyond accuracy ---------------------------------------------------------------------

def test_catalogue_coverage():
    # top-2 lists: {1, 2} and {3, 5} -> 4 of 10 catalogue items
    recs = {"u1": [1, 2, 3, 4], "u2": [3, 5, 6]}
    assert catalogue_coverage_at_k(recs, catalogue=range(1, 11), k=2) == pytest.approx(0.4)
    # top-3: {1, 2, 3, 5, 6} -> 5 of 10
    assert catalogue_coverage_at_k(recs, catalogue=range(1, 11), k=3) == pytest.approx(0.5)
    assert catalogue_coverage_at_k({}, catalogue=[], k=3) == 0.0


def test_coverage_rejects_items_outside_the_catalogue():
    with pytest.raises(MetricInputError, match="item 42") as caught:
        catalogue_coverage_at_k({"u1": [1], "u2": [42]}, catalogue={1, 2}, k=2)
    assert caught.value.user == "u2"


EMBEDDINGS = {1: np.array([1.0, 0.0]), 2: np.array([0.0, 1.0]), 3: np.array([1.0, 1.0]), 4: np.array([-1.0, 0.0])}


def test_diversity_cosine_and_euclidean():
    recs = {"u1": [1, 2], "u2": [1, 4]}
    # cosine distance: (1,2) orthogonal -> 1; (1,4) opposite -> 2; mean over users 1.5
    assert intra_list_diversity_at_k(recs, embeddings=EMBEDDINGS, k=2) == pytest.approx(1.5)
    # euclidean: |(1,-1)| = sqrt(2); |(2,0)| = 2
    euclidean = intra_list_diversity_at_k(recs, embeddings=EMBEDDINGS, k=2, distance="euclidean")
    assert euclidean == pytest.approx((math.sqrt(2) + 2) / 2)


def test_diversity_averages_all_pairs_of_a_list():
    # pairs (1,2): 1; (1,3) and (2,3): 1 - 1/sqrt(2) each -> mean (3 - sqrt(2)) / 3
    got = intra_list_diversity_at_k({"u": [1, 2, 3]}, embeddings=EMBEDDINGS, k=3)
    assert got == pytest.approx((3 - math.sqrt(2)) / 3)


def test_diversity_skips_and_counts_items_without_embedding():
    recs = {"u1": [1, 99, 2], "u2": [3, 98]}  # u2 has one embedded item: no pairs, left out
    assert intra_list_diversity_at_k(recs, embeddings=EMBEDDINGS, k=3) == pytest.approx(1.0)
    assert count_unknown_items(recs, known=EMBEDDINGS, k=3) == 2
    assert intra_list_diversity_at_k({"u": [99]}, embeddings=EMBEDDINGS, k=3) == 0.0


def test_diversity_input_errors():
    with pytest.raises(MetricInputError, match="zero embedding"):
        intra_list_diversity_at_k({"u": [1, 0]}, embeddings={**EMBEDDINGS, 0: np.zeros(2)}, k=2)
    with pytest.raises(MetricInputError, match="one length"):
        intra_list_diversity_at_k({"u": [1, 5]}, embeddings={**EMBEDDINGS, 5: np.ones(3)}, k=2)
    with pytest.raises(MetricInputError, match="distance"):
        intra_list_diversity_at_k({"u": [1, 2]}, embeddings=EMBEDDINGS, distance="manhattan")


def test_novelty_is_mean_self_information():
    # shares 50/100, 25/100, 25/100 -> self-information 1, 2, 2 bits
    popularity = {1: 50, 2: 25, 3: 25}
    # u1: (1 + 2) / 2 = 1.5; u2: 2; mean over users 1.75
    assert novelty_at_k({"u1": [1, 2], "u2": [3]}, item_popularity=popularity, k=2) == pytest.approx(1.75)
    # item 4 was never played: skipped and counted; u has 1 bit
    assert novelty_at_k({"u": [1, 4]}, item_popularity=popularity, k=2) == pytest.approx(1.0)
    assert count_unknown_items({"u": [1, 4]}, known=popularity, k=2) == 1
    assert novelty_at_k({}, item_popularity=popularity) == 0.0
    with pytest.raises(MetricInputError, match="negative"):
        novelty_at_k({"u": [1]}, item_popularity={1: -1})


def test_genre_precision_of_similar_tracks():
    genres = {1: "Rock", 2: "Rock", 3: "Jazz", 4: "Rock", 5: "Pop"}
    similar = {1: [2, 3, 4, 5], 3: [1, 2], 7: [1, 2]}  # 7 has no genre: left out
    # seed 1 (Rock), top 3 [2,3,4] -> Rock, Jazz, Rock = 2/3; seed 3 (Jazz): [1,2] -> 0/2; mean 1/3
    assert genre_precision_at_k(similar, track_genres=genres, k=3) == pytest.approx(1 / 3)
    # a neighbour without a genre is skipped: seed 1, [2, 8] -> 1/1
    assert genre_precision_at_k({1: [2, 8]}, track_genres=genres, k=2) == pytest.approx(1.0)
    with pytest.raises(MetricInputError, match="own similar tracks"):
        genre_precision_at_k({1: [2, 1]}, track_genres=genres, k=2)


def test_ranking_report_gathers_every_metric():
    recs = {"a": [1, 2, 3, 4, 5], "c": [7, 8]}
    rel = {"a": {2, 5, 9}, "b": {7}}
    popularity = {item: 1 for item in range(1, 9)}  # uniform over 8 items -> every item 3 bits
    report = ranking_report(recs, rel, catalogue=range(1, 11), item_popularity=popularity, k=5,
                            embeddings=EMBEDDINGS)
    assert set(RECOMMENDATION_METRICS) <= report.keys()  # the names the models page compares
    assert report["n_users"] == 2
    assert report["n_users_without_recommendations"] == 1
    assert report[Metric.PRECISION_AT_K] == pytest.approx(0.2)  # (0.4 + 0) / 2
    assert report[Metric.HIT_RATE_AT_K] == pytest.approx(0.5)
    assert report[Metric.CATALOGUE_COVERAGE_AT_K] == pytest.approx(0.7)  # {1..5, 7, 8} of 10
    assert report[Metric.NOVELTY_AT_K] == pytest.approx(3.0)
    assert report["items_without_popularity"] == 0
    # a: embedded [1,2,3,4] -> mean of 6 pairwise cosine distances; c: none embedded
    assert report[Metric.INTRA_LIST_DIVERSITY_AT_K] == pytest.approx(
        intra_list_diversity_at_k({"a": [1, 2, 3, 4]}, embeddings=EMBEDDINGS, k=5))
    assert report["items_without_embedding"] == 3  # 5, 7, 8


def test_ranking_report_without_embeddings():
    report = ranking_report({}, {}, catalogue=[], item_popularity={})
    assert report["n_users"] == 0
    assert report[Metric.PRECISION_AT_K] == 0.0
    assert report[Metric.INTRA_LIST_DIVERSITY_AT_K] is None and report["items_without_embedding"] is None
