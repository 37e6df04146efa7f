"""The value of real time: the stream's live lists against the nightly batch list, on the holdout.

Question: does re-ranking a listener's recommendations after every event (the streaming
job) find their next play more often than the list computed before the holdout?

Replay (per holdout listener, events in time order):

1. **Events**: the listener's last ``recent_events`` training events, then every held-out
   event (``interactions.split_by_time``: the same time-based split as the training job).
   Events at one instant are ordered play < pause/progress < skip/complete < like/dislike.
2. **Counted plays** (the targets): a held-out ``play`` whose track is then completed or
   liked before the next ``play`` starts, and not skipped early
   (``fma_platform.listening.is_early_skip``, the rule of training and stream), of a track
   the listener never touched before (no training event, no earlier held-out event):
   repeats are no target, as in the training job's holdout. Skipped plays, late-skipped
   plays without a complete or like, and repeats are never targets.
3. **Points**: after the last training event and after every held-out event, the target
   is the first counted play that *starts after* that event; points with no later counted
   play are dropped.
4. **Live list** at a point: the streaming job's own ``recommend_for`` (session taste +
   ALS blend, recently heard tracks excluded) on the history the stream would have read at
   that moment: the listener's events up to and including that event, at most
   ``recent_events``, within ``HISTORY_HALF_LIVES`` half-lives of it (``batch.load_histories``'
   window), with the trained model's ALS factors (``models.load_als_factors``).
5. **Batch list**: the trained model's top-k for the listener, computed from training
   events only (fixed through the holdout).
6. **Scores**: hit rate@k and NDCG@k of each point's list against its one target
   (``spark_jobs.metrics.accuracy_by_user``), averaged per listener; live, batch and the
   paired live - batch uplift get percentile-bootstrap intervals over listeners
   (``spark_jobs.metrics.listener_intervals``: each listener one unit, however many points).
   A diagnostic beside them: the share of each top-k the listener had already heard (the
   stream excludes only its last ``exclude_recent`` events; the batch list every training track).

The result is one ``realtime_value`` document per training run (by the ALS final run's
``run_id``, ``fma_platform.contracts``), read by the models page.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from pymongo.database import Database
from pyspark.sql import DataFrame, Window, functions as F

from fma_platform.contracts import ALS_ITEM_FACTORS, ALS_USER_FACTORS, Collection as MongoCollection
from fma_platform.embeddings import TrackEmbeddings
from fma_platform.events import EventType
from fma_platform.listening import is_early_skip
from fma_platform.model_runs import (
    CI_CONFIDENCE, CI_HIGH, CI_LOW, CI_RESAMPLES, Metric, RunKind, interval_key, run_id_of,
)
from spark_jobs.metrics import DEFAULT_BOOTSTRAP, Bootstrap, Interval, accuracy_by_user, listener_intervals
from spark_jobs.recommend.errors import RecommendError
from spark_jobs.recommend.events import DURATION, EVENT_TIME, LISTENED, TRACK_ID, USER_ID
from spark_jobs.recommend.interactions import split_by_time
from spark_jobs.recommend.tracks import RecommendableTracks
from spark_jobs.streaming.batch import HISTORY_HALF_LIVES, StreamConfig, recommend_for
from spark_jobs.streaming.models import AlsFactors, StreamCatalogue, load_als_factors
from spark_jobs.streaming.taste import HISTORY_FIELDS

log = logging.getLogger(__name__)

HIT_RATE = Metric.HIT_RATE_AT_K.value
NDCG = Metric.NDCG_AT_K.value
METRICS = (HIT_RATE, NDCG)
LIVE, BATCH, UPLIFT = "live", "batch", "uplift"
MODEL = "als"  # the model run the measurement belongs to (the job's final ALS run)
DEFAULT_MAX_LISTENERS = 200  # a training run replays at most this many holdout listeners (~13 lists each)
STEP_CAP = 10  # the per-step chart pools every point after this many held-out events
HEARD_SHARE = "heard_share_at_k"  # diagnostic: share of a top-k the listener had already touched
PLAY_RULE = ("a held-out play completed or liked before the next play starts, not skipped early, of a track "
             "the listener never touched before")
# Order of events at one instant (a like follows its play's end, which follows its start).
KIND_ORDER = {EventType.PLAY.value: 0, EventType.PAUSE.value: 1, EventType.PROGRESS.value: 1,
              EventType.SKIP.value: 2, EventType.COMPLETE.value: 2, EventType.LIKE.value: 3,
              EventType.DISLIKE.value: 3}
COUNTED_ENDS = frozenset({EventType.COMPLETE.value, EventType.LIKE.value})


class RealtimeValueError(RecommendError):
    """Replay input that cannot be measured (history after the holdout, bad parameters)."""


# --- the replay -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ListenerReplay:
    """One listener's events in time order and the points where their lists are scored.

    ``events`` (``HISTORY_FIELDS``, positions 0..n-1) are the training tail then the
    holdout; ``points[i]`` is a position, ``targets[i]`` the track of the first counted play
    starting after it, at position ``target_positions[i]`` (always > ``points[i]``).
    """

    user_id: str
    events: pd.DataFrame
    first_holdout: int
    points: tuple[int, ...]
    targets: tuple[int, ...]
    target_positions: tuple[int, ...]
    trained_tracks: frozenset[int] = frozenset()  # every track of the listener's training events

    def heard_by(self, point: int) -> set[int]:
        """Tracks the listener had touched by ``point``: in training or up to that event."""
        return set(self.trained_tracks) | set(self.events["track_id"].iloc[: point + 1].tolist())


@dataclass(frozen=True)
class ReplayInputs:
    """What the replay reads from the events: training tails, held-out events, trained tracks."""

    history_tail: pd.DataFrame  # user_id + HISTORY_FIELDS: each listener's last training events
    held_out: pd.DataFrame  # user_id + HISTORY_FIELDS: each listener's held-out events
    trained_tracks: dict[str, set[int]]  # every track of each listener's training events


def in_time_order(events: pd.DataFrame) -> pd.DataFrame:
    """``events`` by time, simultaneous ones by ``KIND_ORDER`` (then as given), positions 0..n-1."""
    kind_rank = events["type"].map(KIND_ORDER).fillna(len(KIND_ORDER)).to_numpy()
    times = pd.DatetimeIndex(pd.to_datetime(events[EVENT_TIME], utc=True)).asi8
    order = np.lexsort((np.arange(len(events)), kind_rank, times))
    ordered = events.iloc[order].reset_index(drop=True)
    ordered[EVENT_TIME] = pd.to_datetime(ordered[EVENT_TIME], utc=True)
    return ordered


def counted_plays(events: pd.DataFrame, *, first_holdout: int, trained_tracks: Collection[int]) -> list[tuple[int, int]]:
    """``(position, track)`` of each counted held-out play (module doc, step 2), in time order."""
    kinds = events["type"].to_numpy()
    tracks = events[TRACK_ID].to_numpy(dtype=np.int64)
    early = (kinds == EventType.SKIP.value) & is_early_skip(events[LISTENED].astype(float).to_numpy(),
                                                            events[DURATION].to_numpy())
    starts = np.flatnonzero(kinds == EventType.PLAY.value)
    ends = np.append(starts[1:], len(events))
    touched, seen_up_to = set(map(int, trained_tracks)), 0  # tracks of every event before seen_up_to
    plays = []
    for start, end in zip(starts, ends):
        touched.update(tracks[seen_up_to:start].tolist())
        seen_up_to = start
        track = int(tracks[start])
        if start < first_holdout or track in touched:
            continue
        own = np.flatnonzero(tracks[start + 1:end] == track) + start + 1  # this play's later events
        if np.isin(kinds[own], list(COUNTED_ENDS)).any() and not early[own].any():
            plays.append((int(start), track))
    return plays


def replay_points(plays: Sequence[tuple[int, int]], *, first_holdout: int,
                  n_events: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """``(points, targets, target positions)``: after the last training event and each held-out
    event, the first counted play starting strictly later (points without one are dropped)."""
    points, targets, positions = [], [], []
    starts = np.array([start for start, _ in plays], dtype=np.int64)
    for point in range(max(first_holdout - 1, 0), n_events):
        following = int(np.searchsorted(starts, point, side="right"))
        if following == len(plays):
            break
        points.append(point)
        targets.append(plays[following][1])
        positions.append(plays[following][0])
    return tuple(points), tuple(targets), tuple(positions)


def build_replays(inputs: ReplayInputs) -> list[ListenerReplay]:
    """One ``ListenerReplay`` per listener with held-out events and at least one counted play,
    by user id; a training event at or after a held-out one raises (it would leak)."""
    tails = dict(tuple(inputs.history_tail.groupby(USER_ID, sort=False)))
    replays = []
    for user_id, held_out in inputs.held_out.groupby(USER_ID, sort=True):
        tail = tails.get(user_id, inputs.history_tail.iloc[0:0])
        history, future = in_time_order(tail), in_time_order(held_out)
        if not history.empty and history[EVENT_TIME].iloc[-1] >= future[EVENT_TIME].iloc[0]:
            raise RealtimeValueError(f"listener {user_id!r}: a training event at {history[EVENT_TIME].iloc[-1]} "
                                     f"is not before the holdout ({future[EVENT_TIME].iloc[0]})")
        events = pd.concat([history, future], ignore_index=True)[list(HISTORY_FIELDS)]
        trained = frozenset(int(t) for t in inputs.trained_tracks.get(user_id, ()))
        plays = counted_plays(events, first_holdout=len(history), trained_tracks=trained)
        points, targets, positions = replay_points(plays, first_holdout=len(history), n_events=len(events))
        if points:
            replays.append(ListenerReplay(str(user_id), events, len(history), points, targets, positions, trained))
    return replays


def history_at(events: pd.DataFrame, point: int, *, limit: int, window_s: float) -> pd.DataFrame:
    """What the stream reads right after event ``point``: the events up to it, within ``window_s``
    of it, the newest ``limit`` first (``batch.load_histories``; nothing after ``point``)."""
    seen = events.iloc[: point + 1]
    recent = seen[seen[EVENT_TIME] >= seen[EVENT_TIME].iloc[-1] - timedelta(seconds=window_s)]
    return recent.iloc[::-1].head(limit).reset_index(drop=True)


# --- the lists and their scores ---------------------------------------------------------------

def live_lists(replay: ListenerReplay, *, catalogue: StreamCatalogue, als: AlsFactors | None,
               config: StreamConfig) -> dict[int, list[int]]:
    """The streaming job's list at each point of ``replay`` (``recommend_for``), by point."""
    window_s = HISTORY_HALF_LIVES * config.half_life_s
    return {point: [item.track_id for item in recommend_for(
                replay.user_id, history_at(replay.events, point, limit=config.recent_events, window_s=window_s),
                catalogue, als, config)]
            for point in replay.points}


