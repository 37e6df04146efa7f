"""Benchmark: every recommender against tuned `implicit` baselines, every metric with its 95 % interval,
overall and per segment, on both ground-truth setups of the simulator.

``python benchmarks/bench_recommenders.py [--ground-truth embedding latent] [--listeners 1000]
  [--events 100000] [--tracks 2000] [--min-train-tracks 1]
  [--grid "rank=16,32;regParam=0.01,0.1;alpha=1,10;maxIter=10"] [--implicit-als-grid ...]
  [--bpr-grid ...] [--cosine-grid ...] [--bm25-grid ...] [--resamples 1000] [--threads 2]``

Simulated listeners (``simulator.simulate``, clearly synthetic) on a synthetic catalogue,
one time-based split and one metrics code (``spark_jobs.recommend.training``), once per
ground-truth setup (``simulator.ground_truth``; both by default, one Spark session):

* ``embedding``: tastes over the audio embedding the content and hybrid models rank with
  (their figures are partly circular);
* ``latent``: tastes over latent track attributes no recommender sees (half genre).

Per setup:

* ours, as the training job runs them: Spark ALS tuned on the validation split by the
  job's own ``tune``, then hybrid, content, most-popular and random;
* the reference models of ``spark_jobs.recommend.reference`` (``implicit`` ALS, BPR,
  item-item cosine and BM25 kNN), each tuned by NDCG@10 on the same validation split
  (carved from the training period: the test holdout is never used to choose);
* two diagnostics of the ALS gap: implicit ALS given our tuned Spark parameters as they
  are ("same params"), and with Spark's confidence and count-scaled regularisation
  ("Spark-like").

Prints, labelled by setup: one Markdown table (each metric's point estimate and 95 %
percentile-bootstrap interval over listeners; coverage is catalogue-level and has none;
tuning and fit+rank seconds), one table per segment (``spark_jobs.metrics.segment_report``:
cold / regular / heavy listeners by training-window events, new tracks), the paired NDCG@10
gain of our ALS over every other model, then one JSON line with every number. Cold
listeners (<= 5 training events) exist only when users with one training track are
evaluated: ``--min-train-tracks 1`` (the default here; the training job's default is 5).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from fma_platform.embeddings import embeddings_from_frame
from fma_platform.events import to_document
from fma_platform.model_runs import COLD, HEAVY, NEW_TRACKS, REGULAR, Metric, metric_interval, segment_key
from fma_platform.settings import get_settings
from infra.services import spark_env
from simulator import GroundTruth, behaviour, simulate, synthetic_catalogue
from simulator.ground_truth import LATENT_DIMS, LATENT_GENRE_SHARE
from spark_jobs.metrics import Bootstrap, gain_interval
from spark_jobs.recommend import reference
from spark_jobs.recommend.events import TRACK_ID, USER_ID, events_from_documents
from spark_jobs.recommend.interactions import STRENGTH, split_by_time
from spark_jobs.recommend.recommenders import recommendation_lists
from spark_jobs.recommend.tracks import recommendable_tracks
from spark_jobs.recommend.training import (
    TrainingOptions, baseline_recommendations, best_trial, evaluate_lists, fit_and_recommend, make_split, parse_grid,
    tune,
)
from spark_jobs.session import spark_session

START = datetime(2024, 3, 1, tzinfo=timezone.utc)
K = 10
REFERENCE_GRIDS = {
    reference.ALS: "factors=16,32,64;regularization=0.01,0.1,1;alpha=1,10;iterations=15",
    reference.BPR: "factors=64;learning_rate=0.01,0.05,0.1;regularization=0.001,0.01;iterations=100,300",
    reference.COSINE: "K=10,50,200",
    reference.BM25: "K=10,50,200;K1=1.2;B=0.25,0.75",
}
COLUMNS = (  # (metric, header) in table order
    (Metric.NDCG_AT_K, "NDCG@10"), (Metric.RECALL_AT_K, "recall@10"), (Metric.HIT_RATE_AT_K, "hit rate@10"),
    (Metric.PRECISION_AT_K, "precision@10"), (Metric.MAP_AT_K, "MAP@10"),
    (Metric.CATALOGUE_COVERAGE_AT_K, "coverage@10"), (Metric.NOVELTY_AT_K, "novelty@10 (bits)"),
    (Metric.INTRA_LIST_DIVERSITY_AT_K, "diversity@10"),
)
SEGMENT_COLUMNS = (  # the per-segment tables' metrics
    (Metric.NDCG_AT_K, "NDCG@10"), (Metric.HIT_RATE_AT_K, "hit rate@10"), (Metric.RECALL_AT_K, "recall@10"),
    (Metric.CATALOGUE_COVERAGE_AT_K, "coverage@10"), (Metric.NOVELTY_AT_K, "novelty@10 (bits)"),
    (Metric.INTRA_LIST_DIVERSITY_AT_K, "diversity@10"),
)
SEGMENT_TITLES = {
    COLD: "cold listeners (<= 5 training-window events)",
    REGULAR: "regular listeners",
    HEAVY: "heavy listeners (above the 90th percentile of training-window events)",
    NEW_TRACKS: "new tracks (no play in the training window; held-out new tracks are the target, coverage is "
                "the share of the new tracks shown to anybody)",
}


@dataclass
class Row:
    """One model's lists on the test holdout, its metrics and what it cost."""

    name: str
    family: str  # "ours", "implicit", "diagnostic"
    lists: dict
    rank_seconds: float  # final fit + recommendations
    tune_seconds: float | None = None
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


