"""Ranking metrics, pure: accuracy on a per-user holdout, and beyond it.

Shared by the recommendation training (``spark_jobs.recommend``) and similar tracks
(recall against exact neighbours, genre precision). Names of stored metrics come from
``fma_platform.model_runs.Metric``.

Representation (pure functions)
-------------------------------
- ``recommendations``: ``{user_id: [track_id, ...]}``, each list ranked best first, no repeats.
- ``relevant``: ``{user_id: {track_id, ...}}``, the user's held-out tracks.

Conventions
-----------
- Only the first ``k`` items of a list count. A list shorter than ``k`` counts as padded
  with irrelevant items: precision always divides by ``k``.
- Accuracy metrics (precision, recall, NDCG, MAP, hit rate) average over the users with at
  least one held-out item. Such a user without recommendations (absent or empty list)
  scores 0; a user with recommendations but no held-out items is ignored.
- NDCG@k: binary relevance, ``DCG = sum over hits at position p (1-based) of 1/log2(p+1)``,
  divided by the ideal DCG of ``min(k, |relevant|)`` hits at the top.
- MAP@k: ``AP@k = sum over hits at position p of precision@p, / min(k, |relevant|)``
  (the usual recsys normalisation: a perfect top-k scores 1 even when ``|relevant| > k``).
- Beyond-accuracy metrics (coverage, diversity, novelty) look at every list in
  ``recommendations``, held-out items or not. Items they cannot score (no embedding, no
  interactions) are skipped; :func:`count_unknown_items` counts them.
- A mean over nothing is 0.0, never NaN; :func:`ranking_report` carries the counts
  (``n_users`` ...) that tell "nobody to evaluate" from "everything wrong".
- Bad input raises :class:`MetricInputError`: ``k < 1``, an item repeated in a list (the
  error names the user), an item outside the catalogue, a zero vector under cosine.

Uncertainty
-----------
Every metric that is a mean over listeners (the accuracy metrics, novelty, diversity) gets
a percentile-bootstrap interval: the per-listener values are resampled with replacement
(``Bootstrap``: 1,000 resamples, 95 %, a fixed seed, so a rerun gives the same interval).
A resample is drawn as how often each listener is picked (a multinomial row), so the
means of every resample and every metric are one matrix product. Catalogue coverage is
not a mean over listeners (a resample holds ~63 % distinct listeners, whose union of
lists is smaller): it gets no interval. :func:`gain_interval` compares two models on the
same listeners (paired bootstrap of the per-listener difference): the promotion rule's
evidence.

Segments
--------
:func:`segment_report` scores the same lists per segment with :func:`ranking_report` (every
metric, with its interval), keys ``segment:<segment>:<name>`` (:func:`segment_key`):

- listener segments by their events in the training window (:class:`SegmentRule`):
  ``cold`` at most 5 events; ``heavy`` more events than the 90th percentile of all
  training-window listeners' counts (the top decile; its threshold is stored as
  ``segment:heavy:min_events``, the smallest count that is heavy); ``regular`` the rest.
  Coverage is the share of the catalogue in the union of the segment's lists, so it grows
  with the segment's size: compare it across models, not across segments.
- ``new_tracks``: tracks with no play in the training window (``item_popularity`` 0 or
  absent). Accuracy is scored against each listener's held-out new tracks only, over the
  listeners that have some; coverage there is the share of the new tracks that appear in
  anybody's list; ``segment:new_tracks:n_tracks`` counts them. Novelty skips new tracks
  (no count), as everywhere.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import pdist

from fma_platform.errors import PlatformError
from fma_platform.model_runs import (
    CI_CONFIDENCE,
    CI_HIGH,
    CI_LOW,
    CI_RESAMPLES,
    COLD,
    HEAVY,
    HEAVY_MIN_EVENTS,
    LISTENER_SEGMENTS,
    NEW_TRACK_COUNT,
    NEW_TRACKS,
    REGULAR,
    Metric,
    interval_key,
)
from fma_platform.model_runs import segment_key as stored_segment_key

DEFAULT_K = 10
DISTANCES = ("cosine", "euclidean")

Recommendations = Mapping[Hashable, Sequence[Hashable]]
Relevant = Mapping[Hashable, Collection[Hashable]]


class MetricInputError(PlatformError, ValueError):
    """Input a metric cannot be computed on; ``user`` names the offending list, if any."""

    def __init__(self, message: str, *, user: Hashable | None = None):
        super().__init__(message)
        self.user = user


# --- input checks -------------------------------------------------------------------------

def _check_k(k) -> None:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise MetricInputError(f"k must be an integer >= 1, got {k!r}")


def _top_k_lists(recommendations: Recommendations, k: int) -> dict[Hashable, list]:
    """The first ``k`` items of every list, after checking that no list repeats an item."""
    _check_k(k)
    top_k = {}
    for user, ranked in recommendations.items():
        items = list(ranked)
        if len(set(items)) != len(items):
            seen: set = set()
            repeated = next(item for item in items if item in seen or seen.add(item))
            raise MetricInputError(f"user {user!r}: item {repeated!r} appears more than once", user=user)
        top_k[user] = items[:k]
    return top_k


def _held_out(relevant: Relevant) -> dict[Hashable, set]:
    """The users that have held-out items, with those items as a set."""
    return {user: set(items) for user, items in relevant.items() if len(items) > 0}


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


# --- accuracy on the holdout: one user ----------------------------------------------------

def _hits(top: list, rel: set) -> int:
    return sum(item in rel for item in top)


def _precision(top: list, rel: set, k: int) -> float:
    return _hits(top, rel) / k


def _recall(top: list, rel: set, k: int) -> float:
    return _hits(top, rel) / len(rel)


def _ndcg(top: list, rel: set, k: int) -> float:
    dcg = sum(1 / math.log2(position + 1) for position, item in enumerate(top, start=1) if item in rel)
    ideal = sum(1 / math.log2(position + 1) for position in range(1, min(k, len(rel)) + 1))
    return dcg / ideal


def _average_precision(top: list, rel: set, k: int) -> float:
    hits, precision_sum = 0, 0.0
    for position, item in enumerate(top, start=1):
        if item in rel:
            hits += 1
            precision_sum += hits / position
    return precision_sum / min(k, len(rel))


def _hit(top: list, rel: set, k: int) -> float:
    return float(_hits(top, rel) > 0)


# The accuracy metrics' per-user scores, by stored name.
ACCURACY_BY_USER: dict[str, Callable[[list, set, int], float]] = {
    Metric.PRECISION_AT_K.value: _precision,
    Metric.RECALL_AT_K.value: _recall,
    Metric.NDCG_AT_K.value: _ndcg,
    Metric.MAP_AT_K.value: _average_precision,
    Metric.HIT_RATE_AT_K.value: _hit,
}


def _mean_over_users(per_user, recommendations: Recommendations, relevant: Relevant, k: int) -> float:
    top_k = _top_k_lists(recommendations, k)
    return _mean([per_user(top_k.get(user, []), rel, k) for user, rel in _held_out(relevant).items()])


def accuracy_by_user(recommendations: Recommendations, relevant: Relevant, *,
                     k: int = DEFAULT_K) -> tuple[tuple[Hashable, ...], dict[str, np.ndarray]]:
    """``(users, {metric: values})``: every accuracy metric of each user with held-out items,
    aligned to ``users`` (in ``relevant``'s order); their means are the ``*_at_k`` functions."""
    top_k = _top_k_lists(recommendations, k)
    held_out = _held_out(relevant)
    users = tuple(held_out)
    return users, {name: np.array([per_user(top_k.get(user, []), held_out[user], k) for user in users], dtype=float)
                   for name, per_user in ACCURACY_BY_USER.items()}


# --- accuracy on the holdout: averaged over users -----------------------------------------

def precision_at_k(recommendations: Recommendations, relevant: Relevant, *, k: int = DEFAULT_K) -> float:
    """Mean share of each user's top ``k`` that is held out (divides by ``k``)."""
    return _mean_over_users(_precision, recommendations, relevant, k)


def recall_at_k(recommendations: Recommendations, relevant: Relevant, *, k: int = DEFAULT_K) -> float:
    """Mean share of each user's held-out items found in their top ``k``."""
    return _mean_over_users(_recall, recommendations, relevant, k)


def ndcg_at_k(recommendations: Recommendations, relevant: Relevant, *, k: int = DEFAULT_K) -> float:
    """Mean binary-relevance NDCG@k (log2 discount, ideal DCG of ``min(k, |relevant|)`` hits)."""
    return _mean_over_users(_ndcg, recommendations, relevant, k)


def map_at_k(recommendations: Recommendations, relevant: Relevant, *, k: int = DEFAULT_K) -> float:
    """Mean average precision@k, each AP divided by ``min(k, |relevant|)``."""
    return _mean_over_users(_average_precision, recommendations, relevant, k)


def hit_rate_at_k(recommendations: Recommendations, relevant: Relevant, *, k: int = DEFAULT_K) -> float:
    """Share of users with at least one held-out item in their top ``k``."""
    return _mean_over_users(_hit, recommendations, relevant, k)


# --- beyond accuracy ----------------------------------------------------------------------

def count_unknown_items(recommendations: Recommendations, *, known: Collection, k: int = DEFAULT_K) -> int:
    """How many top-``k`` slots hold an item not in ``known`` (e.g. without an embedding)."""
    return sum(item not in known for top in _top_k_lists(recommendations, k).values() for item in top)


def catalogue_coverage_at_k(
    recommendations: Recommendations, *, catalogue: Collection, k: int = DEFAULT_K
) -> float:
    """Share of the catalogue that appears in at least one user's top ``k``.

    An empty catalogue gives 0.0; a recommended item outside it raises, naming the user.
    """
    catalogue = set(catalogue)
    shown: set = set()
    for user, top in _top_k_lists(recommendations, k).items():
        outside = [item for item in top if item not in catalogue]
        if outside:
            raise MetricInputError(f"user {user!r}: item {outside[0]!r} is not in the catalogue", user=user)
        shown.update(top)
    return len(shown) / len(catalogue) if catalogue else 0.0


def _mean_pairwise_distance(vectors: np.ndarray, distance: str, user: Hashable) -> float:
    if distance == "cosine" and not np.all(np.linalg.norm(vectors, axis=1) > 0):
        raise MetricInputError(f"user {user!r}: a recommended item has a zero embedding (cosine undefined)", user=user)
    return float(np.mean(pdist(vectors, metric=distance)))


def intra_list_diversity_at_k(
    recommendations: Recommendations,
    *,
    embeddings: Mapping[Hashable, np.ndarray],
    k: int = DEFAULT_K,
    distance: str = "cosine",
) -> float:
    """Mean pairwise distance between the items of each top ``k``, averaged over users.

    ``distance`` is ``"cosine"`` (1 - cosine similarity, in [0, 2]) or ``"euclidean"``.
    Items without an embedding are skipped (see :func:`count_unknown_items`); a list with
    fewer than two embedded items has no pairs and is left out of the average.
    """
    by_user = _diversity_by_user(_top_k_lists(recommendations, k), embeddings, distance)
    return _mean(list(by_user.values()))


def _diversity_by_user(top_k: dict[Hashable, list], embeddings: Mapping[Hashable, np.ndarray],
                       distance: str = "cosine") -> dict[Hashable, float]:
    """Each list's mean pairwise distance; lists with fewer than two embedded items are absent."""
    if distance not in DISTANCES:
        raise MetricInputError(f"distance must be one of {DISTANCES}, got {distance!r}")
    by_user = {}
    for user, top in top_k.items():
        vectors = [np.asarray(embeddings[item], dtype=float) for item in top if item in embeddings]
        if len(vectors) < 2:
            continue
        if len({vector.shape for vector in vectors}) != 1 or vectors[0].ndim != 1:
            raise MetricInputError(f"user {user!r}: embeddings are not vectors of one length", user=user)
        by_user[user] = _mean_pairwise_distance(np.stack(vectors), distance, user)
    return by_user


def novelty_at_k(
    recommendations: Recommendations, *, item_popularity: Mapping[Hashable, int], k: int = DEFAULT_K
) -> float:
    """Mean self-information ``-log2(count / total count)`` of each top ``k``, averaged over users.

    ``item_popularity`` holds interaction counts (training data). Items with no count (or
    0) would be infinitely novel: they are skipped (see :func:`count_unknown_items`), so a
    model that recommends never-played tracks is scored on its other items only.
    """
    return _mean(list(_novelty_by_user(_top_k_lists(recommendations, k), item_popularity).values()))


def _novelty_by_user(top_k: dict[Hashable, list], item_popularity: Mapping[Hashable, int]) -> dict[Hashable, float]:
    """Each list's mean self-information; lists without a counted item are absent."""
    negative = [item for item, count in item_popularity.items() if count < 0]
    if negative:
        raise MetricInputError(f"item {negative[0]!r} has a negative interaction count")
    total = sum(item_popularity.values())
    by_user = {}
    for user, top in top_k.items():
        counts = [item_popularity[item] for item in top if item_popularity.get(item, 0) > 0]
        if counts:
            by_user[user] = _mean([-math.log2(count / total) for count in counts])
    return by_user


def genre_precision_at_k(
    similar_tracks: Recommendations, *, track_genres: Mapping[Hashable, Hashable], k: int = DEFAULT_K
) -> float:
    """Mean share of each seed's top ``k`` neighbours whose top-level genre is the seed's.

    ``similar_tracks`` maps a seed track to its neighbours, most similar first. Neighbours
    without a genre are skipped, and so are seeds without a genre or without any neighbour
    with one (:func:`count_unknown_items` counts both). A seed among its own neighbours raises.
    """
    per_seed = []
    for seed, neighbours in _top_k_lists(similar_tracks, k).items():
        if seed in neighbours:
            raise MetricInputError(f"seed {seed!r} is among its own similar tracks", user=seed)
        genres = [track_genres[track] for track in neighbours if track in track_genres]
        if seed in track_genres and genres:
            per_seed.append(sum(genre == track_genres[seed] for genre in genres) / len(genres))
    return _mean(per_seed)


# --- uncertainty: bootstrap over listeners ------------------------------------------------

_MAX_DRAW_CELLS = 4_000_000  # resample rows x listeners drawn at once (32 MB of int64)


@dataclass(frozen=True)
class Bootstrap:
    """A percentile bootstrap over listeners: how many resamples, which confidence, which seed."""

    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.resamples, bool) or not isinstance(self.resamples, numbers.Integral) or self.resamples < 1:
            raise MetricInputError(f"resamples must be an integer >= 1, got {self.resamples!r}")
        if not 0.0 < float(self.confidence) < 1.0:
            raise MetricInputError(f"confidence must be in (0, 1), got {self.confidence!r}")


