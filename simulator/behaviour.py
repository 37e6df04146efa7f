"""How a simulated listener behaves: which tracks they pick, skip, finish, like, and when.

Everything is drawn per listener as numpy arrays (``plan_plays``), then turned into
contract-valid ``ListeningEvent`` objects one play at a time (``play_events``):

* **affinity** (0..1) of a listener for a track combines genre preference, cosine
  similarity of the track's taste-space vector to the listener's taste, and a quality
  signal (favorites per listen); it drives skips, completes, likes and dislikes. The taste
  space is the audio embedding or latent track attributes the recommenders never see
  (``simulator.ground_truth`` says which, and what recommenders can see under each);
* **candidates**: a play picks a genre from the listener's preferences, then a track of
  that genre with weight ``(listens + 1) ** popularity_bias * exp(TASTE_PULL * similarity)``;
  with probability ``exploration`` it picks any track of the catalogue instead;
* **outcomes**: ``play``, then an early ``skip`` (a few seconds in; less likely the higher
  the affinity) or ``complete`` (position = clip length), sometimes a ``pause`` and a
  ``progress`` before the end, then maybe a ``like`` / ``dislike``;
* **time**: plays form sessions placed on simulated days after ``start`` (evening-heavy),
  sessions of one listener never overlap, timestamps increase within a session.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from fma_platform.events import EventSource, EventType, ListeningEvent, new_event
from simulator.catalogue import UNKNOWN_GENRE, CatalogueArrays
from simulator.errors import CatalogueError, SimulationParameterError
from simulator.listeners import Listener

# Affinity logit weights: genre log-lift, taste-space cosine similarity, track quality z-score.
GENRE_WEIGHT = 0.8
TASTE_WEIGHT = 2.5
QUALITY_WEIGHT = 0.4
GENRE_LIFT_CLIP = 3.0
# How strongly taste similarity concentrates the pick within a genre.
TASTE_PULL = 3.0
# Skip probability: logit(skip_proneness) + SKIP_SLOPE * (0.5 - affinity).
SKIP_SLOPE = 4.0
SKIP_POSITION_GAMMA = (2.0, 2.5)  # seconds after the first one: mean ~6 s in
PAUSE_PROBABILITY = 0.08  # of a completed play
PAUSE_MEAN_S = 20.0
PROGRESS_PROBABILITY = 0.3  # of a completed play
LIKE_MAX = 0.25  # like probability of a completed play at affinity 1 (scales with affinity**2)
LIKE_AFTER_SKIP = 0.01
DISLIKE_MAX = 0.35  # dislike probability of a skipped play at affinity 0 (scales with (1-affinity)**2)
DISLIKE_AFTER_COMPLETE = 0.02
REACTION_DELAY_S = (0.5, 3.0)
TRACK_GAP_S = (0.5, 3.0)
MEAN_SESSION_PLAYS = 8.0
MIN_SESSION_GAP_S = 60.0
# Share of sessions starting in each hour of the (UTC) day: quiet nights, evening peak.
HOURLY_ACTIVITY = np.array(
    [2, 1, 1, 1, 1, 1, 2, 4, 5, 5, 5, 5, 6, 6, 5, 5, 6, 7, 8, 9, 9, 8, 6, 4], dtype=np.float64
)
HOURLY_ACTIVITY /= HOURLY_ACTIVITY.sum()
NO_REACTION, LIKE, DISLIKE = 0, 1, 2
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class TasteModel:
    """One listener's view of the catalogue: taste similarity and within-genre pick weights."""

    similarity: np.ndarray  # (n_tracks,) cosine of the taste-space vector and the taste
    genre_shares: np.ndarray  # (n_genres,) sums to 1
    cumulative_pick: np.ndarray  # (n_known_tracks,) cumsum of weights normalised per genre


@dataclass(frozen=True)
class PlayPlan:
    """One listener's plays as arrays (index i is the i-th play, in time order)."""

    listener: Listener
    track_index: np.ndarray  # into CatalogueArrays
    affinity: np.ndarray
    clip_s: np.ndarray
    skipped: np.ndarray  # bool
    end_position_s: np.ndarray  # skip position, or clip length when completed
    pause_position_s: np.ndarray  # NaN when the play has no pause
    pause_s: np.ndarray  # pause length (0 without pause)
    progress_position_s: np.ndarray  # NaN when the play has no progress event
    reaction: np.ndarray  # NO_REACTION, LIKE or DISLIKE
    reaction_delay_s: np.ndarray
    start_offset_s: np.ndarray  # play start, seconds after the simulation start
    session_index: np.ndarray

    @property
    def plays(self) -> int:
        return int(self.track_index.size)

    def event_count(self) -> int:
        return int(event_counts(self.pause_position_s, self.progress_position_s, self.reaction).sum())


