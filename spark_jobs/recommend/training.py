"""Train, tune, evaluate and register implicit ALS, then publish the champion's lists: the job's ``run()``.

1. Events (``listening_events`` in MongoDB, or a Parquet/JSONL file) become implicit
   (user, track) strengths (``interactions``, formula there).
2. Time-based per-user holdout: each user's last ``holdout`` new tracks are the test set;
   training is strictly earlier. A validation split is carved from the training events by
   the same rule, and never touches the test period.
3. Tuning: every grid point is fitted on the validation split's training part and scored
   (NDCG@k) on its validation part -> one ``model_runs`` document (kind "trial") each.
4. The best parameters are refitted on all training events and evaluated on the holdout
   next to the baselines (random, most-popular, content, hybrid) -> kind "final" and
   "baseline" documents with every metric of ``spark_jobs.metrics.ranking_report``, and the
   same metrics per segment (cold / regular / heavy listeners by training-window events, new
   tracks: ``spark_jobs.metrics.segment_report``) as ``segment:<segment>:<metric>``.
5. Registry: factors saved as a version of the ALS model store; promoted to CHAMPION only
   when the lower bound of its NDCG@k gain over the champion, on the same holdout
   listeners (paired bootstrap), is above zero (``registry``). The final run says why,
   with the gain and its interval (``promotion``). Every metric is stored with its
   bootstrap interval over listeners (``spark_jobs.metrics``).
6. The champion's top-k per user go to ``recommendations`` (``publish``).

The serving model is the evaluated one (fit on the training period). Re-running on the
same events gives the same versions and documents.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pymongo.database import Database
from pyspark.sql import DataFrame, SparkSession

from fma_platform.listening import HYBRID_SHRINK
from fma_platform.model_runs import Metric, RunFamily, RunKind, model_run_document, record_run
from fma_platform.model_store import ModelStore
from fma_platform.mongo import platform_db
from fma_platform.settings import Settings
from spark_jobs.metrics import DEFAULT_BOOTSTRAP, Bootstrap, gain_interval, ndcg_at_k, ranking_report, segment_report
from spark_jobs.recommend import registry
from spark_jobs.recommend.errors import TrainingError
from spark_jobs.recommend.events import TRACK_ID, USER_ID, data_snapshot, events_from_mongo, read_events_file
from spark_jobs.recommend.interactions import (
    implicit_interactions, index_users, relevant_by_user, relevant_interactions, split_by_time, with_user_index,
)
from spark_jobs.recommend.publish import publish_recommendations
from spark_jobs.recommend.realtime_value import evaluate_and_record as measure_realtime_value
from spark_jobs.recommend.recommenders import (
    ALS_PARAMS, FEATURES, als_recommendations, check_als_params, content_based, fit_als, hybrid_recommendations,
    item_factors, most_popular, popularity_vector, positive_tracks, random_tracks, recommendation_lists,
    track_popularity, user_factors,
)
from spark_jobs.recommend.tracks import RecommendableTracks, load_recommendable_tracks
from spark_jobs.session import spark_session

log = logging.getLogger(__name__)

APP_NAME = "train-als"
DEFAULT_GRID = "rank=8,16;regParam=0.01,0.1;alpha=1,10;maxIter=10"
# A listener with one training track is evaluated too: cold listeners (<= 5 training events,
# spark_jobs.metrics.SegmentRule) are a segment the models page reports, so none may be left out.
DEFAULT_MIN_TRAIN_TRACKS = 1
NDCG = Metric.NDCG_AT_K.value
BASELINE_RANDOM = "random"
BASELINE_MOST_POPULAR = "most_popular"
BASELINE_CONTENT = "content"
BASELINE_HYBRID = "hybrid"


@dataclass(frozen=True)
class TrainingOptions:
    """One training run: its id, the ALS grid, the metrics' cut-off and the holdout rule."""

    job_run_id: str
    grid: tuple[dict, ...]
    k: int = 10  # cut-off of the metrics and length of the published lists
    holdout: int | float = 5  # per-user test tracks: the last N, or a fraction in (0, 1)
    min_train_tracks: int = DEFAULT_MIN_TRAIN_TRACKS
    seed: int = 7
    hybrid_shrink: float = HYBRID_SHRINK
    events_path: Path | None = None  # Parquet or JSONL events instead of MongoDB
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP  # intervals of every metric and of the promotion gain

    def holdout_rule(self) -> dict:
        return {"holdout": self.holdout, "min_train_tracks": self.min_train_tracks}


