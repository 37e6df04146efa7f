"""One simulation run: listeners, their plays, and their listening events, from a seed.

``simulate`` draws the listeners and every listener's plays as numpy arrays up front
(cheap); ``SimulationResult.events()`` turns them into contract-valid events lazily, so
a 200k-event run never holds 200k event objects. The same catalogue, parameters and
seed give the same listeners, events and event ids: writing a run twice is a no-op.
``ground_truth`` picks what the listeners' tastes are made of (``simulator.ground_truth``:
the audio embedding by default, or latent track attributes the recommenders never see).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from fma_platform.events import ListeningEvent
from simulator.behaviour import PlayPlan, epoch_ms, plan_plays, play_events, taste_similarities
from simulator.catalogue import CatalogueArrays, prepare_catalogue
from simulator.errors import SimulationParameterError
from simulator.ground_truth import GroundTruth, parse_ground_truth, taste_space
from simulator.listeners import Listener, make_listeners

DEFAULT_DAYS = 28
MIN_EVENTS_PER_LISTENER = 2  # one play and how it ended
SIMILARITY_CHUNK = 64  # listeners per similarity matrix product (64 x 100k floats = 51 MB)


@dataclass(frozen=True)
class SimulationResult:
    """The listeners of a run and their planned plays; ``events()`` yields the events."""

    listeners: list[Listener]
    plans: list[PlayPlan]
    catalogue: CatalogueArrays
    start: datetime
    days: int
    seed: int
    run_key: str  # fingerprint of catalogue + parameters; event and session ids derive from it
    ground_truth: GroundTruth = GroundTruth.EMBEDDING  # what the tastes are made of

    @property
    def event_count(self) -> int:
        return sum(plan.event_count() for plan in self.plans)

    def events(self) -> Iterator[ListeningEvent]:
        """Every event, listener by listener, each listener's in time order (a fresh iterator)."""
        for plan in self.plans:
            yield from play_events(plan, self.catalogue, start=self.start, run_key=self.run_key)


def simulate(
    catalogue: pd.DataFrame | CatalogueArrays,
    *,
    n_listeners: int,
    target_events: int,
    seed: int,
    start: datetime,
    days: int = DEFAULT_DAYS,
    ground_truth: GroundTruth | str = GroundTruth.EMBEDDING,
) -> SimulationResult:
    """Simulate ``n_listeners`` listening for ``days`` from ``start``: about ``target_events`` events.

    Each listener gets a share of ``target_events`` proportional to its activity (at least
    ``MIN_EVENTS_PER_LISTENER``), so a few heavy listeners make most of the events.
    ``ground_truth`` is the taste space (``simulator.ground_truth``; latent attributes are
    drawn from ``seed`` and stay in memory).
    Raises ``EmptyCatalogueError``/``CatalogueError`` for an unusable catalogue and
    ``SimulationParameterError`` (a ``ValueError``) for bad parameters (e.g. a ``start`` without a timezone).
    """
    _check_parameters(n_listeners=n_listeners, target_events=target_events, days=days, start=start)
    ground_truth = parse_ground_truth(ground_truth)
    arrays = catalogue if isinstance(catalogue, CatalogueArrays) else prepare_catalogue(catalogue)
    space = taste_space(arrays, ground_truth, seed=seed)
    listeners = make_listeners(n_listeners, genres=arrays.genre_ids, seed=seed,
                               taste_rows_by_genre=arrays.rows_by_genre(space), taste_space=ground_truth)
    budgets = event_budgets([listener.activity for listener in listeners], target_events)
    plans = plan_all_plays(listeners, arrays, space, budgets=budgets, days=days, seed=seed)
    return SimulationResult(
        listeners=listeners,
        plans=plans,
        catalogue=arrays,
        start=start,
        days=days,
        seed=seed,
        run_key=run_key_of(arrays, n_listeners=n_listeners, target_events=target_events, seed=seed,
                           start=start, days=days, ground_truth=ground_truth),
        ground_truth=ground_truth,
    )


def plan_all_plays(
    listeners: list[Listener], catalogue: CatalogueArrays, space: np.ndarray | None, *, budgets: np.ndarray,
    days: int, seed: int,
) -> list[PlayPlan]:
    """Every listener's plays; taste similarities (over ``space``) are computed for a chunk of
    listeners at once.

    Listener ``i`` draws from its own generator (``seed``, ``i``), so its plays do not
    depend on the chunking or on the other listeners.
    """
    plans = []
    for first in range(0, len(listeners), SIMILARITY_CHUNK):
        chunk = listeners[first:first + SIMILARITY_CHUNK]
        for offset, (listener, similarity) in enumerate(zip(chunk, taste_similarities(chunk, catalogue, space))):
            index = first + offset
            plans.append(plan_plays(
                listener, catalogue, similarity=similarity, event_budget=int(budgets[index]), days=days,
                rng=np.random.default_rng([seed, 1, index]),
            ))
    return plans


def event_budgets(activities: list[float], target_events: int) -> np.ndarray:
    """Events per listener: ``target_events`` split in proportion to activity, at least the minimum."""
    weights = np.asarray(activities, dtype=np.float64)
    if weights.size == 0:
        return np.zeros(0, dtype=np.int64)
    shares = target_events * weights / weights.sum()
    return np.maximum(np.round(shares), MIN_EVENTS_PER_LISTENER).astype(np.int64)


def run_key_of(
    catalogue: CatalogueArrays, *, n_listeners: int, target_events: int, seed: int, start: datetime, days: int,
    ground_truth: GroundTruth = GroundTruth.EMBEDDING,
) -> str:
    """A fingerprint of everything that determines a run's events (32 hex digits).

    The default ground truth adds nothing to it, so runs made before there was a choice keep
    their keys (and event ids); another one is part of the key.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{n_listeners}|{target_events}|{seed}|{epoch_ms(start)}|{days}|".encode())
    if ground_truth is not GroundTruth.EMBEDDING:
        digest.update(f"ground_truth={ground_truth}|".encode())
    digest.update(np.ascontiguousarray(catalogue.track_ids).tobytes())
    return digest.hexdigest()


def _check_parameters(*, n_listeners: int, target_events: int, days: int, start: datetime) -> None:
    if n_listeners < 1:
        raise SimulationParameterError(f"n_listeners must be at least 1, got {n_listeners}")
    if target_events < 1:
        raise SimulationParameterError(f"target_events must be at least 1, got {target_events}")
    if days < 1:
        raise SimulationParameterError(f"days must be at least 1, got {days}")
    epoch_ms(start)  # raises for a naive datetime