DEFAULT_BOOTSTRAP = Bootstrap()


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval."""

    estimate: float
    low: float
    high: float

    def excludes_zero_from_above(self) -> bool:
        """The whole interval is above zero (a gain that is not noise)."""
        return self.low > 0.0


def _resample_counts(n: int, bootstrap: Bootstrap) -> Iterator[np.ndarray]:
    """Blocks of ``(resamples, n)`` counts: how often each of ``n`` listeners is drawn."""
    rng = np.random.default_rng(bootstrap.seed)
    block = max(1, min(bootstrap.resamples, _MAX_DRAW_CELLS // max(n, 1)))
    uniform = np.full(n, 1.0 / n)
    for start in range(0, bootstrap.resamples, block):
        yield rng.multinomial(n, uniform, size=min(block, bootstrap.resamples - start))


def bootstrap_means(values: np.ndarray, bootstrap: Bootstrap = DEFAULT_BOOTSTRAP) -> np.ndarray:
    """``(resamples, metrics)`` means of resampled rows of ``values`` (listeners x metrics).

    NaN marks a listener a metric does not count (e.g. a list without embedded items for
    diversity): each metric's mean is over the drawn listeners it counts; a mean over none is 0.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise MetricInputError(f"values must be a listeners x metrics matrix, got shape {values.shape}")
    n, width = values.shape
    if n == 0:
        return np.zeros((bootstrap.resamples, width))
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    means = []
    for counts in _resample_counts(n, bootstrap):
        totals, weights = counts @ filled, counts @ present
        means.append(np.divide(totals, weights, out=np.zeros_like(totals), where=weights > 0))
    return np.concatenate(means)


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail], axis=0)
    return low, high