def affinity_at(listener: Listener, catalogue: CatalogueArrays, similarity: np.ndarray,
                index: np.ndarray) -> np.ndarray:
    """The listener's affinity (0..1) for the tracks at ``index`` of ``catalogue``.

    ``similarity`` is the listener's row of ``taste_similarities``. A track of a genre with
    share ``p`` among ``G`` genres gets ``log(G * p)`` (0 for a neutral share and for
    tracks without a top-level genre); taste similarity is the cosine of the track's
    taste-space vector with the listener's taste (0 without a taste space).
    """
    shares = listener.preference_vector(catalogue.genre_ids)
    lift = np.clip(np.log(np.maximum(shares * len(shares), 1e-12)), -GENRE_LIFT_CLIP, GENRE_LIFT_CLIP)
    codes = catalogue.genre_codes[index]
    genre_term = np.where(codes == UNKNOWN_GENRE, 0.0, lift[np.maximum(codes, 0)])
    logit = GENRE_WEIGHT * genre_term + TASTE_WEIGHT * similarity[index] + QUALITY_WEIGHT * catalogue.quality[index]
    return _sigmoid(logit)


def taste_similarities(listeners: Sequence[Listener], catalogue: CatalogueArrays,
                       space: np.ndarray | None) -> np.ndarray:
    """Cosine similarity of every track's row of ``space`` (unit taste-space vectors aligned to
    the catalogue) with each listener's taste: (listeners, tracks).

    Rows are 0 for listeners without a taste vector, everything is 0 without a space
    (``space`` None: a catalogue without embeddings under the embedding ground truth).
    One matrix product for many listeners: per-listener products are ~50x slower on a
    busy machine (BLAS threads spin on small work).
    """
    similarities = np.zeros((len(listeners), catalogue.size))
    if space is None:
        return similarities
    with_taste = [row for row, listener in enumerate(listeners) if listener.taste_vector is not None]
    if not with_taste:
        return similarities
    tastes = np.array([listeners[row].taste_vector for row in with_taste], dtype=np.float64)
    if tastes.shape[1] != space.shape[1]:
        raise CatalogueError(
            f"listener tastes have {tastes.shape[1]} dimensions, the taste space {space.shape[1]}")
    similarities[with_taste] = tastes @ space.T
    return similarities


def taste_model(listener: Listener, catalogue: CatalogueArrays, similarity: np.ndarray) -> TasteModel:
    """Pick weights of one listener (computed once, used for all its plays).

    ``similarity`` is the listener's row of ``taste_similarities``.
    """
    known = catalogue.known_genre_tracks
    log_weight = listener.popularity_bias * catalogue.log_listens[:known] + TASTE_PULL * similarity[:known]
    starts = catalogue.segment_starts[:-1]
    sizes = np.diff(catalogue.segment_starts)
    log_weight -= np.repeat(np.maximum.reduceat(log_weight, starts), sizes)  # no overflow in exp
    weight = np.exp(log_weight)
    weight /= np.repeat(np.add.reduceat(weight, starts), sizes)
    return TasteModel(
        similarity=similarity,
        genre_shares=listener.preference_vector(catalogue.genre_ids),
        cumulative_pick=np.cumsum(weight),
    )


