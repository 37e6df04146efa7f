"""spark-submit entrypoint: the k most similar tracks of every track, by LSH, measured honestly.

``spark-submit spark_jobs/similar_tracks.py --run-id R [--k 10] [--grid "bucket_lengths=..;tables=..[;hashes=..]"]
[--method lsh|exact|auto]``

Parses the arguments and runs :func:`spark_jobs.similarity.job.run` (what it reads, tunes
and writes is described there and in ``spark_jobs.similarity``). Prints one JSON summary
line; bad input exits 2 with a JSON error line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fma_platform.mongo import platform_db
from fma_platform.settings import get_settings
from spark_jobs.entry import job_session, run_job
from spark_jobs.similarity.job import DEFAULT_EXACT_MAX_TRACKS, METHOD_LSH, METHODS, JobOptions, run, summary_line
from spark_jobs.similarity.neighbours import DEFAULT_K, DEFAULT_SEED
from spark_jobs.similarity.tuning import DEFAULT_GRID, DEFAULT_SAMPLE_FRACTION, DEFAULT_TARGET_RECALL, MIN_QUERIES

APP_NAME = "similar-tracks"


def parse_args(argv: list[str] | None) -> JobOptions:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-id", required=True, help="the job run whose model_runs documents this run writes")
    parser.add_argument("--k", type=int, default=DEFAULT_K, help="neighbours per track")
    parser.add_argument("--grid", default=DEFAULT_GRID, help='"bucket_lengths=..;tables=..[;hashes=..]"')
    parser.add_argument("--target-recall", type=float, default=DEFAULT_TARGET_RECALL)
    parser.add_argument("--sample-fraction", type=float, default=DEFAULT_SAMPLE_FRACTION,
                        help=f"query tracks for recall (at least {MIN_QUERIES})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--model-version", default=None, help="default: hash of data + chosen params")
    parser.add_argument("--embeddings", default=None, help="Parquet track_id, embedding (default: track_features)")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="model store folder (default: <models_dir>/similar_tracks)")
    parser.add_argument("--method", choices=METHODS, default=METHOD_LSH,
                        help="neighbours written: lsh, exact, or auto (exact up to --exact-max-tracks)")
    parser.add_argument("--exact-max-tracks", type=int, default=DEFAULT_EXACT_MAX_TRACKS,
                        help="up to this size exact kNN of every track is computed and timed")
    return JobOptions(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    settings = get_settings()

    def work() -> dict:
        with job_session(APP_NAME, settings) as spark:
            return run(spark, platform_db(settings), options, settings=settings)

    return run_job(work, summarise=summary_line)


if __name__ == "__main__":
    sys.exit(main())
