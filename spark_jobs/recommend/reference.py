"""Reference recommenders from the ``implicit`` library: the yardstick for our Spark models.

``implicit`` (CPU) fits ALS, BPR and item-item kNN (cosine, BM25) on the same split as
our models: the training interactions of ``interactions`` (pairs with strength > 0 as
positives), the recommendable tracks, the same holdout users. Scoring is the library's
own formula (user factors times item factors; the user's row times the item-item
similarity), run here over batches of users so that the list rules are ours
(``recommenders.top_unplayed``): played tracks masked (strength-0 pairs too), ties broken
by track id, tracks without training interactions unreachable (as for our ALS), at most
``n`` items. The metrics are then ``training.evaluate_lists``: the same code as ours.

Models and parameters (``PARAMETERS``; a grid is ``"factors=32,64;regularization=0.01"``):

* ``als``: factors, regularization, alpha, iterations, use_cg. ``implicit`` weighs a
  positive pair by ``alpha * strength`` (``confidence="implicit"``) where Spark uses
  ``1 + alpha * strength`` (``confidence="spark"``), and keeps one regularisation where
  Spark multiplies it by each user's (each track's) number of positives: the same
  nominal parameters are not the same model (``spark_like_als``).
* ``bpr``: factors, learning_rate, regularization, iterations (on one thread, so that a
  seed gives one model).
* ``cosine``: K (neighbours kept per track).
* ``bm25``: K, K1, B.

Training stays on Spark: these models are fitted in the benchmark, never published.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from implicit.als import AlternatingLeastSquares
from implicit.bpr import BayesianPersonalizedRanking
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
from scipy import sparse
from threadpoolctl import threadpool_limits

from spark_jobs.metrics import ndcg_at_k
from spark_jobs.recommend.errors import RecommenderError
from spark_jobs.recommend.events import TRACK_ID, USER_ID
from spark_jobs.recommend.interactions import STRENGTH
from spark_jobs.recommend.recommenders import top_unplayed
from spark_jobs.recommend.tracks import RecommendableTracks
from spark_jobs.recommend.training import NDCG, Trial

ALS, BPR, COSINE, BM25 = "als", "bpr", "cosine", "bm25"
SPARK_CONFIDENCE, IMPLICIT_CONFIDENCE = "spark", "implicit"
# Every parameter a model takes, with its type and default (implicit's defaults, except
# the iterations of ALS: Spark's maxIter default).
PARAMETERS: dict[str, dict[str, tuple[type, object]]] = {
    ALS: {"factors": (int, 16), "regularization": (float, 0.1), "alpha": (float, 1.0), "iterations": (int, 10),
          "use_cg": (bool, True), "confidence": (str, IMPLICIT_CONFIDENCE)},
    BPR: {"factors": (int, 64), "learning_rate": (float, 0.01), "regularization": (float, 0.01),
          "iterations": (int, 100)},
    COSINE: {"K": (int, 20)},
    BM25: {"K": (int, 20), "K1": (float, 1.2), "B": (float, 0.75)},
}
SCORE_BATCH = 512  # users scored at once (512 x tracks dense floats)

Scorer = Callable[[np.ndarray], np.ndarray]  # user rows -> (rows, tracks) scores


@dataclass(frozen=True)
class UserItems:
    """One split's training interactions as matrices over the recommendable tracks."""

    users: np.ndarray  # user ids, the row order (sorted)
    positives: sparse.csr_matrix  # (users, tracks) float32 strength of pairs with strength > 0
    played: sparse.csr_matrix  # (users, tracks) every training pair (strength 0 included)
    trained: np.ndarray  # bool (tracks,): the track has a positive training pair

    def rows_of(self, users: Sequence[str]) -> np.ndarray:
        """Row of each user; a user without training interactions raises."""
        wanted = np.asarray(list(users), dtype=object)
        rows = np.searchsorted(self.users, wanted)
        inside = rows < self.users.size
        known = np.zeros(wanted.shape, dtype=bool)
        known[inside] = self.users[rows[inside]] == wanted[inside]
        if not known.all():
            raise RecommenderError(f"users {wanted[~known][:5].tolist()} have no training interactions")
        return rows


