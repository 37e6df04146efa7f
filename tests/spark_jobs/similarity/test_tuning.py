"""Choosing the LSH configuration: the grid, the cheapest trial meeting the recall target."""

from __future__ import annotations

import pytest

from spark_jobs.similarity.errors import REASON_BAD_GRID, SimilarityInputError
from spark_jobs.similarity.neighbours import LshParams
from spark_jobs.similarity.tuning import Trial, choose_trial, parse_grid, tune_lsh

K = 10


def test_grid_text_gives_every_combination_and_rejects_nonsense():
    grid = parse_grid("bucket_lengths=0.1,0.2; tables=4,8 ;hashes=3")
    assert [p.label for p in grid] == ["b0.1:t4:h3", "b0.1:t8:h3", "b0.2:t4:h3", "b0.2:t8:h3"]
    assert parse_grid("bucket_lengths=1;tables=2") == [LshParams(1.0, 2, 1)]
    for bad in ("tables=4", "bucket_lengths=x;tables=4", "bucket_lengths=0.1;tables=0", "bucket_lengths=-1;tables=2",
                "bucket_lengths=0.1;tables=4;depth=2"):
        with pytest.raises(SimilarityInputError) as error:
            parse_grid(bad)
        assert error.value.reason == REASON_BAD_GRID


def _trial(tables: int, recall: float, pairs: int, seconds: float) -> Trial:
    return Trial(LshParams(0.1, tables, 3), recall, seconds, pairs, pairs / 1e6)


def test_the_cheapest_configuration_meeting_the_target_wins_not_the_best_recall():
    trials = [_trial(32, 1.00, 90_000, 9.0), _trial(8, 0.96, 20_000, 4.0), _trial(4, 0.90, 5_000, 1.0),
              _trial(16, 0.97, 20_000, 3.0)]
    chosen, met = choose_trial(trials, target_recall=0.95)
    assert met and chosen.params.num_hash_tables == 16  # same comparisons as t8, faster


def test_when_nothing_meets_the_target_the_best_recall_is_taken_and_flagged():
    trials = [_trial(4, 0.80, 5_000, 1.0), _trial(8, 0.90, 20_000, 4.0)]
    chosen, met = choose_trial(trials, target_recall=0.95)
    assert not met and chosen.recall == 0.90


@pytest.mark.slow
def test_tuning_picks_the_cheapest_config_that_reaches_recall_095(clustered_df, clustered):
    embeddings, genres = clustered
    # Same seed: the 32-table model's first 16 tables are the 16-table model's, so it
    # compares a superset and can only be dearer; 16 tables already suffice here.
    grid = [LshParams(0.2, 32, 3), LshParams(0.2, 16, 3), LshParams(0.2, 4, 3)]
    tuning = tune_lsh(embeddings, clustered_df, grid=grid, k=K, sample_fraction=0.2, seed=5, track_genres=genres)
    by_label = {t.params.label: t for t in tuning.trials}
    cheap, dear, weak = by_label["b0.2:t16:h3"], by_label["b0.2:t32:h3"], by_label["b0.2:t4:h3"]
    assert weak.recall < 0.95 and weak.candidate_pairs < cheap.candidate_pairs  # cheapest, but not good enough
    assert cheap.recall >= 0.95 and cheap.candidate_pairs < dear.candidate_pairs
    assert tuning.target_met and tuning.chosen == cheap
    # At 1,500 tracks LSH still compares a good share of what brute force does; it pays at scale.
    assert cheap.work_fraction < 0.75 and cheap.work_fraction < dear.work_fraction
    assert len(tuning.queries) == 300 and tuning.exact[tuning.exact.track_id.isin(tuning.queries)].shape[0] == 3000
    assert cheap.genre_precision > 0.9