def sample_tracks(
    listener: Listener, catalogue: CatalogueArrays, model: TasteModel, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices of ``n`` tracks picked by the listener: genre by preference, then track by weight.

    Each genre's weights sum to 1, so genre ``g``'s tracks cover ``[g, g + 1)`` of the
    cumulative weights and one ``searchsorted`` picks all tracks at once.
    """
    genres = rng.choice(len(catalogue.genre_ids), size=n, p=model.genre_shares)
    picks = np.searchsorted(model.cumulative_pick, genres + rng.random(n), side="right")
    picks = np.clip(picks, catalogue.segment_starts[genres], catalogue.segment_starts[genres + 1] - 1)
    explore = rng.random(n) < listener.exploration
    picks[explore] = rng.integers(0, catalogue.size, size=int(explore.sum()))
    return picks


def plan_plays(
    listener: Listener,
    catalogue: CatalogueArrays,
    *,
    similarity: np.ndarray,
    event_budget: int,
    days: int,
    rng: np.random.Generator,
) -> PlayPlan:
    """The listener's plays producing about ``event_budget`` events, spread over ``days``.

    ``similarity`` is the listener's row of ``taste_similarities``.

    Draws more plays than needed (a play makes at least two events), then keeps the
    longest prefix whose events fit the budget (at least one play).
    """
    model = taste_model(listener, catalogue, similarity)
    drawn = max(event_budget // 2, 1)
    track_index = sample_tracks(listener, catalogue, model, drawn, rng)
    track_affinity = affinity_at(listener, catalogue, similarity, track_index)
    outcomes = draw_outcomes(listener, track_affinity, catalogue.clip_s[track_index], rng)
    per_play = event_counts(outcomes["pause_position_s"], outcomes["progress_position_s"], outcomes["reaction"])
    keep = max(int(np.searchsorted(np.cumsum(per_play), event_budget, side="right")), 1)
    track_index, track_affinity = track_index[:keep], track_affinity[:keep]
    outcomes = {name: values[:keep] for name, values in outcomes.items()}
    spans = play_spans(outcomes, rng)
    start_offset_s, session_index = schedule_sessions(spans, days=days, rng=rng)
    return PlayPlan(
        listener=listener,
        track_index=track_index,
        affinity=track_affinity,
        clip_s=catalogue.clip_s[track_index],
        skipped=outcomes["skipped"],
        end_position_s=outcomes["end_position_s"],
        pause_position_s=outcomes["pause_position_s"],
        pause_s=outcomes["pause_s"],
        progress_position_s=outcomes["progress_position_s"],
        reaction=outcomes["reaction"],
        reaction_delay_s=outcomes["reaction_delay_s"],
        start_offset_s=start_offset_s,
        session_index=session_index,
    )


def draw_outcomes(
    listener: Listener, affinity: np.ndarray, clip_s: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Skip or complete, pause, progress and like/dislike of each play, from its affinity."""
    n = affinity.size
    proneness = min(max(listener.skip_proneness, 1e-6), 1.0 - 1e-6)
    skip_logit = np.log(proneness / (1.0 - proneness)) + SKIP_SLOPE * (0.5 - affinity)
    skipped = rng.random(n) < _sigmoid(skip_logit)
    skip_position = np.minimum(1.0 + rng.gamma(*SKIP_POSITION_GAMMA, size=n), 0.9 * clip_s)
    end_position = np.round(np.where(skipped, skip_position, clip_s), 3)
    has_pause = ~skipped & (rng.random(n) < PAUSE_PROBABILITY)
    # Pauses happen in the first half, progress reports in the second: one fixed event order.
    pause_position = np.where(has_pause, np.round(rng.uniform(0.1, 0.45, n) * clip_s, 3), np.nan)
    has_progress = ~skipped & (rng.random(n) < PROGRESS_PROBABILITY)
    progress_position = np.where(has_progress, np.round(rng.uniform(0.55, 0.9, n) * clip_s, 3), np.nan)
    like_p = np.where(skipped, LIKE_AFTER_SKIP, LIKE_MAX * affinity**2)
    dislike_p = np.where(skipped, DISLIKE_MAX * (1.0 - affinity) ** 2, DISLIKE_AFTER_COMPLETE * (1.0 - affinity))
    draw = rng.random(n)
    reaction = np.where(draw < like_p, LIKE, np.where(draw < like_p + dislike_p, DISLIKE, NO_REACTION))
    return {
        "skipped": skipped,
        "end_position_s": end_position,
        "pause_position_s": pause_position,
        "pause_s": np.where(has_pause, np.round(1.0 + rng.exponential(PAUSE_MEAN_S, n), 3), 0.0),
        "progress_position_s": progress_position,
        "reaction": reaction,
        "reaction_delay_s": np.round(rng.uniform(*REACTION_DELAY_S, n), 3),
    }


def play_spans(outcomes: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Wall-clock seconds from one play's start to the next play's start in the same session."""
    reaction_time = np.where(outcomes["reaction"] > 0, outcomes["reaction_delay_s"], 0.0)
    gap = rng.uniform(*TRACK_GAP_S, outcomes["skipped"].size)
    return outcomes["end_position_s"] + outcomes["pause_s"] + reaction_time + gap


def schedule_sessions(spans: np.ndarray, *, days: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets (seconds after the simulation start) and session index of each play.

    Sessions have geometric lengths (mean ``MEAN_SESSION_PLAYS``), start on a random day
    at an evening-heavy hour, and are pushed later when they would overlap the previous
    one (so the last may spill past ``days``).
    """
    n = spans.size
    lengths = rng.geometric(1.0 / MEAN_SESSION_PLAYS, size=n)
    session_index = np.searchsorted(np.cumsum(lengths), np.arange(n), side="right")
    sessions = int(session_index[-1]) + 1
    first_play = np.searchsorted(session_index, np.arange(sessions), side="left")
    play_start_in_run = np.concatenate(([0.0], np.cumsum(spans)[:-1]))
    offset_in_session = play_start_in_run - play_start_in_run[first_play][session_index]
    durations = np.add.reduceat(spans, first_play)
    wanted = np.sort(
        rng.integers(0, days, sessions) * 86_400.0
        + rng.choice(24, size=sessions, p=HOURLY_ACTIVITY) * 3_600.0
        + rng.uniform(0.0, 3_600.0, sessions)
    )
    # start_k = max(wanted_k, start_{k-1} + duration_{k-1} + gap), solved with a running max.
    busy = np.concatenate(([0.0], np.cumsum(durations + MIN_SESSION_GAP_S)[:-1]))
    session_start = busy + np.maximum.accumulate(wanted - busy)
    return session_start[session_index] + offset_in_session, session_index


def event_counts(pause_position_s: np.ndarray, progress_position_s: np.ndarray, reaction: np.ndarray) -> np.ndarray:
    """Events of each play: play and its end, plus pause, progress and reaction when present."""
    return 2 + (~np.isnan(pause_position_s)).astype(np.int64) + ~np.isnan(progress_position_s) + (reaction > 0)


def play_events(plan: PlayPlan, catalogue: CatalogueArrays, *, start: datetime,
                run_key: str) -> Iterator[ListeningEvent]:
    """The listener's events in time order; ids derive from ``run_key`` (same run, same ids)."""
    user_id = plan.listener.user_id
    start_ms = epoch_ms(start)
    track_ids = catalogue.track_ids[plan.track_index].tolist()
    columns = zip(
        track_ids, plan.start_offset_s.tolist(), plan.session_index.tolist(), plan.clip_s.tolist(),
        plan.skipped.tolist(), plan.end_position_s.tolist(), plan.pause_position_s.tolist(),
        plan.pause_s.tolist(), plan.progress_position_s.tolist(), plan.reaction.tolist(),
        plan.reaction_delay_s.tolist(),
    )
    sequence = 0
    for track_id, offset, session, clip, skipped, end, pause_at, pause_s, progress_at, reaction, delay in columns:
        session_id = f"{user_id}-{run_key[:12]}-{session:05d}"
        play_ms = start_ms + round(offset * 1000)
        for event_type, position, at_s in _play_moments(
            skipped, end, pause_at, pause_s, progress_at, reaction, delay
        ):
            yield new_event(
                event_id=_event_id(run_key, user_id, sequence),
                user_id=user_id,
                track_id=track_id,
                type=event_type,
                position_s=position,
                listened_s=position,
                track_duration_s=clip,
                client_ts=_EPOCH + timedelta(milliseconds=play_ms + round(at_s * 1000)),
                session_id=session_id,
                source=EventSource.SIMULATOR,
            )
            sequence += 1


def _play_moments(
    skipped: bool, end: float, pause_at: float, pause_s: float, progress_at: float, reaction: int, delay: float
) -> Iterator[tuple[EventType, float, float]]:
    """(type, position, seconds after the play started) of each event of one play, in order.

    Positions and listened time are equal: simulated listeners do not seek.
    """
    yield EventType.PLAY, 0.0, 0.0
    paused = pause_s if pause_at == pause_at else 0.0  # NaN != NaN: no pause
    if paused:
        yield EventType.PAUSE, pause_at, pause_at
    if progress_at == progress_at:
        yield EventType.PROGRESS, progress_at, progress_at + paused
    yield (EventType.SKIP if skipped else EventType.COMPLETE), end, end + paused
    if reaction == LIKE:
        yield EventType.LIKE, end, end + paused + delay
    elif reaction == DISLIKE:
        yield EventType.DISLIKE, end, end + paused + delay


def _event_id(run_key: str, user_id: str, sequence: int) -> str:
    return hashlib.blake2b(f"{run_key}|{user_id}|{sequence}".encode(), digest_size=16).hexdigest()


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch of a timezone-aware ``moment``.

    A naive ``moment`` raises ``SimulationParameterError``.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SimulationParameterError(
            f"start must be timezone-aware (e.g. 2024-01-01T00:00:00+00:00), got {moment.isoformat()}")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