def user_items(train: pd.DataFrame, tracks: RecommendableTracks) -> UserItems:
    """``UserItems`` from ``(user_id, track_id, strength)`` rows (a split's training interactions)."""
    missing = {USER_ID, TRACK_ID, STRENGTH} - set(train.columns)
    if missing:
        raise RecommenderError(f"training interactions lack columns {sorted(missing)}")
    if train.empty:
        raise RecommenderError("no training interactions")
    users, rows = np.unique(train[USER_ID].astype(str).to_numpy(dtype=object), return_inverse=True)
    columns = tracks.positions(train[TRACK_ID])
    strength = train[STRENGTH].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(strength)) or (strength < 0).any():
        raise RecommenderError("strengths must be finite and >= 0")
    shape = (users.size, tracks.size)
    played = sparse.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, columns)), shape=shape)
    positive = strength > 0
    positives = sparse.csr_matrix((strength[positive].astype(np.float32), (rows[positive], columns[positive])),
                                  shape=shape)
    positives.sum_duplicates()
    return UserItems(users=users, positives=positives, played=played,
                     trained=np.asarray(positives.getnnz(axis=0) > 0).ravel())


def check_params(model: str, params: Mapping) -> dict:
    """``params`` typed, with the model's defaults for the rest; unknown names or bad values raise."""
    if model not in PARAMETERS:
        raise RecommenderError(f"unknown reference model {model!r}; known: {list(PARAMETERS)}")
    known = PARAMETERS[model]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise RecommenderError(f"{model}: unknown parameters {unknown}; known: {list(known)}")
    typed = {}
    for name, (kind, default) in known.items():
        value = params.get(name, default)
        if kind is bool and isinstance(value, str):
            value = value.strip().lower() in ("1", "true", "yes")
        try:
            typed[name] = kind(value)
        except (TypeError, ValueError) as exc:
            raise RecommenderError(f"{model}: parameter {name}={value!r} is not a {kind.__name__}") from exc
    numbers = [v for n, v in typed.items() if not isinstance(v, (bool, str))]
    if any(not np.isfinite(v) or v < 0 for v in numbers) or any(
            typed[n] < 1 for n in ("factors", "iterations", "K") if n in typed):
        raise RecommenderError(f"{model}: parameters out of range: {typed}")
    if typed.get("confidence", IMPLICIT_CONFIDENCE) not in (IMPLICIT_CONFIDENCE, SPARK_CONFIDENCE):
        raise RecommenderError(f"{model}: confidence must be {IMPLICIT_CONFIDENCE!r} or {SPARK_CONFIDENCE!r}")
    return typed