def listener_intervals(values: Mapping[str, np.ndarray],
                       bootstrap: Bootstrap = DEFAULT_BOOTSTRAP) -> dict[str, Interval]:
    """A percentile interval for the mean of each per-listener vector (all of one length,
    resampled together; NaN = the listener does not count for that metric)."""
    names = list(values)
    if not names:
        return {}
    matrix = np.column_stack([np.asarray(values[name], dtype=float) for name in names])
    low, high = _percentiles(bootstrap_means(matrix, bootstrap), bootstrap.confidence)
    present = ~np.isnan(matrix)
    estimates = [_mean(matrix[present[:, j], j].tolist()) for j in range(len(names))]
    return {name: Interval(estimates[j], float(low[j]), float(high[j])) for j, name in enumerate(names)}


def gain_interval(candidate: Recommendations, baseline: Recommendations, relevant: Relevant, *,
                  k: int = DEFAULT_K, metric: str = Metric.NDCG_AT_K.value,
                  bootstrap: Bootstrap = DEFAULT_BOOTSTRAP) -> Interval:
    """``candidate``'s gain in an accuracy ``metric`` over ``baseline`` on the same listeners:
    the mean per-listener difference and its paired percentile-bootstrap interval."""
    if metric not in ACCURACY_BY_USER:
        raise MetricInputError(f"metric must be one of {list(ACCURACY_BY_USER)}, got {metric!r}")
    _, candidate_values = accuracy_by_user(candidate, relevant, k=k)
    _, baseline_values = accuracy_by_user(baseline, relevant, k=k)
    difference = candidate_values[metric] - baseline_values[metric]
    return listener_intervals({metric: difference}, bootstrap)[metric]