def ground_truth_setup(ground_truth: GroundTruth) -> str:
    """What the simulator's listeners respond to under ``ground_truth``, in words (the figures depend on it)."""
    formula = (f"simulator affinity = {behaviour.GENRE_WEIGHT} x genre preference + {behaviour.TASTE_WEIGHT} x "
               f"cosine(track vector, listener taste) + {behaviour.QUALITY_WEIGHT} x quality, picks pulled by "
               f"exp({behaviour.TASTE_PULL} x cosine)")
    if ground_truth is GroundTruth.EMBEDDING:
        return (f"{ground_truth}: {formula}, the track vector being the audio embedding the content and hybrid "
                "models rank with: their figures are partly circular")
    return (f"{ground_truth}: {formula}, the track vector being {LATENT_DIMS} latent attributes drawn for the "
            f"simulation ({LATENT_GENRE_SHARE:.0%} of their variance genre, the rest their own) that no recommender "
            "sees: the embeddings play no part in any choice")


def simulated_listening(args, ground_truth: GroundTruth) -> tuple[list[dict], object]:
    catalogue = synthetic_catalogue(tracks=args.tracks)
    result = simulate(catalogue, n_listeners=args.listeners, target_events=args.events, seed=args.seed,
                      start=START, days=28, ground_truth=ground_truth)
    return [to_document(event) for event in result.events()], catalogue


def our_models(events, tracks, options: TrainingOptions) -> tuple[list[Row], object, object, dict]:
    """Spark ALS tuned like the job, then the job's baselines: rows, test split, validation split, best params."""
    train_events, _ = split_by_time(events, holdout=options.holdout, min_train_tracks=options.min_train_tracks)
    train_events = train_events.cache()
    mark = time.perf_counter()
    best = best_trial(tune(train_events, tracks=tracks, options=options))
    tune_seconds = round(time.perf_counter() - mark, 1)
    validation = make_split(train_events, tracks=tracks, options=options)
    split = make_split(events, tracks=tracks, options=options)

    mark = time.perf_counter()
    factors, items, als = fit_and_recommend(split, best.params, tracks=tracks, options=options)
    rows = [Row("ALS (ours, Spark)", "ours", recommendation_lists(als), round(time.perf_counter() - mark, 1),
                tune_seconds, best.params)]
    baselines = baseline_recommendations(split, tracks=tracks, items=items, factors=factors, options=options)
    names = {"hybrid": "hybrid (ours)", "content": "content (ours)", "most_popular": "most popular",
             "random": "random"}
    for name in ("hybrid", "content", "most_popular", "random"):
        mark = time.perf_counter()
        lists = recommendation_lists(baselines[name])
        rows.append(Row(names[name], "ours", lists, round(time.perf_counter() - mark, 1)))
    return rows, split, validation, best.params


