"""spark-submit entrypoint that proves Spark runs: ``spark-submit spark_jobs/check_spark.py``.

Runs a small distributed aggregation and prints one JSON line with the Spark version,
master, parallelism, the aggregation's result and the endpoints the job was given (MongoDB
database, Kafka bootstrap servers; never credentials), so a DAG or a person can check the
installation end to end (JVM, Python workers, shuffle) and that Spark jobs see the same
endpoints as the tasks.
"""

from __future__ import annotations

import argparse
import json
import sys

from pyspark.sql import DataFrame, functions as F

from fma_platform.settings import get_settings
from spark_jobs.session import spark_session


def residue_counts(numbers: DataFrame, *, modulus: int) -> DataFrame:
    """How many of ``numbers.id`` fall in each residue class modulo ``modulus``."""
    return numbers.groupBy((F.col("id") % modulus).alias("residue")).count().orderBy("residue")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--modulus", type=int, default=7)
    args = parser.parse_args(argv)
    settings = get_settings()
    spark = spark_session("check-spark", settings=settings)
    try:
        counts = residue_counts(spark.range(args.rows), modulus=args.modulus).collect()
        report = {
            "spark_version": spark.version,
            "master": spark.sparkContext.master,
            "default_parallelism": spark.sparkContext.defaultParallelism,
            "rows": sum(row["count"] for row in counts),
            "residues": len(counts),
            "mongo_db": settings.mongo_db,
            "kafka_bootstrap": settings.kafka_bootstrap,
        }
        print(json.dumps(report))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
