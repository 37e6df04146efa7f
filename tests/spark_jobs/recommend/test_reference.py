"""Reference recommenders from ``implicit``: our scoring gives the library's own lists, the
list rules are ours (played tracks masked, untrained tracks unreachable), parameters are checked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from implicit.als import AlternatingLeastSquares
from implicit.bpr import BayesianPersonalizedRanking
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

from spark_jobs.metrics import ndcg_at_k
from spark_jobs.recommend import reference
from spark_jobs.recommend.errors import RecommenderError
from spark_jobs.recommend.tracks import recommendable_tracks
from spark_jobs.recommend.training import best_trial

LIBRARY = {reference.ALS: AlternatingLeastSquares, reference.BPR: BayesianPersonalizedRanking,
           reference.COSINE: CosineRecommender, reference.BM25: BM25Recommender}
SMALL = {reference.ALS: {"factors": 4}, reference.BPR: {"factors": 4, "iterations": 20},
         reference.COSINE: {"K": 10}, reference.BM25: {"K": 10}}


@pytest.fixture(scope="module")
def planted():
    """60 users, 50 tracks (ids 3, 6, ...): users of two taste groups each play 8 of their group's 20
    tracks (ids 3..60 and 63..120); the last 10 tracks are never played."""
    rng = np.random.default_rng(0)
    tracks = recommendable_tracks(pd.DataFrame({"track_id": np.arange(1, 51) * 3}))
    rows = []
    for user in range(60):
        half = np.arange(20) + 20 * (user % 2)
        rows += [(f"u{user:02d}", int((t + 1) * 3), float(rng.integers(1, 5))) for t in rng.choice(half, 8, False)]
    return tracks, pd.DataFrame(rows, columns=["user_id", "track_id", "strength"])


@pytest.mark.filterwarnings("ignore:Method expects CSR input")  # the library fitted directly, as a user would
@pytest.mark.parametrize("model", list(LIBRARY))
def test_our_scoring_gives_the_librarys_own_lists(planted, model):
    tracks, train = planted
    data = reference.user_items(train, tracks)
    ours = reference.recommend(reference.fit(model, SMALL[model], data, seed=1), data, data.users, tracks=tracks, n=5)
    params = {name: value for name, value in reference.check_params(model, SMALL[model]).items()
              if name != "confidence"}
    seeded = {"random_state": 1} if model in (reference.ALS, reference.BPR) else {}
    library = LIBRARY[model](**params, **seeded, num_threads=1)
    library.fit(data.positives, show_progress=False)
    ids, _ = library.recommend(np.arange(data.users.size), data.positives, N=5, filter_already_liked_items=True)
    assert [ours[user] for user in data.users] == [[int(tracks.track_ids[i]) for i in row] for row in ids]


def test_taste_groups_are_recovered(planted):
    tracks, train = planted
    data = reference.user_items(train, tracks)
    for model in LIBRARY:
        lists = reference.recommend(reference.fit(model, SMALL[model], data, seed=1), data, ["u00", "u01"],
                                    tracks=tracks, n=5)
        if model != reference.BPR:  # 20 BPR epochs on 480 pairs learn popularity more than groups
            assert all(track <= 60 for track in lists["u00"]), model
            assert all(60 < track <= 120 for track in lists["u01"]), model


def test_played_pairs_are_masked_even_at_strength_zero_and_untrained_tracks_unreachable(planted):
    tracks, train = planted
    zero = pd.DataFrame([("u00", 63, 0.0)], columns=train.columns)  # u00 played track 63 without liking it
    data = reference.user_items(pd.concat([train, zero]), tracks)
    assert data.played[data.rows_of(["u00"])[0]].toarray()[0, tracks.positions([63])[0]] == 1
    assert data.positives.nnz == len(train.groupby(["user_id", "track_id"]))
    scorer = reference.fit(reference.ALS, SMALL[reference.ALS], data, seed=1)
    lists = reference.recommend(scorer, data, ["u00"], tracks=tracks, n=40)
    played = set(train.loc[train["user_id"] == "u00", "track_id"]) | {63}
    assert not played & set(lists["u00"])
    untrained = set(tracks.track_ids[~data.trained].tolist())
    assert untrained and not untrained & set(lists["u00"])
    assert len(lists["u00"]) == data.trained.sum() - len(played - untrained)


def test_tuning_picks_on_validation_ndcg(planted):
    tracks, train = planted
    held_out = train.groupby("user_id").tail(2)  # two tracks per user as a validation holdout
    data = reference.user_items(train.drop(held_out.index), tracks)
    relevant = {user: set(group["track_id"]) for user, group in held_out.groupby("user_id")}
    grid = reference.parse_grid(reference.BM25, "K=1,10;B=0.75")
    trials = reference.tune(reference.BM25, grid, data, relevant, tracks=tracks, k=5, seed=1)
    assert [t.label for t in trials] == ["K=1,K1=1.2,B=0.75", "K=10,K1=1.2,B=0.75"]
    best = best_trial(trials)
    fitted = reference.fit_and_recommend(reference.BM25, best.params, data, sorted(relevant), tracks=tracks, n=5,
                                         seed=1)
    assert best.metrics["ndcg_at_k"] == pytest.approx(ndcg_at_k(fitted.lists, relevant, k=5))
    assert best.metrics["ndcg_at_k"] == max(t.metrics["ndcg_at_k"] for t in trials)


def test_spark_like_als_translates_confidence_and_regularisation(planted):
    tracks, train = planted
    data = reference.user_items(train, tracks)
    params = reference.spark_like_als({"rank": 8, "regParam": 0.1, "alpha": 10.0, "maxIter": 10}, data)
    mean_positives = 2 * 480 / (60 + 40)  # 480 pairs over 60 users and the 40 played tracks
    assert params == {"factors": 8, "regularization": pytest.approx(0.1 * mean_positives), "alpha": 10.0,
                      "iterations": 10, "use_cg": False, "confidence": reference.SPARK_CONFIDENCE}
    lists = reference.recommend(reference.fit(reference.ALS, params, data, seed=1), data, ["u00"], tracks=tracks,
                                n=5)
    assert all(track <= 60 for track in lists["u00"])


@pytest.mark.parametrize("model, params, message", [
    ("svd", {}, "unknown reference model"),
    (reference.ALS, {"rank": 8}, "unknown parameters"),
    (reference.ALS, {"factors": 0}, "out of range"),
    (reference.BPR, {"learning_rate": "fast"}, "is not a float"),
    (reference.BM25, {"K": -1}, "out of range"),
    (reference.ALS, {"confidence": "mine"}, "confidence must be"),
])
def test_bad_parameters_raise_with_the_name(model, params, message):
    with pytest.raises(RecommenderError, match=message):
        reference.check_params(model, params)


def test_bad_interactions_and_unknown_users_raise(planted):
    tracks, train = planted
    with pytest.raises(RecommenderError, match="lack columns"):
        reference.user_items(train.drop(columns="strength"), tracks)
    with pytest.raises(RecommenderError, match="not recommendable"):
        reference.user_items(pd.DataFrame({"user_id": ["u"], "track_id": [4], "strength": [1.0]}), tracks)
    with pytest.raises(RecommenderError, match="finite"):
        reference.user_items(train.assign(strength=-1.0), tracks)
    data = reference.user_items(train, tracks)
    with pytest.raises(RecommenderError, match="no training interactions"):
        data.rows_of(["nobody"])
    with pytest.raises(RecommenderError, match="name=v1,v2"):
        reference.parse_grid(reference.ALS, "factors")