def training_matrix(split, tracks) -> reference.UserItems:
    return reference.user_items(split.train.select(USER_ID, TRACK_ID, STRENGTH).toPandas(), tracks)


def reference_models(split, validation, tracks, *, grids: dict, spark_params: dict, seed: int,
                     threads: int) -> list[Row]:
    """Each implicit model tuned on the validation split, refitted on the training period; the ALS diagnostics."""
    validation_data, data = training_matrix(validation, tracks), training_matrix(split, tracks)
    users = sorted(split.relevant)
    rows = []
    for model, grid in grids.items():
        mark = time.perf_counter()
        best = best_trial(reference.tune(model, reference.parse_grid(model, grid), validation_data,
                                         validation.relevant, tracks=tracks, k=K, seed=seed, threads=threads))
        tune_seconds = round(time.perf_counter() - mark, 1)
        fitted = reference.fit_and_recommend(model, best.params, data, users, tracks=tracks, n=K, seed=seed,
                                             threads=threads)
        rows.append(Row(f"implicit {model} (tuned)", "implicit", fitted.lists,
                        round(fitted.fit_seconds + fitted.recommend_seconds, 1), tune_seconds, fitted.params))
    nominal = {"factors": spark_params["rank"], "regularization": spark_params["regParam"],
               "alpha": spark_params["alpha"], "iterations": spark_params["maxIter"]}
    for name, params in (("implicit als, our params as given", nominal),
                         ("implicit als, Spark-like confidence and reg", reference.spark_like_als(spark_params, data))):
        fitted = reference.fit_and_recommend(reference.ALS, params, data, users, tracks=tracks, n=K, seed=seed,
                                             threads=threads)
        rows.append(Row(name, "diagnostic", fitted.lists, round(fitted.fit_seconds + fitted.recommend_seconds, 1),
                        None, fitted.params))
    return rows