def _per_listener_table(top_k: dict[Hashable, list], relevant: Relevant, *, k: int,
                        item_popularity: Mapping[Hashable, int],
                        embeddings: Mapping[Hashable, np.ndarray] | None) -> dict[str, np.ndarray]:
    """Every per-listener metric over held-out users plus users with lists (NaN: does not count)."""
    held_out = _held_out(relevant)
    users = list(held_out) + [user for user in top_k if user not in held_out]
    table = {name: np.array([per_user(top_k.get(user, []), held_out[user], k) if user in held_out else np.nan
                             for user in users], dtype=float)
             for name, per_user in ACCURACY_BY_USER.items()}
    beyond = {Metric.NOVELTY_AT_K.value: _novelty_by_user(top_k, item_popularity)}
    if embeddings is not None:
        beyond[Metric.INTRA_LIST_DIVERSITY_AT_K.value] = _diversity_by_user(top_k, embeddings)
    for name, by_user in beyond.items():
        table[name] = np.array([by_user.get(user, np.nan) for user in users], dtype=float)
    return table


# --- everything for one model run ---------------------------------------------------------

def ranking_report(
    recommendations: Recommendations,
    relevant: Relevant,
    *,
    catalogue: Collection,
    item_popularity: Mapping[Hashable, int],
    k: int = DEFAULT_K,
    embeddings: Mapping[Hashable, np.ndarray] | None = None,
    bootstrap: Bootstrap | None = DEFAULT_BOOTSTRAP,
) -> dict:
    """Every recommendation metric of one model at ``k`` (cosine diversity), ready to store with its run.

    Keys are ``Metric`` names plus the counts that tell "nobody to evaluate" from
    "everything wrong"; always present: diversity and its count are None without ``embeddings``.
    With ``bootstrap`` (the default), each per-listener metric also gets its interval
    (``model_runs.interval_key``: ``ndcg_at_k_ci_low`` ...) and the report says how it was drawn.
    """
    held_out = _held_out(relevant)
    top_k = _top_k_lists(recommendations, k)
    report = {
        "n_users": len(held_out),
        "n_users_without_recommendations": sum(not top_k.get(user) for user in held_out),
        Metric.PRECISION_AT_K.value: precision_at_k(recommendations, relevant, k=k),
        Metric.RECALL_AT_K.value: recall_at_k(recommendations, relevant, k=k),
        Metric.NDCG_AT_K.value: ndcg_at_k(recommendations, relevant, k=k),
        Metric.MAP_AT_K.value: map_at_k(recommendations, relevant, k=k),
        Metric.HIT_RATE_AT_K.value: hit_rate_at_k(recommendations, relevant, k=k),
        Metric.CATALOGUE_COVERAGE_AT_K.value: catalogue_coverage_at_k(recommendations, catalogue=catalogue, k=k),
        Metric.NOVELTY_AT_K.value: novelty_at_k(recommendations, item_popularity=item_popularity, k=k),
        "items_without_popularity": count_unknown_items(
            recommendations, known={item for item, count in item_popularity.items() if count > 0}, k=k
        ),
        Metric.INTRA_LIST_DIVERSITY_AT_K.value: None,
        "items_without_embedding": None,
    }
    if embeddings is not None:
        report[Metric.INTRA_LIST_DIVERSITY_AT_K.value] = intra_list_diversity_at_k(recommendations,
                                                                                   embeddings=embeddings, k=k)
        report["items_without_embedding"] = count_unknown_items(recommendations, known=embeddings, k=k)
    if bootstrap is not None:
        table = _per_listener_table(top_k, relevant, k=k, item_popularity=item_popularity, embeddings=embeddings)
        for name, interval in listener_intervals(table, bootstrap).items():
            report[interval_key(name, CI_LOW)] = interval.low
            report[interval_key(name, CI_HIGH)] = interval.high
        report[CI_CONFIDENCE] = bootstrap.confidence
        report[CI_RESAMPLES] = bootstrap.resamples
    return report


