"""Synthetic listeners with known tastes: the ground truth a recommender should recover.

Each ``Listener`` carries latent parameters drawn once from a seeded generator: genre
preferences (a Dirichlet concentrated on 1-3 favourite top-level genres), a taste
direction in the run's taste space (the audio embedding, or latent track attributes:
``simulator.ground_truth``), a long-tailed activity level, a popularity-bias
exponent, skip-proneness and an exploration rate. They are saved next to the events
(``simulator.sinks.write_listeners``) so evaluations can compare what was recovered
with what was planted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.errors import SimulationParameterError
from simulator.ground_truth import GroundTruth

USER_ID_PREFIX = "sim-"
# How many favourite genres a listener has (1, 2 or 3) and how likely each count is.
FAVOURITE_COUNTS = (1, 2, 3)
FAVOURITE_COUNT_PROBABILITIES = (0.45, 0.35, 0.20)
# Dirichlet concentration of favourite and of other genres: favourites get most of the mass.
FAVOURITE_ALPHA = 6.0
BACKGROUND_ALPHA = 0.15
# Activity ~ lognormal(0, sigma), scaled to mean 1: with sigma 1.2 the top 10% of
# listeners hold ~45% of all activity.
ACTIVITY_SIGMA = 1.2
# Popularity bias ~ Gamma(shape, scale): mean 0.6, sampling weight is (listens + 1) ** bias.
POPULARITY_BIAS_SHAPE = 4.0
POPULARITY_BIAS_SCALE = 0.15
SKIP_PRONENESS_BETA = (2.0, 5.0)  # mean ~0.29: base skip probability at neutral affinity
EXPLORATION_BETA = (2.0, 14.0)  # mean 0.125: share of plays picked outside the taste model
SEED_TRACKS = 3  # tracks whose mean taste-space vector defines the taste
TASTE_NOISE = 0.3  # norm of the noise added to the seed-track mean (before normalising)


@dataclass(frozen=True)
class Listener:
    """One simulated listener and its latent taste (all fields are ground truth)."""

    user_id: str
    genre_ids: tuple[int, ...]  # the top-level genres the preferences are over
    genre_preferences: tuple[float, ...]  # share of listening per genre, sums to 1
    favourite_genre_ids: tuple[int, ...]  # the 1-3 genres the Dirichlet was concentrated on
    taste_vector: tuple[float, ...] | None  # unit direction in the taste space, None without one
    activity: float  # relative activity, mean 1 over the population; long-tailed
    popularity_bias: float  # exponent on listens in the candidate sampling weight
    skip_proneness: float  # skip probability for a track of neutral affinity
    exploration: float  # probability that a play ignores the taste model
    taste_space: GroundTruth = GroundTruth.EMBEDDING  # what taste_vector is a direction in

    def preference_vector(self, genre_ids: Sequence[int]) -> np.ndarray:
        """Preferences aligned to ``genre_ids`` (unknown genres 0), renormalised to sum 1."""
        shares = dict(zip(self.genre_ids, self.genre_preferences))
        vector = np.array([shares.get(genre_id, 0.0) for genre_id in genre_ids], dtype=np.float64)
        total = vector.sum()
        if total <= 0.0:
            return np.full(len(genre_ids), 1.0 / max(len(genre_ids), 1))
        return vector / total

    def to_document(self) -> dict:
        """The listener as a MongoDB/JSON document, labelled as simulated."""
        return {
            "_id": self.user_id,
            "user_id": self.user_id,
            "simulated": True,
            "source": "simulator",
            "genre_preferences": [
                {"genre_id": genre_id, "share": share}
                for genre_id, share in zip(self.genre_ids, self.genre_preferences)
            ],
            "favourite_genre_ids": list(self.favourite_genre_ids),
            "taste_vector": None if self.taste_vector is None else list(self.taste_vector),
            "taste_space": str(self.taste_space),
            "activity": self.activity,
            "popularity_bias": self.popularity_bias,
            "skip_proneness": self.skip_proneness,
            "exploration": self.exploration,
        }


def user_id_of(index: int) -> str:
    """The user id of the ``index``-th listener (0-based): ``sim-000001`` for 0."""
    return f"{USER_ID_PREFIX}{index + 1:06d}"


def make_listeners(
    n: int,
    *,
    genres: Sequence[int],
    seed: int,
    taste_rows_by_genre: Mapping[int, np.ndarray] | None = None,
    taste_space: GroundTruth = GroundTruth.EMBEDDING,
) -> list[Listener]:
    """``n`` listeners with tastes over ``genres`` drawn from ``seed`` (same seed, same listeners).

    ``taste_rows_by_genre`` maps a genre id to unit taste-space rows of its tracks (their
    embeddings, or latent attributes: ``taste_space`` says which); when given, each
    listener's taste is the mean of ``SEED_TRACKS`` tracks from its favourite genres plus
    noise, normalised.
    """
    if n < 0:
        raise SimulationParameterError(f"the number of listeners must not be negative, got {n}")
    genre_ids = tuple(int(genre) for genre in genres)
    if not genre_ids:
        raise SimulationParameterError("listeners need at least one genre to have preferences over")
    if len(set(genre_ids)) != len(genre_ids):
        raise SimulationParameterError(f"genres must be distinct, got {list(genre_ids)}")
    rng = np.random.default_rng([seed, 0])
    rows_by_genre = {int(g): rows for g, rows in (taste_rows_by_genre or {}).items() if len(rows)}
    return [_make_listener(index, genre_ids, rows_by_genre, rng, GroundTruth(taste_space)) for index in range(n)]


def _make_listener(
    index: int, genre_ids: tuple[int, ...], rows_by_genre: Mapping[int, np.ndarray], rng: np.random.Generator,
    taste_space: GroundTruth,
) -> Listener:
    preferences, favourites = draw_genre_preferences(len(genre_ids), rng)
    favourite_ids = tuple(genre_ids[i] for i in favourites)
    taste = draw_taste_vector(favourite_ids, preferences[favourites], rows_by_genre, rng)
    activity = rng.lognormal(0.0, ACTIVITY_SIGMA) / np.exp(ACTIVITY_SIGMA**2 / 2)
    return Listener(
        user_id=user_id_of(index),
        genre_ids=genre_ids,
        genre_preferences=tuple(float(p) for p in preferences),
        favourite_genre_ids=favourite_ids,
        taste_vector=None if taste is None else tuple(float(x) for x in taste),
        activity=float(activity),
        popularity_bias=float(rng.gamma(POPULARITY_BIAS_SHAPE, POPULARITY_BIAS_SCALE)),
        skip_proneness=float(rng.beta(*SKIP_PRONENESS_BETA)),
        exploration=float(rng.beta(*EXPLORATION_BETA)),
        taste_space=taste_space,
    )


def draw_genre_preferences(n_genres: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Genre shares from a Dirichlet concentrated on 1-3 favourites; (shares, favourite indices)."""
    count = min(int(rng.choice(FAVOURITE_COUNTS, p=FAVOURITE_COUNT_PROBABILITIES)), n_genres)
    favourites = np.sort(rng.choice(n_genres, size=count, replace=False))
    alpha = np.full(n_genres, BACKGROUND_ALPHA)
    alpha[favourites] = FAVOURITE_ALPHA
    shares = rng.dirichlet(alpha)
    # Tiny alphas can underflow to exact zeros; keep every genre reachable.
    shares = np.maximum(shares, 1e-12)
    return shares / shares.sum(), favourites


def draw_taste_vector(
    favourite_ids: tuple[int, ...],
    favourite_shares: np.ndarray,
    rows_by_genre: Mapping[int, np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray | None:
    """Unit mean of a few seed tracks' taste-space rows from the favourite genres, plus noise;
    None without a taste space."""
    if not rows_by_genre:
        return None
    pool = [genre for genre in favourite_ids if genre in rows_by_genre]
    weights = np.array([favourite_shares[favourite_ids.index(genre)] for genre in pool], dtype=np.float64)
    if not pool:  # favourites without rows (e.g. no embedded track): seed from any genre with rows
        pool = sorted(rows_by_genre)
        weights = np.ones(len(pool))
    seed_genres = rng.choice(len(pool), size=SEED_TRACKS, p=weights / weights.sum())
    seeds = [rows_by_genre[pool[g]][rng.integers(len(rows_by_genre[pool[g]]))] for g in seed_genres]
    mean = np.mean(seeds, axis=0)
    noise = rng.normal(0.0, TASTE_NOISE / np.sqrt(mean.size), size=mean.size)
    taste = mean / max(np.linalg.norm(mean), 1e-12) + noise
    return taste / max(np.linalg.norm(taste), 1e-12)
