"""spark-submit entrypoint: implicit-ALS recommendations, tuned, evaluated, registered, published.

``spark-submit spark_jobs/train_als.py --run-id R --k 10 --holdout 5 --seed 7
  --grid "rank=8,16;regParam=0.01,0.1;alpha=1,10;maxIter=10" [--events PATH] [--mongo-db NAME]``

1. Events (``listening_events`` in MongoDB, or ``--events`` Parquet/JSONL) become implicit
   (user, track) strengths (``spark_jobs.interactions``, formula there).
2. Time-based per-user holdout: each user's last ``--holdout`` new tracks are the test
   set; training is strictly earlier. A validation split is carved from the training
   events by the same rule, and never touches the test period.
3. Tuning: every grid point is fitted on the validation split's training part and scored
   (NDCG@k) on its validation part -> one ``model_runs`` doc (kind "trial") each.
4. The best parameters are refitted on all training events and evaluated on the holdout
   next to the baselines (random, most-popular, content) and the hybrid -> kind "final"
   and "baseline" docs, every metric of ``spark_jobs.metrics.ranking_report``.
5. Registry: factors saved under ``models_dir/als/<version>/``; promoted to CHAMPION only
   when its NDCG@k beats the champion's on the same holdout (the champion is re-scored on
   it when its factors exist). The final run says why (``promotion``).
6. The champion's top-N per user go to ``recommendations`` (upsert by user_id): ALS for
   users with enough history, hybrid for light users, content for users the champion does
   not know, genre-popular picks for registered users without events.

The serving model is the evaluated one (fit on the training period). Re-running on the
same events gives the same versions and documents. Ends with one JSON summary line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from pymongo.database import Database
from pyspark.sql import DataFrame, SparkSession, functions as F

from fma_platform.contracts import Collection
from fma_platform.settings import Settings, get_settings
from pipeline.load import upsert_by
from spark_jobs import als_registry as registry
from spark_jobs.interactions import (
    TRACK_ID, USER_ID, InteractionsError, data_snapshot, implicit_interactions, index_users,
    read_events_file, read_events_from_mongo, relevant_by_user, relevant_interactions, split_by_time,
    with_user_index,
)
from spark_jobs.metrics import ranking_report
from spark_jobs.recommenders import (
    ALS_PARAMS, FEATURES, GENRES, HYBRID_SHRINK, N_INTERACTIONS, Catalogue, RecommenderError,
    als_recommendations, check_als_params, content_based, fit_als, genre_popular, hybrid_recommendations,
    item_factors, load_catalogue, most_popular, played_genres, popularity_vector, positive_tracks,
    random_tracks, recommendation_lists, track_popularity, user_factors,
)
from spark_jobs.session import spark_session

log = logging.getLogger(__name__)

APP_NAME = "train-als"
DEFAULT_GRID = "rank=8,16;regParam=0.01,0.1;alpha=1,10;maxIter=10"
DEFAULT_MIN_TRAIN_TRACKS = 5
REASON_ALS = "popular with listeners like you"
REASON_CONTENT = "sounds like tracks you liked"


class TrainingError(RuntimeError):
    """The job cannot train (no events, no user to evaluate, a bad grid)."""


@dataclass(frozen=True)
class TrainConfig:
    run_id: str
    k: int = 10
    grid: tuple[dict, ...] = ()
    holdout: int | float = 5
    min_train_tracks: int = DEFAULT_MIN_TRAIN_TRACKS
    seed: int = 7
    top_n: int = 10
    hybrid_shrink: float = HYBRID_SHRINK

    def holdout_rule(self) -> dict:
        return {"holdout": self.holdout, "min_train_tracks": self.min_train_tracks}


@dataclass
class Split:
    """Training interactions of a period and the relevant held-out pairs after it."""

    train: DataFrame  # interactions before each user's cut-off
    relevant: dict[str, set[int]]
    popularity: np.ndarray  # training plays aligned to the catalogue


# --- arguments ------------------------------------------------------------------------------

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
        return tuple(check_als_params(dict(zip(names, combo))) for combo in itertools.product(*(axes[n] for n in names)))
    except ValueError as exc:
        raise TrainingError(f"grid {text!r} has a bad value: {exc}") from exc


def parse_holdout(text: str) -> int | float:
    value = float(text)
    return int(value) if value >= 1 and value.is_integer() else value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--k", type=int, default=10, help="cut-off of the metrics and length of published lists")
    parser.add_argument("--grid", default=DEFAULT_GRID, help="name=v1,v2;... over rank, regParam, alpha, maxIter")
    parser.add_argument("--holdout", type=parse_holdout, default=5,
                        help="per-user test tracks: an int N (last N) or a fraction in (0, 1)")
    parser.add_argument("--min-train-tracks", type=int, default=DEFAULT_MIN_TRAIN_TRACKS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events", type=Path, help="Parquet or JSONL events instead of MongoDB")
    parser.add_argument("--mongo-db", help="database name instead of settings.mongo_db")
    return parser.parse_args(argv)


# --- splitting and evaluation ---------------------------------------------------------------

def make_split(events: DataFrame, *, catalogue: Catalogue, config: TrainConfig) -> Split:
    """Training interactions, relevant held-out pairs and training popularity of ``events``."""
    train_events, test_events = split_by_time(events, holdout=config.holdout,
                                              min_train_tracks=config.min_train_tracks)
    train = implicit_interactions(train_events).cache()
    relevant = relevant_by_user(relevant_interactions(implicit_interactions(test_events), train))
    if not relevant:
        raise TrainingError(
            f"no user has held-out tracks with holdout={config.holdout} and min_train_tracks="
            f"{config.min_train_tracks}: not enough history to evaluate"
        )
    return Split(train=train, relevant=relevant,
                 popularity=popularity_vector(track_popularity(train), catalogue))


def evaluate(recommendations: DataFrame, split: Split, *, catalogue: Catalogue, k: int,
             embeddings: dict | None) -> dict:
    """``ranking_report`` of ``recommendations`` against the split's holdout."""
    popularity = {int(t): int(p) for t, p in zip(catalogue.track_ids, split.popularity) if p > 0}
    return ranking_report(recommendation_lists(recommendations), split.relevant, catalogue=catalogue.track_ids.tolist(),
                          item_popularity=popularity, k=k, embeddings=embeddings or None)


