"""LSH (Spark) vs exact kNN (numpy) for similar tracks: seconds, recall@k, genre precision.

    .venv/bin/python benchmarks/bench_similar_tracks.py [--sizes 5000,20000] [--grid "..."]
    .venv/bin/python benchmarks/bench_similar_tracks.py --track-features   # the real catalogue in MongoDB

Synthetic data: clustered unit vectors (32 dims, 16 clusters standing for top-level
genres; ``spark_jobs.similarity.synthetic``). For each catalogue, in one run: exact top k
of every track (numpy on the driver, timed), ``tune_lsh`` over the grid (recall@k of a
query sample against exact kNN over the full catalogue), then the chosen LSH
configuration for every track (timed, Spark ``local[2]``), its recall@k over *all*
tracks, genre precision@k of LSH, exact and random neighbours, and the time ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

DEFAULT_GRID = "bucket_lengths=0.1,0.2;tables=16,32;hashes=3,4"


def measure(spark, embeddings, genres: dict, *, grid: str, k: int, sample_fraction: float, seed: int) -> dict:
    """One catalogue: exact vs tuned LSH, every number the report needs."""
    from spark_jobs.similarity.neighbours import (
        approx_neighbours, embeddings_frame, exact_top_k, fit_lsh, neighbour_lists,
    )
    from spark_jobs.similarity.quality import genre_precision, random_neighbours, recall_at_k
    from spark_jobs.similarity.tuning import tune_lsh

    started = time.perf_counter()
    exact = exact_top_k(embeddings.vectors, embeddings.ids, k=k)
    exact_seconds = time.perf_counter() - started

    df = embeddings_frame(spark, embeddings).cache()
    df.count()
    try:
        started = time.perf_counter()
        tuning = tune_lsh(embeddings, df, grid=grid, k=k, sample_fraction=sample_fraction, seed=seed)
        tune_seconds = time.perf_counter() - started
        chosen = tuning.chosen.params
        started = time.perf_counter()
        approx = approx_neighbours(fit_lsh(df, chosen, seed=seed), df, k=k).toPandas()
        lsh_seconds = time.perf_counter() - started
    finally:
        df.unpersist()
    approx_lists, exact_lists = neighbour_lists(approx), neighbour_lists(exact)
    return {
        "tracks": embeddings.size,
        "k": k,
        "chosen": chosen.label,
        "target_met": tuning.target_met,
        "trials": [{"params": t.params.label, "recall": round(t.recall, 4), "seconds": round(t.seconds, 1),
                    "work_fraction": round(t.work_fraction, 4)} for t in tuning.trials],
        "tune_seconds": round(tune_seconds, 1),
        "recall_at_k_sample": round(tuning.chosen.recall, 4),
        "recall_at_k_all": round(recall_at_k(approx_lists, exact_lists, k), 4),
        "lsh_seconds": round(lsh_seconds, 2),
        "exact_seconds": round(exact_seconds, 2),
        "lsh_over_exact_time": round(lsh_seconds / exact_seconds, 2),
        "genre_precision_at_k_lsh": _rounded(genre_precision(approx_lists, genres, k)),
        "genre_precision_at_k_exact": _rounded(genre_precision(exact_lists, genres, k)),
        "genre_precision_at_k_random": _rounded(
            genre_precision(random_neighbours(embeddings.ids, k=k, seed=seed), genres, k)),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def real_catalogue():
    """The usable embeddings of ``track_features`` and the tracks' top-level genres."""
    from fma_platform.embeddings import load_track_embeddings
    from fma_platform.mongo import platform_db
    from spark_jobs.similarity.inputs import read_track_genres

    db = platform_db()
    return load_track_embeddings(db), read_track_genres(db)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,20000", help="synthetic catalogue sizes")
    parser.add_argument("--track-features", action="store_true", help="use MongoDB track_features instead")
    parser.add_argument("--grid", default=DEFAULT_GRID)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--sample-fraction", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from fma_platform.settings import get_settings
    from infra.services import spark_env
    from spark_jobs.session import spark_session
    from spark_jobs.similarity.synthetic import clustered_embeddings

    catalogues = [("track_features", *real_catalogue())] if args.track_features else [
        (f"synthetic-{n}", *clustered_embeddings(int(n), seed=args.seed)) for n in args.sizes.split(",")]
    os.environ.update(spark_env(get_settings()))  # what the embedded stack gives its Spark jobs
    spark = spark_session("bench-similar-tracks", master="local[2]", shuffle_partitions=4)
    try:
        for name, embeddings, genres in catalogues:
            result = measure(spark, embeddings, genres, grid=args.grid, k=args.k,
                             sample_fraction=args.sample_fraction, seed=args.seed)
            print(json.dumps({"catalogue": name, **result}), flush=True)
            print(f"{name}: LSH {result['lsh_seconds']} s vs exact {result['exact_seconds']} s "
                  f"(LSH/exact = {result['lsh_over_exact_time']}x), recall@{args.k} "
                  f"{result['recall_at_k_all']}, genre precision LSH "
                  f"{result['genre_precision_at_k_lsh']} vs random "
                  f"{result['genre_precision_at_k_random']}", flush=True)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