@dataclass
class Split:
    """Training interactions of a period and the relevant held-out pairs after it."""

    train: DataFrame  # interactions before each user's cut-off
    relevant: dict[str, set[int]]
    popularity: np.ndarray  # training plays aligned to the recommendable tracks
    training_events: dict[str, int]  # events per listener in the training window (the segments)


@dataclass(frozen=True)
class Trial:
    """One grid point scored on the validation split."""

    params: dict
    label: str
    metrics: dict
    seconds: float


# --- the grid -------------------------------------------------------------------------------

def parse_grid(text: str) -> tuple[dict, ...]:
    """``"rank=8,16;alpha=1,10"`` -> every combination as typed ALS parameter dicts."""
    axes: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, values = part.partition("=")
        name = name.strip()
        if not sep or not values.strip():
            raise TrainingError(f"grid part {part!r} is not name=v1,v2")
        if name not in ALS_PARAMS:
            raise TrainingError(f"grid parameter {name!r} is unknown; known: {list(ALS_PARAMS)}")
        axes[name] = [v.strip() for v in values.split(",") if v.strip()]
    if not axes:
        raise TrainingError("the grid is empty")
    names = sorted(axes)
    try:
        return tuple(check_als_params(dict(zip(names, combo)))
                     for combo in itertools.product(*(axes[n] for n in names)))
    except ValueError as exc:
        raise TrainingError(f"grid {text!r} has a bad value: {exc}") from exc


def trial_label(params: dict) -> str:
    """``rank=8,regParam=0.1,alpha=1,maxIter=10`` (the grid's own notation)."""
    names = [*ALS_PARAMS, *(["nonnegative"] if params.get("nonnegative") else [])]
    return ",".join(f"{name}={params[name]:g}" if isinstance(params[name], float) else f"{name}={params[name]}"
                    for name in names)


# --- splitting and evaluation ---------------------------------------------------------------

def make_split(events: DataFrame, *, tracks: RecommendableTracks, options: TrainingOptions) -> Split:
    """Training interactions, relevant held-out pairs and training popularity of ``events``."""
    train_events, test_events = split_by_time(events, holdout=options.holdout,
                                              min_train_tracks=options.min_train_tracks)
    train = implicit_interactions(train_events).cache()
    relevant = relevant_by_user(relevant_interactions(implicit_interactions(test_events), train))
    if not relevant:
        raise TrainingError(
            f"no user has held-out tracks with holdout={options.holdout} and min_train_tracks="
            f"{options.min_train_tracks}: not enough history to evaluate"
        )
    training_events = {row[USER_ID]: int(row["count"]) for row in train_events.groupBy(USER_ID).count().collect()}
    return Split(train=train, relevant=relevant, popularity=popularity_vector(track_popularity(train), tracks),
                 training_events=training_events)


def evaluate(recommendations: DataFrame, split: Split, *, tracks: RecommendableTracks, k: int,
             embeddings: dict | None, bootstrap: Bootstrap | None = DEFAULT_BOOTSTRAP,
             by_segment: bool = False) -> dict:
    """``ranking_report`` of ``recommendations`` against the split's holdout (see ``evaluate_lists``)."""
    return evaluate_lists(recommendation_lists(recommendations), split, tracks=tracks, k=k, embeddings=embeddings,
                          bootstrap=bootstrap, by_segment=by_segment)