def point_scores(lists: Mapping[tuple[str, int], Sequence[int]], targets: Mapping[tuple[str, int], int], *,
                 k: int) -> dict[str, np.ndarray]:
    """Hit rate@k and NDCG@k of each point's list against its target, aligned to ``targets``' keys."""
    keys, values = accuracy_by_user({key: lists.get(key, []) for key in targets},
                                    {key: {target} for key, target in targets.items()}, k=k)
    if list(keys) != list(targets):
        raise RealtimeValueError("every point needs a target")
    return {name: values[name] for name in METRICS}


def listener_means(users: Sequence[str], values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Per-listener means of point ``values`` (listeners in first-seen order)."""
    frame = pd.DataFrame({"user": list(users), "value": values})
    means = frame.groupby("user", sort=False)["value"].mean()
    return means.index.tolist(), means.to_numpy()


@dataclass(frozen=True)
class RealtimeValue:
    """Live vs batch on the replayed holdout: per metric an ``Interval`` each, and the uplift."""

    k: int
    listeners: int
    points: int
    plays: int  # distinct (listener, target play) pairs
    live: dict[str, Interval]
    batch: dict[str, Interval]
    uplift: dict[str, Interval]  # paired live - batch per listener
    heard_share: dict[str, float] = field(default_factory=dict)  # live/batch: mean share of top-k already heard
    by_step: list[dict] = field(default_factory=list)  # hit rate per number of held-out events seen
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP
    config: StreamConfig = StreamConfig()
    seconds: float = 0.0

    def ratio(self, metric: str = HIT_RATE) -> float | None:
        """Live / batch point estimate (None when the batch scores 0)."""
        batch = self.batch[metric].estimate
        return self.live[metric].estimate / batch if batch else None


def measure_realtime_value(replays: Sequence[ListenerReplay], *, batch_lists: Mapping[str, Sequence[int]],
                           catalogue: StreamCatalogue, als: AlsFactors | None, k: int = 10,
                           config: StreamConfig | None = None,
                           bootstrap: Bootstrap = DEFAULT_BOOTSTRAP) -> RealtimeValue:
    """Score every replay's live lists and its batch list at each point (module doc, steps 4-6)."""
    if k < 1:
        raise RealtimeValueError(f"k must be at least 1, got {k}")
    if not replays:
        raise RealtimeValueError("no listener has a counted held-out play to predict")
    config = config or StreamConfig()
    started = time.perf_counter()
    live, batch, targets, steps, heard = {}, {}, {}, [], {LIVE: [], BATCH: []}
    for replay in replays:
        lists = live_lists(replay, catalogue=catalogue, als=als, config=config)
        for point, target in zip(replay.points, replay.targets):
            key = (replay.user_id, point)
            live[key], batch[key], targets[key] = lists[point], list(batch_lists.get(replay.user_id, [])), target
            steps.append(min(point - replay.first_holdout + 1, STEP_CAP))
            touched = replay.heard_by(point)
            for part, top in ((LIVE, live[key][:k]), (BATCH, batch[key][:k])):
                heard[part].append(sum(track in touched for track in top) / k)
    live_scores, batch_scores = point_scores(live, targets, k=k), point_scores(batch, targets, k=k)
    users = [user for user, _ in targets]
    table = {}
    for metric in METRICS:
        listeners, table[f"{LIVE}:{metric}"] = listener_means(users, live_scores[metric])
        _, table[f"{BATCH}:{metric}"] = listener_means(users, batch_scores[metric])
        table[f"{UPLIFT}:{metric}"] = table[f"{LIVE}:{metric}"] - table[f"{BATCH}:{metric}"]
    intervals = listener_intervals(table, bootstrap)
    by_step = step_table(steps, live_scores[HIT_RATE], batch_scores[HIT_RATE])
    return RealtimeValue(
        k=k, listeners=len(listeners), points=len(targets),
        plays=sum(len(set(replay.target_positions)) for replay in replays),
        live={m: intervals[f"{LIVE}:{m}"] for m in METRICS}, batch={m: intervals[f"{BATCH}:{m}"] for m in METRICS},
        uplift={m: intervals[f"{UPLIFT}:{m}"] for m in METRICS},
        heard_share={part: float(np.mean(shares)) for part, shares in heard.items()}, by_step=by_step,
        bootstrap=bootstrap,
        config=config, seconds=round(time.perf_counter() - started, 2),
    )


def step_table(steps: Sequence[int], live_hits: np.ndarray, batch_hits: np.ndarray) -> list[dict]:
    """Hit rate of live and batch lists by held-out events seen (0 = before the first; the last
    step pools ``STEP_CAP`` and more), with the number of points behind each."""
    frame = pd.DataFrame({"step": list(steps), LIVE: live_hits, BATCH: batch_hits})
    grouped = frame.groupby("step").agg(points=(LIVE, "size"), live=(LIVE, "mean"), batch=(BATCH, "mean"))
    return [{"step": int(step), "points": int(row.points), f"{LIVE}_{HIT_RATE}": float(row.live),
             f"{BATCH}_{HIT_RATE}": float(row.batch)} for step, row in grouped.iterrows()]


# --- inputs from the training job's Spark events ------------------------------------------------

def sample_listeners(users: Collection[str], *, limit: int) -> list[str]:
    """At most ``limit`` of ``users``, chosen by a hash of the id (the same on every run)."""
    if limit < 1:
        raise RealtimeValueError(f"the listener limit must be at least 1, got {limit}")
    ranked = sorted(users, key=lambda user: hashlib.sha256(str(user).encode()).hexdigest())
    return sorted(ranked[:limit])


def replay_inputs(events: DataFrame, *, users: Collection[str], holdout: int | float, min_train_tracks: int,
                  recent_events: int) -> ReplayInputs:
    """The training tails, held-out events and trained tracks of ``users`` (the split of the job)."""
    spark = events.sparkSession
    wanted = F.broadcast(spark.createDataFrame(pd.DataFrame({USER_ID: sorted(users)}), f"{USER_ID} string"))
    train, test = split_by_time(events, holdout=holdout, min_train_tracks=min_train_tracks)
    train = train.join(wanted, USER_ID)
    columns = [USER_ID, *HISTORY_FIELDS]
    newest_first = Window.partitionBy(USER_ID).orderBy(F.col(EVENT_TIME).desc(), F.col("event_id").desc())
    tail = train.withColumn("recency", F.row_number().over(newest_first)).filter(F.col("recency") <= recent_events)
    trained = train.groupBy(USER_ID).agg(F.collect_set(TRACK_ID).alias("tracks")).toPandas()
    return ReplayInputs(
        history_tail=_local(tail.select(*columns).toPandas()),
        held_out=_local(test.join(wanted, USER_ID).select(*columns).toPandas()),
        trained_tracks={str(user): {int(t) for t in tracks} for user, tracks in zip(trained[USER_ID], trained["tracks"])},
    )


def _local(frame: pd.DataFrame) -> pd.DataFrame:
    frame[EVENT_TIME] = pd.to_datetime(frame[EVENT_TIME], utc=True)
    frame[TRACK_ID] = frame[TRACK_ID].astype("int64")
    return frame


def stream_catalogue(tracks: RecommendableTracks, *, popularity: np.ndarray | None = None) -> StreamCatalogue:
    """The stream's catalogue over the job's recommendable tracks: the same embeddings (one
    rule, ``fma_platform.embeddings``), no titles (reasons are not scored)."""
    has = tracks.has_embedding
    ids = tracks.track_ids[has]
    vectors = (tracks.embeddings[has] if tracks.embeddings is not None else np.zeros((0, 0))).astype(np.float32)
    plays = np.zeros(tracks.size) if popularity is None else np.asarray(popularity, dtype=np.float64)
    return StreamCatalogue(known_ids=frozenset(int(t) for t in tracks.track_ids),
                           embeddings=TrackEmbeddings(ids=ids, vectors=vectors), titles={}, genres={},
                           popularity=plays[has], version=None, loaded_at=time.monotonic())


def factors_from_frames(users: pd.DataFrame, items: pd.DataFrame, *, version: str,
                        catalogue: StreamCatalogue) -> AlsFactors:
    """ALS factors (``user_id``/``track_id`` + ``features`` frames) through the stream's own loader."""
    with tempfile.TemporaryDirectory(prefix="realtime-value-als-") as folder:
        users.to_parquet(Path(folder) / ALS_USER_FACTORS, index=False)
        items.to_parquet(Path(folder) / ALS_ITEM_FACTORS, index=False)
        return load_als_factors(Path(folder), version, catalogue)


# --- the stored document ------------------------------------------------------------------------

def intervals_document(intervals: Mapping[str, Interval]) -> dict[str, float]:
    """``{metric: estimate, metric_ci_low: ..., metric_ci_high: ...}`` (``model_runs.interval_key``)."""
    document = {}
    for metric, interval in intervals.items():
        document[metric] = interval.estimate
        document[interval_key(metric, CI_LOW)] = interval.low
        document[interval_key(metric, CI_HIGH)] = interval.high
    return document


def realtime_value_document(result: RealtimeValue, *, job_run_id: str, model_version: str, data_snapshot: dict,
                            data_source: Mapping[str, int]) -> dict:
    """The ``realtime_value`` document of one training run (shape: ``fma_platform.contracts``)."""
    config = result.config
    return {
        "run_id": run_id_of(job_run_id, model=MODEL, kind=RunKind.FINAL), "job_run_id": job_run_id,
        "model_version": model_version, "k": result.k, "listeners": result.listeners, "points": result.points,
        "plays": result.plays, LIVE: intervals_document(result.live), BATCH: intervals_document(result.batch),
        UPLIFT: intervals_document(result.uplift), "live_vs_batch_hit_rate": result.ratio(HIT_RATE),
        HEARD_SHARE: result.heard_share,
        CI_CONFIDENCE: result.bootstrap.confidence, CI_RESAMPLES: result.bootstrap.resamples,
        "by_step": result.by_step,
        "replay": {"play_rule": PLAY_RULE, "history_window_s": HISTORY_HALF_LIVES * config.half_life_s,
                   "recent_events": config.recent_events, "exclude_recent": config.exclude_recent,
                   "als_weight": config.als_weight, "batch_list": f"the trained {MODEL} model's top-{result.k}"},
        "data_snapshot": data_snapshot, "data_source": dict(data_source), "seconds": result.seconds,
    }


def record_realtime_value(db: Database, document: dict, *, now: datetime | None = None) -> None:
    """Upsert ``document`` by ``run_id``; ``created_at`` set on first insert only (idempotent)."""
    now = now or datetime.now(timezone.utc)
    body = {key: value for key, value in document.items() if key != "created_at"}
    collection = db[MongoCollection.REALTIME_VALUE]
    collection.create_index("run_id", unique=True, name="run_id_unique")
    collection.update_one({"run_id": document["run_id"]},
                          {"$set": {**body, "updated_at": now}, "$setOnInsert": {"created_at": now}}, upsert=True)


def latest_realtime_value(db: Database) -> dict | None:
    """The newest ``realtime_value`` document (without ``_id``), None before the first."""
    return db[MongoCollection.REALTIME_VALUE].find_one({}, {"_id": 0}, sort=[("created_at", -1)])


def event_sources(db: Database, users: Collection[str]) -> dict[str, int]:
    """How many stored events of ``users`` each ``source`` wrote ("simulator", "player" ...)."""
    pipeline = [{"$match": {USER_ID: {"$in": sorted(users)}}}, {"$group": {"_id": "$source", "n": {"$sum": 1}}}]
    return {str(row["_id"]): int(row["n"]) for row in db[MongoCollection.LISTENING_EVENTS].aggregate(pipeline)}


# --- the training job's call --------------------------------------------------------------------

def evaluate_and_record(db: Database, events: DataFrame, *, tracks: RecommendableTracks,
                        batch_lists: Mapping[str, Sequence[int]], als_dir: Path, version: str, job_run_id: str,
                        holdout: int | float, min_train_tracks: int, k: int, data_snapshot: dict,
                        bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
                        max_listeners: int = DEFAULT_MAX_LISTENERS) -> dict:
    """Replay the holdout of the trained model's listeners (at most ``max_listeners``), store and
    return the ``realtime_value`` document (with a ``reason`` and no figures when no listener has
    a counted play to predict). ``als_dir`` is the saved version's folder."""
    config = StreamConfig()
    users = sample_listeners(batch_lists, limit=max_listeners)
    inputs = replay_inputs(events, users=users, holdout=holdout, min_train_tracks=min_train_tracks,
                           recent_events=config.recent_events)
    replays = build_replays(inputs)
    if not replays:  # recorded with its reason: the page says why there is no figure
        document = {"run_id": run_id_of(job_run_id, model=MODEL, kind=RunKind.FINAL), "job_run_id": job_run_id,
                    "model_version": version, "k": k, "listeners": 0, "data_snapshot": data_snapshot,
                    "reason": f"none of {len(users)} holdout listeners has a counted play to predict ({PLAY_RULE})"}
        record_realtime_value(db, document)
        log.warning("real-time value not measured: %s", document["reason"])
        return document
    catalogue = stream_catalogue(tracks)
    als = load_als_factors(Path(als_dir), version, catalogue)
    result = measure_realtime_value(replays, batch_lists=batch_lists, catalogue=catalogue, als=als,
                                    k=k, config=config, bootstrap=bootstrap)
    document = realtime_value_document(result, job_run_id=job_run_id, model_version=version,
                                       data_snapshot=data_snapshot, data_source=event_sources(db, users))
    record_realtime_value(db, document)
    log.info("real-time value: hit rate@%d live %.4f vs batch %.4f (uplift %+.4f [%+.4f, %+.4f]) over %d listeners",
             k, result.live[HIT_RATE].estimate, result.batch[HIT_RATE].estimate, result.uplift[HIT_RATE].estimate,
             result.uplift[HIT_RATE].low, result.uplift[HIT_RATE].high, result.listeners)
    return document
