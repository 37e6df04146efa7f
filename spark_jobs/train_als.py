"""spark-submit entrypoint: implicit-ALS recommendations, tuned, evaluated, registered, published.

``spark-submit spark_jobs/train_als.py --run-id R --k 10 --holdout 5 --seed 7
  --grid "rank=8,16;regParam=0.01,0.1;alpha=1,10;maxIter=10" [--events PATH]``

Parses the arguments and calls ``spark_jobs.recommend.training.run`` (the steps are
described there). Ends with one JSON summary line; exit code 2 with a JSON error line on
stderr when the job refuses its input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fma_platform.settings import get_settings
from spark_jobs.entry import run_job
from spark_jobs.recommend.training import DEFAULT_GRID, DEFAULT_MIN_TRAIN_TRACKS, TrainingOptions, parse_grid, run


def parse_holdout(text: str) -> int | float:
    value = float(text)
    return int(value) if value >= 1 and value.is_integer() else value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-id", required=True, help="the job run (one fma_training DAG run)")
    parser.add_argument("--k", type=int, default=10, help="cut-off of the metrics and length of published lists")
    parser.add_argument("--grid", default=DEFAULT_GRID, help="name=v1,v2;... over rank, regParam, alpha, maxIter")
    parser.add_argument("--holdout", type=parse_holdout, default=5,
                        help="per-user test tracks: an int N (last N) or a fraction in (0, 1)")
    parser.add_argument("--min-train-tracks", type=int, default=DEFAULT_MIN_TRAIN_TRACKS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events", type=Path, help="Parquet or JSONL events instead of MongoDB")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def work() -> dict:
        options = TrainingOptions(job_run_id=args.run_id, grid=parse_grid(args.grid), k=args.k, holdout=args.holdout,
                                  min_train_tracks=args.min_train_tracks, seed=args.seed, events_path=args.events)
        return run(get_settings(), options)

    return run_job(work)


if __name__ == "__main__":
    sys.exit(main())