def parse_grid(model: str, text: str) -> tuple[dict, ...]:
    """``"factors=32,64;regularization=0.01"`` -> every combination as typed parameter dicts."""
    axes: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, values = part.partition("=")
        if not sep or not values.strip():
            raise RecommenderError(f"{model}: grid part {part!r} is not name=v1,v2")
        axes[name.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    names = sorted(axes)
    return tuple(check_params(model, dict(zip(names, combo)))
                 for combo in itertools.product(*(axes[n] for n in names)))


def spark_like_als(spark_params: Mapping, data: UserItems) -> dict:
    """implicit ALS parameters that approximate Spark's implicit ALS with ``spark_params``
    (rank, regParam, alpha, maxIter): Spark's confidence ``1 + alpha * strength``, exact
    solves, and its per-user/per-track regularisation ``regParam * n_positives``
    replaced by one value, ``regParam`` times the mean number of positives of a user and
    a track (implicit has a single regularisation)."""
    n_users, n_tracks = data.positives.shape[0], int(data.trained.sum())
    mean_positives = 2.0 * data.positives.nnz / max(n_users + n_tracks, 1)
    return check_params(ALS, {
        "factors": spark_params["rank"], "iterations": spark_params["maxIter"], "alpha": spark_params["alpha"],
        "regularization": float(spark_params["regParam"]) * mean_positives, "use_cg": False,
        "confidence": SPARK_CONFIDENCE,
    })


def fit(model: str, params: Mapping, data: UserItems, *, seed: int, threads: int = 1) -> Scorer:
    """Fit ``model`` on ``data.positives``; the returned scorer gives the library's scores of user rows."""
    typed = check_params(model, params)
    matrix = data.positives
    with threadpool_limits(1, "blas"):  # implicit's own threads do the work; BLAS threads only contend
        if model == ALS:
            confidence = typed.pop("confidence")
            if confidence == SPARK_CONFIDENCE:  # c = 1 + alpha * r, given to implicit as the value with alpha 1
                matrix = matrix.copy()
                matrix.data = 1.0 + typed["alpha"] * matrix.data
                typed["alpha"] = 1.0
            estimator = AlternatingLeastSquares(**typed, random_state=seed, num_threads=threads)
        elif model == BPR:  # one thread: its parallel (Hogwild) SGD gives other factors on every run
            estimator = BayesianPersonalizedRanking(**typed, random_state=seed, num_threads=1)
        elif model == COSINE:
            estimator = CosineRecommender(**typed, num_threads=threads)
        else:
            estimator = BM25Recommender(**typed, num_threads=threads)
        with warnings.catch_warnings():  # the kNN models convert their own weighted COO matrix to CSR
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            estimator.fit(matrix, show_progress=False)
    if model in (ALS, BPR):  # BPR's factors carry the item bias (a column of ones on the user side)
        users = np.asarray(estimator.user_factors, dtype=np.float64)
        items = np.asarray(estimator.item_factors, dtype=np.float64)
        return lambda rows: users[rows] @ items.T
    similarity = estimator.similarity.tocsr()

    def knn_scores(rows: np.ndarray) -> np.ndarray:
        product = (data.positives[rows] @ similarity).tocoo()
        scores = np.full((rows.size, similarity.shape[1]), -np.inf)  # no similar track played: unreachable
        scores[product.row, product.col] = product.data
        return scores

    return knn_scores


def recommend(scorer: Scorer, data: UserItems, users: Sequence[str], *, tracks: RecommendableTracks,
              n: int) -> dict[str, list[int]]:
    """``{user_id: [track_id, ...]}``: the top ``n`` unplayed, reachable tracks of each user."""
    if n < 1:
        raise RecommenderError(f"n must be at least 1, got {n}")
    users = list(users)
    rows = data.rows_of(users)
    lists = {}
    for start in range(0, rows.size, SCORE_BATCH):
        batch = rows[start:start + SCORE_BATCH]
        scores = np.asarray(scorer(batch), dtype=np.float64)
        scores[:, ~data.trained] = -np.inf
        for offset, row in enumerate(batch):
            played = data.played.indices[data.played.indptr[row]:data.played.indptr[row + 1]]
            top, _ = top_unplayed(scores[offset], tracks.track_ids, played, n)
            lists[users[start + offset]] = tracks.track_ids[top].astype(int).tolist()
    return lists


@dataclass(frozen=True)
class Fitted:
    """One reference model's lists and how long fitting and ranking took."""

    model: str
    params: dict
    lists: dict[str, list[int]]
    fit_seconds: float
    recommend_seconds: float


def fit_and_recommend(model: str, params: Mapping, data: UserItems, users: Sequence[str], *,
                      tracks: RecommendableTracks, n: int, seed: int, threads: int = 1) -> Fitted:
    started = time.perf_counter()
    scorer = fit(model, params, data, seed=seed, threads=threads)
    fitted = time.perf_counter()
    lists = recommend(scorer, data, users, tracks=tracks, n=n)
    return Fitted(model=model, params=check_params(model, params), lists=lists,
                  fit_seconds=round(fitted - started, 2), recommend_seconds=round(time.perf_counter() - fitted, 2))


def label(params: Mapping) -> str:
    """``factors=32,regularization=0.1`` (the grid's notation)."""
    return ",".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                    for name, value in params.items())


def tune(model: str, grid: Sequence[Mapping], data: UserItems, relevant: Mapping[str, set[int]], *,
         tracks: RecommendableTracks, k: int, seed: int, threads: int = 1) -> list[Trial]:
    """Each grid point fitted on a validation split's training part and scored (NDCG@k) on its
    held-out part, never on the test holdout; ``training.best_trial`` picks the winner."""
    if not grid:
        raise RecommenderError(f"{model}: the grid is empty")
    users = sorted(relevant)
    trials = []
    for params in grid:
        fitted = fit_and_recommend(model, params, data, users, tracks=tracks, n=k, seed=seed, threads=threads)
        trials.append(Trial(params=fitted.params, label=label(fitted.params),
                            metrics={NDCG: ndcg_at_k(fitted.lists, relevant, k=k)},
                            seconds=round(fitted.fit_seconds + fitted.recommend_seconds, 2)))
    return trials