def evaluation_users(split: Split, spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(pd.DataFrame({USER_ID: sorted(split.relevant)}), f"{USER_ID} string")


def fit_and_recommend(split: Split, params: dict, *, catalogue: Catalogue, config: TrainConfig):
    """Fit ALS on the split's training data; (users map, user factors, item factors, recs for holdout users)."""
    users = index_users(split.train).cache()
    model = fit_als(with_user_index(split.train, users), params, seed=config.seed)
    factors = user_factors(model, users).cache()
    items = item_factors(model).toPandas()
    targets = evaluation_users(split, split.train.sparkSession)
    recs = als_recommendations(factors.join(targets, USER_ID), split.train, catalogue=catalogue, items=items,
                               n=config.k)
    return users, factors, items, recs


def tune(events_before_test: DataFrame, *, catalogue: Catalogue, config: TrainConfig) -> list[dict]:
    """Each grid point scored on a validation split carved from training events by the same rule."""
    validation = make_split(events_before_test, catalogue=catalogue, config=config)
    trials = []
    for number, params in enumerate(config.grid):
        started = time.perf_counter()
        _, _, _, recs = fit_and_recommend(validation, params, catalogue=catalogue, config=config)
        metrics = evaluate(recs, validation, catalogue=catalogue, k=config.k, embeddings=None)
        trials.append({"number": number, "params": params, "metrics": metrics,
                       "seconds": round(time.perf_counter() - started, 2)})
        log.info("trial %d %s ndcg@%d=%.4f", number, params, config.k, metrics["ndcg_at_k"])
    return trials


def best_trial(trials: list[dict]) -> dict:
    """Highest validation NDCG@k; the first grid point wins a tie."""
    if not trials:
        raise TrainingError("no trial ran: the grid is empty")
    return max(trials, key=lambda trial: (trial["metrics"]["ndcg_at_k"], -trial["number"]))


def baseline_recommendations(split: Split, *, catalogue: Catalogue, items: pd.DataFrame, factors: DataFrame,
                             config: TrainConfig) -> dict[str, DataFrame]:
    """Random, most-popular, content (when embeddings exist) and hybrid lists for the holdout users."""
    spark = split.train.sparkSession
    targets = evaluation_users(split, spark)
    profiles = positive_tracks(split.train).join(targets, USER_ID)
    models = {
        "random": random_tracks(targets, split.train, catalogue=catalogue, seed=config.seed, n=config.k),
        "most_popular": most_popular(targets, split.train, catalogue=catalogue, plays=split.popularity, n=config.k),
    }
    if catalogue.embeddings is not None:
        models["content"] = content_based(profiles, split.train, catalogue=catalogue, n=config.k)
        hybrid_users = profiles.join(factors, USER_ID, "left")
        models["hybrid"] = hybrid_recommendations(hybrid_users, split.train, catalogue=catalogue, items=items,
                                                  n=config.k, shrink=config.hybrid_shrink)
    return models


# --- the whole run --------------------------------------------------------------------------

def train_evaluate_register(spark: SparkSession, db: Database, events: DataFrame, *, catalogue: Catalogue,
                            config: TrainConfig, models_dir: Path) -> dict:
    """Tune, refit, evaluate, register, promote and publish; return the run summary."""
    started = time.perf_counter()
    events = events.cache()
    snapshot = data_snapshot(events)
    train_events, _ = split_by_time(events, holdout=config.holdout, min_train_tracks=config.min_train_tracks)
    trials = tune(train_events.cache(), catalogue=catalogue, config=config)
    for trial in trials:
        record_run(db, {
            "run_id": f"{config.run_id}-trial-{trial['number']:02d}", "model": "als", "kind": "trial",
            "params": trial["params"], "metrics": trial["metrics"], "data_snapshot": snapshot,
            "split": "validation", "holdout_rule": config.holdout_rule(), "seed": config.seed,
            "model_version": None, "champion": False,
        })
    best = best_trial(trials)
    tuning_seconds = time.perf_counter() - started

    split = make_split(events, catalogue=catalogue, config=config)
    users, factors, items, als_recs = fit_and_recommend(split, best["params"], catalogue=catalogue, config=config)
    embeddings = catalogue.embedding_map()
    metrics = {"als": evaluate(als_recs, split, catalogue=catalogue, k=config.k, embeddings=embeddings)}
    for name, recs in baseline_recommendations(split, catalogue=catalogue, items=items, factors=factors,
                                               config=config).items():
        metrics[name] = evaluate(recs, split, catalogue=catalogue, k=config.k, embeddings=embeddings)
        record_run(db, {
            "run_id": f"{config.run_id}-baseline-{name}", "model": name, "kind": "baseline",
            "params": {"hybrid_shrink": config.hybrid_shrink} if name == "hybrid" else {},
            "metrics": metrics[name], "data_snapshot": snapshot, "split": "holdout",
            "holdout_rule": config.holdout_rule(), "seed": config.seed, "model_version": None, "champion": False,
        })

    version = registry.model_version(snapshot_hash=snapshot["hash"], params=best["params"], seed=config.seed,
                                     holdout_rule=config.holdout_rule())
    root = registry.registry_root(models_dir)
    promotion = previous_promotion(db, root, run_id=f"{config.run_id}-final", version=version) or promote_if_better(
        spark, db, root, version=version, candidate_ndcg=metrics["als"]["ndcg_at_k"], split=split,
        catalogue=catalogue, config=config)
    registry.save_model(root, version, users=factors, items=item_frame(spark, items), metadata={
        "version": version, "params": best["params"], "seed": config.seed, "data_snapshot": snapshot,
        "holdout_rule": config.holdout_rule(), "metrics": metrics["als"], "run_id": config.run_id,
    })
    record_run(db, {
        "run_id": f"{config.run_id}-final", "model": "als", "kind": "final", "params": best["params"],
        "metrics": metrics["als"], "comparison": {name: m["ndcg_at_k"] for name, m in metrics.items()},
        "data_snapshot": snapshot, "split": "holdout", "holdout_rule": config.holdout_rule(), "seed": config.seed,
        "model_version": version, "champion": False, "promotion": promotion.as_document(),
        "trials": len(trials), "best_trial": best["number"],
    })
    if promotion.promoted:
        registry.write_champion(root, version)
    champion = registry.read_champion(root)
    registry.mark_champion(db, champion)
    published = publish_recommendations(spark, db, events, catalogue=catalogue, root=root, version=champion,
                                        config=config, as_of=snapshot["last_event"])
    popular_ndcg = metrics["most_popular"]["ndcg_at_k"]
    return {
        "run_id": config.run_id, "model_version": version, "champion": champion,
        "best_params": best["params"], "validation_ndcg_at_k": best["metrics"]["ndcg_at_k"],
        "ndcg_at_k": {name: round(m["ndcg_at_k"], 4) for name, m in metrics.items()}, "k": config.k,
        "als_vs_most_popular": round(metrics["als"]["ndcg_at_k"] / popular_ndcg, 3) if popular_ndcg else None,
        "promoted": promotion.promoted, "promotion_reason": promotion.reason, "published": published,
        "events": snapshot["events"], "holdout_users": len(split.relevant), "trials": len(trials),
        "tuning_seconds": round(tuning_seconds, 1), "seconds": round(time.perf_counter() - started, 1),
    }


def item_frame(spark: SparkSession, items: pd.DataFrame) -> DataFrame:
    return spark.createDataFrame(items, f"{TRACK_ID} long, {FEATURES} array<float>")


def promote_if_better(spark: SparkSession, db: Database, root: Path, *, version: str, candidate_ndcg: float,
                      split: Split, catalogue: Catalogue, config: TrainConfig) -> registry.Promotion:
    """Compare with the champion on this holdout (re-scored from its factors when they exist)."""
    champion = registry.read_champion(root)
    champion_ndcg, basis = None, "the current holdout"
    if champion is not None and champion != version:
        if registry.has_factors(root, champion):
            champion_users, champion_items = registry.load_factors(spark, root, champion)
            targets = evaluation_users(split, spark)
            recs = als_recommendations(champion_users.join(targets, USER_ID), split.train, catalogue=catalogue,
                                       items=champion_items, n=config.k)
            champion_ndcg = evaluate(recs, split, catalogue=catalogue, k=config.k, embeddings=None)["ndcg_at_k"]
        else:
            champion_ndcg, basis = registry.recorded_ndcg(db, champion), "its own holdout (factors missing)"
    return registry.decide_promotion(candidate_version=version, candidate_ndcg=candidate_ndcg,
                                     champion_version=champion, champion_ndcg=champion_ndcg, champion_basis=basis)


def previous_promotion(db: Database, root: Path, *, run_id: str, version: str) -> registry.Promotion | None:
    """A re-run of the same run on the same data keeps its recorded decision (idempotent docs)."""
    earlier = db[Collection.MODEL_RUNS].find_one({"run_id": run_id, "model_version": version})
    if earlier is None or "promotion" not in earlier or registry.read_champion(root) != version:
        return None
    recorded = earlier["promotion"]
    return registry.Promotion(recorded["promoted"], recorded["reason"], recorded["previous_champion"],
                              recorded["champion_ndcg_at_k"], recorded["candidate_ndcg_at_k"])


def record_run(db: Database, document: dict) -> None:
    """Upsert a ``model_runs`` doc by run_id; ``created_at`` is set on first insert only (idempotent)."""
    db[Collection.MODEL_RUNS].update_one(
        {"run_id": document["run_id"]},
        {"$set": document, "$setOnInsert": {"created_at": datetime.now(timezone.utc)}},
        upsert=True,
    )


# --- publishing -----------------------------------------------------------------------------

def publish_recommendations(spark: SparkSession, db: Database, events: DataFrame, *, catalogue: Catalogue,
                            root: Path, version: str, config: TrainConfig, as_of) -> dict:
    """The champion's top-N per user into ``recommendations``; returns how many per source."""
    interactions = implicit_interactions(events).cache()
    champion_users, champion_items = registry.load_factors(spark, root, version)
    profiles = positive_tracks(interactions).join(champion_users, USER_ID, "left").cache()
    known = profiles.filter(F.col(FEATURES).isNotNull())
    heavy = known.filter(F.col(N_INTERACTIONS) >= config.hybrid_shrink)
    light = known.filter(F.col(N_INTERACTIONS) < config.hybrid_shrink)
    unknown = profiles.filter(F.col(FEATURES).isNull())
    popularity = popularity_vector(track_popularity(interactions), catalogue)
    lists = {
        "als": als_recommendations(heavy, interactions, catalogue=catalogue, items=champion_items, n=config.k),
        "hybrid": hybrid_recommendations(light, interactions, catalogue=catalogue, items=champion_items,
                                         n=config.k, shrink=config.hybrid_shrink),
    }
    if catalogue.embeddings is not None:
        lists["content"] = content_based(unknown, interactions, catalogue=catalogue, n=config.k)
    cold = registered_users_without_events(spark, db, interactions)
    if cold is not None:
        lists["popular"] = genre_popular(cold, interactions, catalogue=catalogue, plays=popularity, n=config.k)
    genres = {row[USER_ID]: list(row[GENRES]) for row in played_genres(interactions, catalogue).collect()}
    counts = {}
    for source, recs in lists.items():
        documents = list(recommendation_documents(recs.toPandas(), source=source, catalogue=catalogue,
                                                  user_genres=genres, version=version, as_of=as_of,
                                                  run_id=config.run_id))
        counts[source] = upsert_by(db, Collection.RECOMMENDATIONS, documents, keys=(USER_ID,)) if documents else 0
    interactions.unpersist()
    return counts


def registered_users_without_events(spark: SparkSession, db: Database, interactions: DataFrame) -> DataFrame | None:
    """``(user_id, genres)`` of ``users`` with chosen genres and no listening events (cold start)."""
    documents = [
        {USER_ID: str(doc[USER_ID]), GENRES: [int(g) for g in doc.get("genres") or []]}
        for doc in db[Collection.USERS].find({"user_id": {"$exists": True}}, {"_id": 0, "user_id": 1, "genres": 1})
    ]
    documents = [doc for doc in documents if doc[GENRES]]
    if not documents:
        return None
    users = spark.createDataFrame(pd.DataFrame(documents), f"{USER_ID} string, {GENRES} array<long>")
    return users.join(interactions.select(USER_ID).distinct(), USER_ID, "left_anti")


def item_reason(source: str, genre_id: int, user_genres: list[int], catalogue: Catalogue) -> str:
    """Why a track is recommended, in words."""
    title = catalogue.genre_titles.get(genre_id, f"genre {genre_id}")
    if source == "popular":
        return f"popular in {title}"
    if source in ("hybrid", "content") and genre_id in user_genres:
        return f"because you like {title}"
    return REASON_CONTENT if source == "content" else REASON_ALS


def recommendation_documents(frame: pd.DataFrame, *, source: str, catalogue: Catalogue,
                             user_genres: dict[str, list[int]], version: str, as_of, run_id: str):
    """One ``recommendations`` document per user (contract shape); ``generated_at`` = data as-of."""
    genre_of = dict(zip(catalogue.track_ids.tolist(), catalogue.genre_ids.tolist()))
    for user, group in frame.sort_values([USER_ID, "rank"]).groupby(USER_ID, sort=True):
        yield {
            USER_ID: user,
            "items": [
                {"track_id": int(t), "score": float(s),
                 "reason": item_reason(source, genre_of.get(int(t), -1), user_genres.get(user, []), catalogue)}
                for t, s in zip(group[TRACK_ID], group["score"])
            ],
            "model_version": version,
            "source": source,
            "generated_at": as_of,
            "run_id": run_id,
        }


def read_events(spark: SparkSession, db: Database, path: Path | None) -> DataFrame:
    return read_events_file(spark, path) if path else read_events_from_mongo(spark, db)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    settings: Settings = get_settings()
    from fma_platform.mongo import mongo_client

    db = mongo_client(settings)[args.mongo_db or settings.mongo_db]
    config = TrainConfig(run_id=args.run_id, k=args.k, grid=parse_grid(args.grid), holdout=args.holdout,
                         min_train_tracks=args.min_train_tracks, seed=args.seed, top_n=args.k)
    # A session that already runs (tests, notebooks) belongs to its owner: only stop our own.
    owned = SparkSession.getActiveSession() is None
    spark = spark_session(APP_NAME, settings=settings)
    try:
        events = read_events(spark, db, args.events)
        played_ids = [row[TRACK_ID] for row in events.select(TRACK_ID).distinct().collect()]
        catalogue = load_catalogue(db, played_track_ids=played_ids)
        summary = train_evaluate_register(spark, db, events, catalogue=catalogue, config=config,
                                          models_dir=settings.models_dir)
    except (TrainingError, InteractionsError, RecommenderError, registry.RegistryError) as exc:
        print(json.dumps({"error": type(exc).__name__, "reason": str(exc)}), file=sys.stderr)
        return 2
    finally:
        if owned:
            spark.stop()
    print(json.dumps(summary, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
