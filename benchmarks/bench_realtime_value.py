"""Benchmark: the value of real time. Live lists (the streaming job's ``recommend_for`` after every
held-out event) against the batch list (the trained ALS model's top 10 before the holdout),
next-play hit rate@10 and NDCG@10 with 95 % bootstrap intervals over listeners.

``python benchmarks/bench_realtime_value.py [--listeners 1000] [--events 100000] [--tracks 2000]
  [--grid "rank=16;regParam=0.1;alpha=10;maxIter=10"] [--ground-truth embedding|latent]
  [--max-listeners 0] [--resamples 1000]``

Simulated listeners on a synthetic catalogue (``simulator.simulate``, clearly synthetic; as
``benchmarks/bench_recommenders.py`` simulates, with the ground truth chosen:
``simulator.ground_truth``: tastes over the audio embedding the stream ranks with, or over
latent attributes no recommender sees), the training job's time-based split and ALS fit
(``spark_jobs.recommend.training``), the replay and its scores of
``spark_jobs.recommend.realtime_value``. A grid of more than one point is tuned on the
validation split first, as the job does. Prints the ground truth the simulator used, one
Markdown table (live, batch, paired uplift), the live / batch ratios, hit rate by held-out
events seen, the run time of each stage, then one JSON line with every number.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_recommenders import simulated_listening  # noqa: E402
from fma_platform.embeddings import embeddings_from_frame  # noqa: E402
from fma_platform.settings import get_settings  # noqa: E402
from infra.services import spark_env  # noqa: E402
from simulator.ground_truth import GroundTruth  # noqa: E402
from spark_jobs.metrics import Bootstrap, Interval  # noqa: E402
from spark_jobs.recommend import realtime_value as rv  # noqa: E402
from spark_jobs.recommend.events import events_from_documents  # noqa: E402
from spark_jobs.recommend.interactions import split_by_time  # noqa: E402
from spark_jobs.recommend.recommenders import recommendation_lists  # noqa: E402
from spark_jobs.recommend.tracks import recommendable_tracks  # noqa: E402
from spark_jobs.recommend.training import (  # noqa: E402
    TrainingOptions, best_trial, fit_and_recommend, make_split, parse_grid, tune,
)
from spark_jobs.session import spark_session  # noqa: E402
from spark_jobs.streaming.batch import StreamConfig  # noqa: E402

K = 10
ROWS = (("live: the stream's list after each event", rv.LIVE),
        ("batch: trained ALS top-10 before the holdout", rv.BATCH),
        ("uplift: live - batch, paired per listener", rv.UPLIFT))


def ground_truth_setup(ground_truth: str) -> str:
    if ground_truth == GroundTruth.LATENT:
        return ("latent: listeners' tastes are over latent track attributes the recommenders never see "
                "(the stream's session taste lives in the audio embedding: not circular)")
    return ("embedding: listeners' tastes are over the audio embedding the stream's session taste uses "
            "(partly circular in the live list's favour)")


def cell(interval: Interval, *, signed: bool = False) -> str:
    form = "+.4f" if signed else ".4f"
    return f"{interval.estimate:{form}} [{interval.low:{form}}, {interval.high:{form}}]"


def markdown_table(result: rv.RealtimeValue) -> str:
    lines = ["| list | next-play hit rate@10 | next-play NDCG@10 |", "|---|---|---|"]
    for title, part in ROWS:
        intervals = getattr(result, part)
        signed = part == rv.UPLIFT
        lines.append(f"| {title} | {cell(intervals[rv.HIT_RATE], signed=signed)} | "
                     f"{cell(intervals[rv.NDCG], signed=signed)} |")
    return "\n".join(lines)


def trained_model(events, tracks, options: TrainingOptions) -> tuple[dict, object, object, dict, float]:
    """The job's split and ALS fit (tuned on the validation split when the grid has several points)."""
    mark = time.perf_counter()
    params = options.grid[0]
    if len(options.grid) > 1:
        train_events, _ = split_by_time(events, holdout=options.holdout, min_train_tracks=options.min_train_tracks)
        params = best_trial(tune(train_events.cache(), tracks=tracks, options=options)).params
    split = make_split(events, tracks=tracks, options=options)
    factors, items, recommendations = fit_and_recommend(split, params, tracks=tracks, options=options)
    return recommendation_lists(recommendations), split, (factors.toPandas(), items), params, \
        round(time.perf_counter() - mark, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--tracks", type=int, default=2000)
    parser.add_argument("--grid", default="rank=16;regParam=0.1;alpha=10;maxIter=10",
                        help="ALS parameters (the training job's notation); several points are tuned")
    parser.add_argument("--ground-truth", choices=[str(g) for g in GroundTruth], default=str(GroundTruth.EMBEDDING))
    parser.add_argument("--max-listeners", type=int, default=0, help="replay at most this many (0: every one)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"ground truth: {ground_truth_setup(args.ground_truth)}", flush=True)
    documents, catalogue = simulated_listening(args, GroundTruth(args.ground_truth))  # bench_recommenders' listening
    simulate_s = round(time.perf_counter() - started, 1)
    bootstrap = Bootstrap(resamples=args.resamples, confidence=0.95, seed=args.seed)
    options = TrainingOptions(job_run_id="bench-realtime", grid=parse_grid(args.grid), k=K, seed=args.seed,
                              bootstrap=bootstrap)
    tracks = recommendable_tracks(catalogue, embeddings_from_frame(catalogue[["track_id", "embedding"]]))
    config = StreamConfig()

    os.environ.update(spark_env(get_settings()))  # what the embedded stack gives its Spark jobs
    spark = spark_session("bench-realtime-value", shuffle_partitions=4)
    try:
        events = events_from_documents(spark, documents).cache()
        batch_lists, split, (user_factors, item_factors), params, fit_s = trained_model(events, tracks, options)
        mark = time.perf_counter()
        users = rv.sample_listeners(batch_lists, limit=args.max_listeners or len(batch_lists))
        inputs = rv.replay_inputs(events, users=users, holdout=options.holdout,
                                  min_train_tracks=options.min_train_tracks, recent_events=config.recent_events)
        inputs_s = round(time.perf_counter() - mark, 1)
    finally:
        spark.stop()

    stream_catalogue = rv.stream_catalogue(tracks, popularity=split.popularity)
    als = rv.factors_from_frames(user_factors, item_factors, version="bench", catalogue=stream_catalogue)
    replays = rv.build_replays(inputs)
    result = rv.measure_realtime_value(replays, batch_lists=batch_lists, catalogue=stream_catalogue, als=als, k=K,
                                       config=config, bootstrap=bootstrap)
    total = round(time.perf_counter() - started, 1)

    print(f"\n{len(documents)} simulated events, {args.listeners} listeners, {args.tracks} tracks; ALS {params}; "
          f"{result.listeners} listeners replayed ({len(batch_lists)} in the holdout), {result.points} points, "
          f"{result.plays} counted plays; 95 % percentile bootstrap over listeners, {args.resamples} resamples")
    print(f"counted play: {rv.PLAY_RULE}\n")
    print(markdown_table(result))
    hit_ratio, ndcg_ratio = result.ratio(rv.HIT_RATE), result.ratio(rv.NDCG)
    print(f"\nlive / batch: hit rate@10 {hit_ratio if hit_ratio is None else round(hit_ratio, 3)}, "
          f"NDCG@10 {ndcg_ratio if ndcg_ratio is None else round(ndcg_ratio, 3)}")
    print(f"share of the top 10 already heard by the listener: live {result.heard_share[rv.LIVE]:.3f}, "
          f"batch {result.heard_share[rv.BATCH]:.3f}")
    print("\nhit rate@10 by held-out events seen (0 = after the last training event):")
    print("| events seen | points | live | batch |\n|---|---|---|---|")
    for row in result.by_step:
        seen = f"{row['step']}+" if row["step"] == rv.STEP_CAP else str(row["step"])
        print(f"| {seen} | {row['points']} | {row['live_hit_rate_at_k']:.4f} | {row['batch_hit_rate_at_k']:.4f} |")
    print(f"\nrun time: simulate {simulate_s} s, Spark split + ALS fit {fit_s} s, replay inputs {inputs_s} s, "
          f"replay + ranking {result.seconds} s ({result.points / max(result.seconds, 1e-9):.0f} live lists/s), "
          f"total {total} s", flush=True)
    print(json.dumps({
        "ground_truth": args.ground_truth, "listeners": args.listeners, "events": len(documents),
        "tracks": args.tracks, "als_params": params, "replayed_listeners": result.listeners, "points": result.points,
        "plays": result.plays, "resamples": args.resamples,
        **{part: {metric: [i.estimate, i.low, i.high] for metric, i in getattr(result, part).items()}
           for _, part in ROWS},
        "live_vs_batch": {"hit_rate_at_k": hit_ratio, "ndcg_at_k": ndcg_ratio},
        "heard_share_at_k": result.heard_share, "by_step": result.by_step,
        "seconds": {"simulate": simulate_s, "fit": fit_s, "inputs": inputs_s, "replay": result.seconds,
                    "total": total},
    }), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