def cell(metrics: dict, metric: str) -> str:
    value = metrics.get(metric)
    if value is None:
        return "n/a"
    interval = metric_interval(metrics, metric)
    digits = 2 if metric == Metric.NOVELTY_AT_K else 3
    if interval is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def markdown_table(rows: list[Row]) -> str:
    header = ["model", *(title for _, title in COLUMNS), "tune s", "fit+rank s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.name, *(cell(row.metrics, metric) for metric, _ in COLUMNS),
                 "" if row.tune_seconds is None else f"{row.tune_seconds:.1f}", f"{row.rank_seconds:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def segment_tables(rows: list[Row]) -> str:
    """One Markdown table per segment: each model's listeners scored and metrics with intervals."""
    parts = []
    for segment, title in SEGMENT_TITLES.items():
        header = ["model", "listeners", *(name for _, name in SEGMENT_COLUMNS)]
        lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in rows:
            if row.family == "diagnostic":
                continue
            figures = {name[len(segment_key(segment, "")):]: value for name, value in row.metrics.items()
                       if name.startswith(segment_key(segment, ""))}
            cells = [row.name, f"{figures.get('n_users', 0)}", *(cell(figures, metric) for metric, _ in SEGMENT_COLUMNS)]
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def benchmark_setup(spark, args, ground_truth: GroundTruth, bootstrap: Bootstrap) -> dict:
    """Every model on one ground-truth setup: prints its tables, returns its numbers."""
    started = time.perf_counter()
    setup = ground_truth_setup(ground_truth)
    print(f"\n## Ground truth: {ground_truth}\n\n{setup}", flush=True)
    documents, catalogue = simulated_listening(args, ground_truth)
    options = TrainingOptions(job_run_id="bench", grid=parse_grid(args.grid), k=K, seed=args.seed,
                              min_train_tracks=args.min_train_tracks, bootstrap=bootstrap)
    tracks = recommendable_tracks(catalogue, embeddings_from_frame(catalogue[["track_id", "embedding"]]))
    events = events_from_documents(spark, documents).cache()
    rows, split, validation, spark_params = our_models(events, tracks, options)
    rows += reference_models(split, validation, tracks, grids={m: getattr(args, f"{m}_grid") for m in REFERENCE_GRIDS},
                             spark_params=spark_params, seed=args.seed, threads=args.threads)
    embeddings = tracks.embedding_map()
    for row in rows:
        row.metrics = evaluate_lists(row.lists, split, tracks=tracks, k=K, embeddings=embeddings,
                                     bootstrap=bootstrap, by_segment=True)
    events.unpersist()

    ours = rows[0]
    gains = {row.name: gain_interval(ours.lists, row.lists, split.relevant, k=K, bootstrap=bootstrap)
             for row in rows[1:]}
    heavy_min = ours.metrics[segment_key(HEAVY, "min_events")]
    print(f"\n{len(documents)} events, {args.listeners} listeners, {args.tracks} tracks; "
          f"{len(split.relevant)} holdout listeners (last 5 new tracks each, at least {args.min_train_tracks} "
          f"training tracks); 95 % percentile bootstrap over listeners, {args.resamples} resamples; "
          f"heavy = at least {heavy_min} training-window events\n")
    print(markdown_table(rows))
    print(f"\nBy segment ({ground_truth} ground truth):\n")
    print(segment_tables(rows))
    implicit_als = next(row for row in rows if row.name == f"implicit {reference.ALS} (tuned)")
    als_ratio = ours.metrics[Metric.NDCG_AT_K] / implicit_als.metrics[Metric.NDCG_AT_K]
    print(f"\nNDCG@10 of {ours.name} / {implicit_als.name}: {als_ratio:.3f}")
    print(f"NDCG@10 gain of {ours.name} (paired bootstrap, same listeners):")
    for name, gain in gains.items():
        print(f"  vs {name}: {gain.estimate:+.4f} [{gain.low:+.4f}, {gain.high:+.4f}]")
    total = round(time.perf_counter() - started, 1)
    print(f"\n{ground_truth} setup: {total} s", flush=True)
    return {
        "ground_truth": str(ground_truth), "setup": setup, "listeners": args.listeners, "events": len(documents),
        "tracks": args.tracks, "holdout_users": len(split.relevant), "min_train_tracks": args.min_train_tracks,
        "resamples": args.resamples, "total_s": total,
        "models": [{"model": row.name, "family": row.family, "params": row.params, "tune_s": row.tune_seconds,
                    "fit_rank_s": row.rank_seconds, "metrics": row.metrics} for row in rows],
        "als_vs_implicit_als_ndcg_ratio": round(als_ratio, 4),
        "ndcg_gain_of_our_als": {name: [gain.estimate, gain.low, gain.high] for name, gain in gains.items()},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ground-truth", nargs="+", choices=[g.value for g in GroundTruth],
                        default=[g.value for g in GroundTruth], help="the setups to run, in order (default: both)")
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--tracks", type=int, default=2000)
    parser.add_argument("--min-train-tracks", type=int, default=1,
                        help="training tracks a holdout listener needs (1: cold listeners are scored too)")
    parser.add_argument("--grid", default="rank=16,32;regParam=0.01,0.1;alpha=1,10;maxIter=10",
                        help="our Spark ALS grid (the training job's notation)")
    for model, grid in REFERENCE_GRIDS.items():
        parser.add_argument(f"--{'implicit-als' if model == reference.ALS else model}-grid", default=grid,
                            dest=f"{model}_grid")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2, help="implicit's threads (Spark runs local[2])")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    bootstrap = Bootstrap(resamples=args.resamples, confidence=0.95, seed=args.seed)
    os.environ.update(spark_env(get_settings()))  # what the embedded stack gives its Spark jobs
    spark = spark_session("bench-recommenders", shuffle_partitions=4)
    try:
        results = [benchmark_setup(spark, args, GroundTruth(name), bootstrap) for name in dict.fromkeys(args.ground_truth)]
    finally:
        spark.stop()
    total = round(time.perf_counter() - started, 1)
    print(f"\ntotal {total} s", flush=True)
    print(json.dumps({"total_s": total, "setups": results}, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
