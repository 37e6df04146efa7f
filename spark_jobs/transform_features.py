"""spark-submit entrypoint: fit the feature transform and embed every track (the ETL's transform step).

``spark-submit spark_jobs/transform_features.py --features OUT_DIR/chunks --out EMB.parquet
[--model-dir DIR] [--version V] [--k 32] [--no-normalize]``

Parses the arguments and runs :func:`spark_jobs.features.job.run` (the transform is
described in ``spark_jobs.features.transform``). Prints one JSON summary line; bad input
exits 2 with a JSON error line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fma_platform.settings import Settings, get_settings
from spark_jobs.features.job import default_model_dir, run, summary_line
from spark_jobs.features.transform import DEFAULT_K
from spark_jobs.entry import job_session, run_job

APP_NAME = "transform-features"


def parse_args(argv: list[str] | None, settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True, help="Parquet file, folder or glob of extraction chunks")
    parser.add_argument("--out", required=True, help="embeddings Parquet (track_id, embedding, model_version)")
    parser.add_argument("--model-dir", type=Path, default=default_model_dir(settings),
                        help="the feature_transform model store's folder")
    parser.add_argument("--version", default=None, help="run id or snapshot id; default: hash of data + params")
    parser.add_argument("--k", type=int, default=DEFAULT_K, help="PCA components (capped by the data)")
    parser.add_argument("--no-normalize", dest="normalize", action="store_false",
                        help="keep PCA coordinates instead of unit-length embeddings")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    args = parse_args(argv, settings)

    def work() -> dict:
        with job_session(APP_NAME, settings) as spark:
            return run(spark, features_path=args.features, out=args.out, model_dir=args.model_dir,
                       k=args.k, normalize=args.normalize, version=args.version, settings=settings)

    return run_job(work, summarise=summary_line)


if __name__ == "__main__":
    sys.exit(main())