def evaluate_lists(lists: dict[str, list[int]], split: Split, *, tracks: RecommendableTracks, k: int,
                   embeddings: dict | None, bootstrap: Bootstrap | None = DEFAULT_BOOTSTRAP,
                   by_segment: bool = False) -> dict:
    """``ranking_report`` of ``{user_id: [track_id, ...]}`` lists (any recommender's) against the split's holdout;
    with ``by_segment``, also ``segment_report``'s per-segment figures (``segment:<segment>:<name>``)."""
    popularity = {int(t): int(p) for t, p in zip(tracks.track_ids, split.popularity) if p > 0}
    common = dict(catalogue=tracks.track_ids.tolist(), item_popularity=popularity, k=k, embeddings=embeddings or None,
                  bootstrap=bootstrap)
    report = ranking_report(lists, split.relevant, **common)
    if by_segment:
        report.update(segment_report(lists, split.relevant, training_events=split.training_events, **common))
    return report


def evaluation_users(split: Split) -> DataFrame:
    return split.train.sparkSession.createDataFrame(pd.DataFrame({USER_ID: sorted(split.relevant)}),
                                                    f"{USER_ID} string")


def fit_and_recommend(split: Split, params: dict, *, tracks: RecommendableTracks,
                      options: TrainingOptions) -> tuple[DataFrame, pd.DataFrame, DataFrame]:
    """Fit ALS on the split's training data: (user factors, item factors, lists of the holdout users)."""
    users = index_users(split.train).cache()
    model = fit_als(with_user_index(split.train, users), params, seed=options.seed)
    factors = user_factors(model, users).cache()
    items = item_factors(model).toPandas()
    recommendations = als_recommendations(factors.join(evaluation_users(split), USER_ID), split.train, tracks=tracks,
                                          items=items, n=options.k)
    return factors, items, recommendations


def tune(events_before_test: DataFrame, *, tracks: RecommendableTracks, options: TrainingOptions) -> list[Trial]:
    """Each grid point scored on a validation split carved from training events by the same rule."""
    validation = make_split(events_before_test, tracks=tracks, options=options)
    trials = []
    for params in options.grid:
        started = time.perf_counter()
        _, _, recommendations = fit_and_recommend(validation, params, tracks=tracks, options=options)
        metrics = evaluate(recommendations, validation, tracks=tracks, k=options.k, embeddings=None,
                           bootstrap=options.bootstrap)
        trials.append(Trial(params=params, label=trial_label(params), metrics=metrics,
                            seconds=round(time.perf_counter() - started, 2)))
        log.info("trial %s ndcg@%d=%.4f", trial_label(params), options.k, metrics[NDCG])
    return trials


def best_trial(trials: list[Trial]) -> Trial:
    """Highest validation NDCG@k; the earlier grid point wins a tie."""
    if not trials:
        raise TrainingError("no trial ran: the grid is empty")
    return max(trials, key=lambda trial: trial.metrics[NDCG])  # max keeps the first of equals


def baseline_recommendations(split: Split, *, tracks: RecommendableTracks, items: pd.DataFrame, factors: DataFrame,
                             options: TrainingOptions) -> dict[str, DataFrame]:
    """Random, most-popular, content and hybrid (both when tracks have embeddings) lists for the holdout users."""
    targets = evaluation_users(split)
    profiles = positive_tracks(split.train).join(targets, USER_ID)
    models = {
        BASELINE_RANDOM: random_tracks(targets, split.train, tracks=tracks, seed=options.seed, n=options.k),
        BASELINE_MOST_POPULAR: most_popular(targets, split.train, tracks=tracks, plays=split.popularity, n=options.k),
    }
    if tracks.embeddings is not None:
        models[BASELINE_CONTENT] = content_based(profiles, split.train, tracks=tracks, n=options.k)
        models[BASELINE_HYBRID] = hybrid_recommendations(profiles.join(factors, USER_ID, "left"), split.train,
                                                         tracks=tracks, items=items, n=options.k,
                                                         shrink=options.hybrid_shrink)
    return models


