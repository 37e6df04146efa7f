"""LSH (Spark) vs exact kNN (numpy) for similar tracks: seconds, recall@10, genre precision.

    .venv/bin/python benchmarks/bench_similar_tracks.py [--sizes 5000,20000] [--grid "..."]
    .venv/bin/python benchmarks/bench_similar_tracks.py --track-features   # the real catalogue in MongoDB

Synthetic data: clustered unit vectors (32 dims, 16 clusters standing for top-level
genres; see ``tests/spark_jobs/test_similar_tracks.py``). For each catalogue, in one run:
exact top 10 of every track (numpy on the driver, timed), ``tune_lsh`` over the grid
(recall@10 of a query sample against exact kNN over the full catalogue), then the chosen
LSH configuration for every track (timed, Spark ``local[2]``), its recall@10 over *all*
tracks, genre precision@10 of LSH, exact and random neighbours, and the time ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.spark_jobs.test_similar_tracks

DEFAULT_GRID = "bucket_lengths=0.1,0.2;tables=16,32;hashes=3,4"


def measure(spark, catalogue, genres: dict, *, grid: str, k: int, sample_fraction: float, seed: int) -> dict:
    """One catalogue: exact vs tuned LSH, every number the report needs."""
    from spark_jobs.similar_tracks import (
        approx_neighbours, catalogue_frame, exact_top_k, fit_lsh, genre_precision, neighbour_lists,
        random_neighbours, recall_at_k, tune_lsh,
    )

    started = time.perf_counter()
    exact = exact_top_k(catalogue.vectors, catalogue.ids, k=k)
    exact_seconds = time.perf_counter() - started

    df = catalogue_frame(spark, catalogue).cache()
    df.count()
    try:
        started = time.perf_counter()
        tuning = tune_lsh(df, grid=grid, k=k, sample_fraction=sample_fraction, seed=seed, catalogue=catalogue)
        tune_seconds = time.perf_counter() - started
        chosen = tuning.chosen.params
        started = time.perf_counter()
        index = fit_lsh(df, bucket_length=chosen.bucket_length, num_hash_tables=chosen.num_hash_tables,
                        hashes_per_table=chosen.hashes_per_table, seed=seed)
        approx = approx_neighbours(index, df, k=k).toPandas()
        lsh_seconds = time.perf_counter() - started
    finally:
        df.unpersist()
    approx_lists, exact_lists = neighbour_lists(approx), neighbour_lists(exact)
    return {
        "tracks": catalogue.size,
        "chosen": chosen.label,
        "target_met": tuning.target_met,
        "trials": [{"params": t.params.label, "recall": round(t.recall, 4), "seconds": round(t.seconds, 1),
                    "work_fraction": round(t.work_fraction, 4)} for t in tuning.trials],
        "tune_seconds": round(tune_seconds, 1),
        f"recall_at_{k}_sample": round(tuning.chosen.recall, 4),
        f"recall_at_{k}_all": round(recall_at_k(approx_lists, exact_lists, k), 4),
        "lsh_seconds": round(lsh_seconds, 2),
        "exact_seconds": round(exact_seconds, 2),
        "lsh_over_exact_time": round(lsh_seconds / exact_seconds, 2),
        f"genre_precision_at_{k}_lsh": _rounded(genre_precision(approx_lists, genres, k)),
        f"genre_precision_at_{k}_exact": _rounded(genre_precision(exact_lists, genres, k)),
        f"genre_precision_at_{k}_random": _rounded(
            genre_precision(random_neighbours(catalogue.ids, k=k, seed=seed), genres, k)),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def synthetic(n: int, seed: int):
    from spark_jobs.similar_tracks import build_catalogue
    from tests.spark_jobs.test_similar_tracks import clustered_unit_vectors

    ids, vectors, genres = clustered_unit_vectors(n, seed=seed)
    frame = pd.DataFrame({"track_id": ids, "embedding": list(vectors)})
    return build_catalogue(frame), dict(zip(ids.tolist(), genres.tolist()))


def real_catalogue():
    from fma_platform.mongo import platform_db
    from spark_jobs.similar_tracks import build_catalogue, read_embeddings_from_mongo, read_track_genres

    db = platform_db()
    return build_catalogue(read_embeddings_from_mongo(db)), read_track_genres(db)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,20000", help="synthetic catalogue sizes")
    parser.add_argument("--track-features", action="store_true", help="use MongoDB track_features instead")
    parser.add_argument("--grid", default=DEFAULT_GRID)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--sample-fraction", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from spark_jobs.session import spark_session

    catalogues = [("track_features", *real_catalogue())] if args.track_features else [
        (f"synthetic-{n}", *synthetic(int(n), args.seed)) for n in args.sizes.split(",")]
    spark = spark_session("bench-similar-tracks", master="local[2]", shuffle_partitions=4)
    try:
        for name, catalogue, genres in catalogues:
            result = measure(spark, catalogue, genres, grid=args.grid, k=args.k,
                             sample_fraction=args.sample_fraction, seed=args.seed)
            print(json.dumps({"catalogue": name, **result}), flush=True)
            print(f"{name}: LSH {result['lsh_seconds']} s vs exact {result['exact_seconds']} s "
                  f"(LSH/exact = {result['lsh_over_exact_time']}x), recall@{args.k} "
                  f"{result[f'recall_at_{args.k}_all']}, genre precision LSH "
                  f"{result[f'genre_precision_at_{args.k}_lsh']} vs random "
                  f"{result[f'genre_precision_at_{args.k}_random']}", flush=True)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