# --- segments: cold / regular / heavy listeners, new tracks ------------------------------

def segment_key(segment: str, name: str) -> str:
    """``fma_platform.model_runs.segment_key`` (the stored name), with this module's error."""
    try:
        return stored_segment_key(segment, name)
    except ValueError as exc:
        raise MetricInputError(str(exc)) from None


@dataclass(frozen=True)
class SegmentRule:
    """Listener segments by training-window events: cold ``<= cold_max_events``; heavy above
    the ``heavy_quantile`` of every listener's count (and above cold); regular the rest."""

    cold_max_events: int = 5
    heavy_quantile: float = 0.9

    def __post_init__(self):
        if isinstance(self.cold_max_events, bool) or not isinstance(self.cold_max_events, numbers.Integral) \
                or self.cold_max_events < 0:
            raise MetricInputError(f"cold_max_events must be an integer >= 0, got {self.cold_max_events!r}")
        if not 0.0 < float(self.heavy_quantile) < 1.0:
            raise MetricInputError(f"heavy_quantile must be in (0, 1), got {self.heavy_quantile!r}")


DEFAULT_SEGMENT_RULE = SegmentRule()


def listener_segments(training_events: Mapping[Hashable, int], *,
                      rule: SegmentRule = DEFAULT_SEGMENT_RULE) -> tuple[dict[Hashable, str], int | None]:
    """``({listener: segment}, heavy_min_events)`` of every listener in ``training_events``
    (events per listener in the training window); ``heavy_min_events`` is the smallest count
    that is heavy (None when nobody is). A listener absent from the map has 0 events: cold."""
    negative = [user for user, count in training_events.items() if count < 0]
    if negative:
        raise MetricInputError(f"listener {negative[0]!r} has a negative event count", user=negative[0])
    counts = np.array(list(training_events.values()), dtype=float)
    above = float(np.quantile(counts, rule.heavy_quantile)) if counts.size else math.inf
    above = max(above, float(rule.cold_max_events))
    segments = {user: COLD if count <= rule.cold_max_events else HEAVY if count > above else REGULAR
                for user, count in training_events.items()}
    heavy = [count for user, count in training_events.items() if segments[user] == HEAVY]
    return segments, (int(min(heavy)) if heavy else None)