def promote_if_better(store: ModelStore, *, version: str, candidate_lists: dict[str, list[int]], split: Split,
                      tracks: RecommendableTracks, options: TrainingOptions) -> registry.Promotion:
    """The promotion rule (``registry``): the champion's lists re-scored from its factors on this
    holdout, and the candidate's paired NDCG@k gain over them."""
    champion = registry.read_champion(store)
    candidate_ndcg = ndcg_at_k(candidate_lists, split.relevant, k=options.k)
    champion_ndcg = gain = None
    if champion is not None and champion != version and registry.has_factors(store, champion):
        champion_users, champion_items = registry.load_factors(split.train.sparkSession, store, champion)
        champion_lists = recommendation_lists(als_recommendations(
            champion_users.join(evaluation_users(split), USER_ID), split.train, tracks=tracks, items=champion_items,
            n=options.k))
        champion_ndcg = ndcg_at_k(champion_lists, split.relevant, k=options.k)
        gain = gain_interval(candidate_lists, champion_lists, split.relevant, k=options.k, metric=NDCG,
                             bootstrap=options.bootstrap)
    return registry.decide_promotion(candidate_version=version, candidate_ndcg=candidate_ndcg,
                                     champion_version=champion, champion_ndcg=champion_ndcg, gain=gain,
                                     n_users=len(split.relevant), bootstrap=options.bootstrap)


# --- model_runs documents -------------------------------------------------------------------

def run_document(options: TrainingOptions, snapshot: dict, *, model: str, kind: RunKind, params: dict,
                 metrics: dict, model_version: str, split: str, label: str | None = None,
                 promotion: registry.Promotion | None = None) -> dict:
    """A recommendations-family ``model_runs`` document; ``data_snapshot`` says which split was scored."""
    return model_run_document(
        job_run_id=options.job_run_id, family=RunFamily.RECOMMENDATIONS, model=model, kind=kind, label=label,
        params={**params, "k": options.k, "seed": options.seed}, metrics=metrics,
        data_snapshot={**snapshot, "split": split, "holdout_rule": options.holdout_rule()},
        model_version=model_version, promotion=None if promotion is None else promotion.as_document(),
    )


def data_version(snapshot: dict) -> str:
    """The version of trials and baselines: the events they were scored on (nothing is stored)."""
    return f"events-{snapshot['hash']}"


# --- the whole run --------------------------------------------------------------------------

