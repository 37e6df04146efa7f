"""Benchmark: ALS training + tuning wall time and NDCG@10 vs most-popular on simulated listeners.

``python benchmarks/bench_als.py [--listeners 2000] [--events 200000] [--tracks 3000]
  [--grid "rank=16,32;regParam=0.1;alpha=1;maxIter=10"]``

Simulated listeners (``simulator.simulate``, clearly synthetic) on a synthetic catalogue
with embeddings clustered per genre; the same functions as the training job
(``spark_jobs.recommend.training``, no MongoDB). Prints one JSON line with the numbers;
the goal is ALS >= 2x most-popular.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone

from fma_platform.embeddings import embeddings_from_frame
from fma_platform.events import to_document
from fma_platform.settings import get_settings
from infra.services import spark_env
from simulator import simulate, synthetic_catalogue
from spark_jobs.recommend.events import events_from_documents
from spark_jobs.recommend.interactions import split_by_time
from spark_jobs.recommend.tracks import recommendable_tracks
from spark_jobs.recommend.training import (
    TrainingOptions,
    baseline_recommendations,
    best_trial,
    evaluate,
    fit_and_recommend,
    make_split,
    parse_grid,
    tune,
)
from spark_jobs.session import spark_session

START = datetime(2024, 3, 1, tzinfo=timezone.utc)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listeners", type=int, default=2000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--tracks", type=int, default=3000)
    parser.add_argument("--grid", default="rank=16,32;regParam=0.1;alpha=1;maxIter=10")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    timings = {}
    started = time.perf_counter()
    catalogue = synthetic_catalogue(tracks=args.tracks)
    result = simulate(catalogue, n_listeners=args.listeners, target_events=args.events, seed=args.seed,
                      start=START, days=28)
    documents = [to_document(event) for event in result.events()]
    timings["simulate_s"] = round(time.perf_counter() - started, 1)

    mark = time.perf_counter()
    os.environ.update(spark_env(get_settings()))  # what the embedded stack gives its Spark jobs
    spark = spark_session("bench-als", shuffle_partitions=4)
    timings["spark_start_s"] = round(time.perf_counter() - mark, 1)
    try:
        events = events_from_documents(spark, documents).cache()
        tracks = recommendable_tracks(catalogue, embeddings_from_frame(catalogue[["track_id", "embedding"]]))
        options = TrainingOptions(job_run_id="bench", grid=parse_grid(args.grid), seed=args.seed)

        mark = time.perf_counter()
        train_events, _ = split_by_time(events, holdout=options.holdout, min_train_tracks=options.min_train_tracks)
        trials = tune(train_events.cache(), tracks=tracks, options=options)
        best = best_trial(trials)
        timings["tuning_s"] = round(time.perf_counter() - mark, 1)

        mark = time.perf_counter()
        split = make_split(events, tracks=tracks, options=options)
        factors, items, als_recs = fit_and_recommend(split, best.params, tracks=tracks, options=options)
        embeddings = tracks.embedding_map()
        metrics = {"als": evaluate(als_recs, split, tracks=tracks, k=options.k, embeddings=embeddings)}
        timings["final_fit_and_eval_s"] = round(time.perf_counter() - mark, 1)

        mark = time.perf_counter()
        for name, recs in baseline_recommendations(split, tracks=tracks, items=items, factors=factors,
                                                   options=options).items():
            metrics[name] = evaluate(recs, split, tracks=tracks, k=options.k, embeddings=embeddings)
        timings["baselines_s"] = round(time.perf_counter() - mark, 1)
    finally:
        spark.stop()
    timings["total_s"] = round(time.perf_counter() - started, 1)
    ratio = metrics["als"]["ndcg_at_k"] / metrics["most_popular"]["ndcg_at_k"]
    print(json.dumps({
        "listeners": args.listeners, "events": len(documents), "tracks": args.tracks, "grid": args.grid,
        "trials": [{"params": t.params, "val_ndcg_at_10": round(t.metrics["ndcg_at_k"], 4),
                    "seconds": t.seconds} for t in trials],
        "best_params": best.params, "holdout_users": len(split.relevant),
        "ndcg_at_10": {name: round(m["ndcg_at_k"], 4) for name, m in metrics.items()},
        "coverage_at_10": {name: round(m["catalogue_coverage_at_k"], 3) for name, m in metrics.items()},
        "als_vs_most_popular": round(ratio, 2), "goal_2x_met": ratio >= 2.0, "timings": timings,
    }), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