def new_tracks(catalogue: Collection, item_popularity: Mapping[Hashable, int]) -> set:
    """The catalogue's tracks without a play in the training window (count 0 or absent)."""
    return {item for item in catalogue if item_popularity.get(item, 0) <= 0}


def _prefixed(segment: str, report: dict) -> dict:
    return {segment_key(segment, name): value for name, value in report.items()
            if name not in (CI_CONFIDENCE, CI_RESAMPLES)}


def segment_report(
    recommendations: Recommendations,
    relevant: Relevant,
    *,
    training_events: Mapping[Hashable, int],
    catalogue: Collection,
    item_popularity: Mapping[Hashable, int],
    k: int = DEFAULT_K,
    embeddings: Mapping[Hashable, np.ndarray] | None = None,
    bootstrap: Bootstrap | None = DEFAULT_BOOTSTRAP,
    rule: SegmentRule = DEFAULT_SEGMENT_RULE,
) -> dict:
    """:func:`ranking_report` of each segment (module doc), flat under :func:`segment_key` names.

    Listeners with held-out items or lists are segmented by ``training_events``; the
    new-track figures score every list against its listener's held-out new tracks.
    """
    catalogue = list(catalogue)
    by_listener, heavy_min_events = listener_segments(training_events, rule=rule)
    report = {segment_key(HEAVY, HEAVY_MIN_EVENTS): heavy_min_events}
    held_out = _held_out(relevant)
    users = list(held_out) + [user for user in recommendations if user not in held_out]
    common = dict(catalogue=catalogue, item_popularity=item_popularity, k=k, embeddings=embeddings,
                  bootstrap=bootstrap)
    for segment in LISTENER_SEGMENTS:
        members = [user for user in users if by_listener.get(user, COLD) == segment]
        report.update(_prefixed(segment, ranking_report(
            {user: recommendations[user] for user in members if user in recommendations},
            {user: held_out[user] for user in members if user in held_out}, **common)))
    fresh = new_tracks(catalogue, item_popularity)
    fresh_relevant = {user: items & fresh for user, items in held_out.items() if items & fresh}
    fresh_report = ranking_report({user: recommendations[user] for user in fresh_relevant if user in recommendations},
                                  fresh_relevant, **common)
    shown_fresh = {user: [item for item in top if item in fresh]
                   for user, top in _top_k_lists(recommendations, k).items()}
    fresh_report[Metric.CATALOGUE_COVERAGE_AT_K.value] = catalogue_coverage_at_k(shown_fresh, catalogue=fresh, k=k)
    fresh_report[NEW_TRACK_COUNT] = len(fresh)
    report.update(_prefixed(NEW_TRACKS, fresh_report))
    return report