def train_and_publish(db: Database, events: DataFrame, *, tracks: RecommendableTracks, options: TrainingOptions,
                      store: ModelStore) -> dict:
    """Tune, refit, evaluate, register, promote and publish; return the run summary."""
    started = time.perf_counter()
    events = events.cache()
    snapshot = data_snapshot(events)
    train_events, _ = split_by_time(events, holdout=options.holdout, min_train_tracks=options.min_train_tracks)
    trials = tune(train_events.cache(), tracks=tracks, options=options)
    for trial in trials:
        record_run(db, run_document(options, snapshot, model=registry.ALS, kind=RunKind.TRIAL, label=trial.label,
                                    params=trial.params, metrics={**trial.metrics, Metric.SECONDS.value: trial.seconds},
                                    model_version=data_version(snapshot), split="validation"))
    best = best_trial(trials)
    tuning_seconds = time.perf_counter() - started

    split = make_split(events, tracks=tracks, options=options)
    factors, items, als_recommendations_frame = fit_and_recommend(split, best.params, tracks=tracks, options=options)
    als_lists = recommendation_lists(als_recommendations_frame)
    embeddings = tracks.embedding_map()
    metrics = {registry.ALS: evaluate_lists(als_lists, split, tracks=tracks, k=options.k, embeddings=embeddings,
                                            bootstrap=options.bootstrap, by_segment=True)}
    for name, recommendations in baseline_recommendations(split, tracks=tracks, items=items, factors=factors,
                                                          options=options).items():
        metrics[name] = evaluate(recommendations, split, tracks=tracks, k=options.k, embeddings=embeddings,
                                 bootstrap=options.bootstrap, by_segment=True)
        record_run(db, run_document(
            options, snapshot, model=name, kind=RunKind.BASELINE, metrics=metrics[name],
            params={"hybrid_shrink": options.hybrid_shrink} if name == BASELINE_HYBRID else {},
            model_version=data_version(snapshot), split="holdout"))

    version = registry.model_version(snapshot_hash=snapshot["hash"], params=best.params, seed=options.seed,
                                     holdout_rule=options.holdout_rule())
    promotion = None
    if registry.read_champion(store) == version:  # a rerun of this run on the same data keeps its decision
        promotion = registry.recorded_promotion(db, job_run_id=options.job_run_id, version=version)
    promotion = promotion or promote_if_better(store, version=version, candidate_lists=als_lists, split=split,
                                               tracks=tracks, options=options)
    spark = events.sparkSession
    registry.save_model(store, version, users=factors,
                        items=spark.createDataFrame(items, f"{TRACK_ID} long, {FEATURES} array<float>"), metadata={
                            "version": version, "params": best.params, "seed": options.seed,
                            "data_snapshot": snapshot, "holdout_rule": options.holdout_rule(),
                            "metrics": metrics[registry.ALS], "job_run_id": options.job_run_id,
                        })
    record_run(db, run_document(options, snapshot, model=registry.ALS, kind=RunKind.FINAL,
                                params={**best.params, "trials": len(trials)}, metrics=metrics[registry.ALS],
                                model_version=version, split="holdout", promotion=promotion))
    realtime = measure_realtime_value(  # live (the stream's ranking) vs these lists on the replayed holdout
        db, events, tracks=tracks, batch_lists=als_lists, als_dir=store.version_dir(version), version=version,
        job_run_id=options.job_run_id, holdout=options.holdout, min_train_tracks=options.min_train_tracks,
        k=options.k, data_snapshot=snapshot, bootstrap=options.bootstrap)
    if promotion.promoted:
        registry.crown(store, version)
    champion = registry.read_champion(store)
    registry.mark_champion(db, champion)

    interactions = implicit_interactions(events).cache()
    champion_users, champion_items = registry.load_factors(spark, store, champion)
    published = publish_recommendations(db, interactions, tracks=tracks, user_factors=champion_users,
                                        items=champion_items, version=champion, n=options.k,
                                        shrink=options.hybrid_shrink, as_of=snapshot["last_event"],
                                        job_run_id=options.job_run_id)
    interactions.unpersist()
    popular_ndcg = metrics[BASELINE_MOST_POPULAR][NDCG]
    return {
        "job_run_id": options.job_run_id, "model_version": version, "champion": champion,
        "best_params": best.params, "validation_ndcg_at_k": best.metrics[NDCG],
        "ndcg_at_k": {name: round(m[NDCG], 4) for name, m in metrics.items()}, "k": options.k,
        "als_vs_most_popular": round(metrics[registry.ALS][NDCG] / popular_ndcg, 3) if popular_ndcg else None,
        "promoted": promotion.promoted, "promotion_reason": promotion.reason, "published": published,
        "realtime_hit_rate_uplift": (realtime.get("uplift") or {}).get("hit_rate_at_k"),
        "events": snapshot["events"], "holdout_users": len(split.relevant), "trials": len(trials),
        "tuning_seconds": round(tuning_seconds, 1), "seconds": round(time.perf_counter() - started, 1),
    }


@contextmanager
def read_events(spark: SparkSession, db: Database, path: Path | None, *, staging_dir: Path) -> Iterator[DataFrame]:
    """The events of ``path``, else of MongoDB (staged in chunks under ``staging_dir`` for the block)."""
    if path:
        yield read_events_file(spark, path)
        return
    with events_from_mongo(spark, db, staging_dir=staging_dir) as events:
        yield events


def run(settings: Settings, options: TrainingOptions) -> dict:
    """The job: events from the settings' MongoDB (or ``options.events_path``), models under
    ``settings.models_dir``; the run summary. A Spark session that already runs (tests,
    notebooks) belongs to its owner and is left running."""
    db = platform_db(settings)
    owned = SparkSession.getActiveSession() is None
    spark = spark_session(APP_NAME, settings=settings)
    try:
        with read_events(spark, db, options.events_path, staging_dir=settings.state_dir / "tmp") as events:
            played = [row[TRACK_ID] for row in events.select(TRACK_ID).distinct().collect()]
            tracks = load_recommendable_tracks(db, played_track_ids=played)
            return train_and_publish(db, events, tracks=tracks, options=options,
                                     store=registry.als_store(settings.models_dir))
    finally:
        if owned:
            spark.stop()
