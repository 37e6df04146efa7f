"""ETL benchmark: wall time of each stage of the ``fma_etl`` DAG, and the load rate.

Runs against the running embedded stack (``make up``): triggers ``fma_etl`` through the
Airflow scheduler on a sample with its own seed (so nothing is reused from earlier runs),
then prints each stage's wall time from the run's ``etl_runs`` record. It also measures
the MongoDB load rate of the pipeline's bulk upsert against the naive reference (one
``replace_one`` per document) on the same documents, side by side, and prints the ratio.

    .venv/bin/python benchmarks/bench_etl.py --tracks 120 --seed 1001
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

from fma_platform.contracts import Collection
from fma_platform.mongo import platform_db, upsert_by
from fma_platform.settings import get_settings
from infra.airflow_api import AirflowApi

SCRATCH = "bench_load_scratch"


def run_dag(api: AirflowApi, conf: dict) -> str:
    started = time.monotonic()
    run_id = api.run_dag("fma_etl", conf, timeout=7200)
    print(f"fma_etl run {run_id} finished in {time.monotonic() - started:.0f}s")
    return run_id


def task_seconds(api: AirflowApi, run_id: str) -> dict[str, float]:
    """Wall seconds per task id (mapped extraction tasks summed) from Airflow."""
    response = api.request("GET", f"/dags/fma_etl/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
    response.raise_for_status()
    totals: dict[str, float] = {}
    for ti in response.json()["task_instances"]:
        if ti.get("duration") is not None:
            totals[ti["task_id"]] = totals.get(ti["task_id"], 0.0) + float(ti["duration"])
    return totals


def load_rate(db, documents: list[dict]) -> tuple[float, float]:
    """Documents/s of the bulk upsert and of one replace_one per document, same documents."""
    scratch = db[SCRATCH]
    scratch.drop()
    began = time.perf_counter()
    upsert_by(scratch, ({k: v for k, v in d.items() if k != "_id"} for d in documents), keys=("track_id",))
    bulk = len(documents) / (time.perf_counter() - began)
    scratch.drop()
    began = time.perf_counter()
    for doc in documents:
        body = {k: v for k, v in doc.items() if k != "_id"}
        scratch.replace_one({"track_id": body["track_id"]}, body, upsert=True)
    naive = len(documents) / (time.perf_counter() - began)
    scratch.drop()
    return bulk, naive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=120)
    parser.add_argument("--seed", type=int, default=1001)
    parser.add_argument("--chunk-size", type=int, default=50)
    args = parser.parse_args(argv)
    settings = get_settings()
    api = AirflowApi.from_settings(settings)
    conf = {"dataset": "sample", "sample_tracks": args.tracks, "sample_seed": args.seed,
            "chunk_size": args.chunk_size, "workers": 1}
    run_id = run_dag(api, conf)
    db = platform_db(settings)
    run = db[Collection.ETL_RUNS].find_one({"run_id": run_id}) or {}
    tasks = task_seconds(api, run_id)
    print(f"\nStages of {run_id} ({args.tracks} synthetic tracks, seed {args.seed}):")
    print(f"{'task':<16}{'wall s':>10}")
    for task_id, seconds in tasks.items():
        print(f"{task_id:<16}{seconds:>10.1f}")
    counts = run.get("counts", {})
    print(f"\ncounts: {counts}")
    print(f"load step rate (documents/s, incl. reading Parquet): {run.get('load_docs_per_second')}")

    documents = list(db[Collection.TRACK_FEATURES].find({}))
    if documents:
        bulk, naive = load_rate(db, documents)
        print(f"\nMongoDB load of {len(documents)} track_features documents "
              f"(518 features + embedding each), {datetime.now(timezone.utc):%Y-%m-%d}:")
        print(f"  bulk upsert (ours)          {bulk:8.0f} docs/s")
        print(f"  replace_one per doc (naive) {naive:8.0f} docs/s")
        print(f"  ratio                       {bulk / naive:8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
