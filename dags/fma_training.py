"""Train the recommenders: simulated listeners (bootstrap) -> similar tracks (LSH, tuned
for recall against exact kNN) -> ALS with tuning, evaluation against baselines, champion
promotion and published recommendations.

Scheduled daily and whenever the ETL publishes new track features. Every job upserts on
natural keys and derives versions from its data, so a re-run is idempotent.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from plugins.operators import PlatformSparkSubmitOperator
from plugins.platform_hooks import TRACK_FEATURES_ASSET

PARAMS = {
    "simulate_listeners": Param(True, type="boolean", description="bootstrap with simulated listeners"),
    "listeners": Param(500, type="integer", minimum=1),
    "events": Param(50_000, type="integer", minimum=100),
    "seed": Param(7, type="integer", minimum=0),
    "simulation_start": Param("2026-01-01T00:00:00+00:00", type="string",
                              description="simulated time of the first session (ISO 8601)"),
    "k": Param(10, type="integer", minimum=1),
    "lsh_grid": Param("bucket_lengths=0.1,0.2;tables=8,16,32;hashes=3,4", type="string",
                      description="LSH configurations tried; the cheapest with recall@k >= 0.95 wins"),
    "als_grid": Param("rank=16,32;regParam=0.1;alpha=1,10;maxIter=10", type="string",
                      description="ALS grid, selected on NDCG@10 of a validation split"),
    "holdout": Param(5, type="integer", minimum=1, description="last events per user held out for evaluation"),
}


@dag(
    dag_id="fma_training",
    # Daily at 03:00 UTC and whenever the ETL publishes features. No start_date, so
    # unpausing does not start a catch-up run of a past 03:00.
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * *", timezone="UTC", run_immediately=False),
        assets=[TRACK_FEATURES_ASSET],
    ),
    catchup=False,
    params=PARAMS,
    tags=["training", "models"],
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    doc_md=__doc__,
)
def fma_training():
    @task
    def bootstrap_listeners(params: dict | None = None) -> dict:
        from pipeline.training import bootstrap_listeners as simulate, require_training_data
        from plugins.platform_hooks import platform_settings

        settings = platform_settings()
        result = {}
        if params["simulate_listeners"]:
            result = simulate(settings, listeners=int(params["listeners"]), events=int(params["events"]),
                              seed=int(params["seed"]), start=params["simulation_start"])
        return result | require_training_data(settings)

    similar_tracks = PlatformSparkSubmitOperator(
        task_id="similar_tracks",
        job="similar_tracks",
        # auto: exact kNN is written while the catalogue is small enough for it to be cheaper
        # (measured: benchmarks/bench_similar_tracks.py); LSH is tuned and recorded either way.
        application_args=["--run-id", "{{ run_id }}", "--k", "{{ params.k }}", "--grid", "{{ params.lsh_grid }}",
                          "--method", "auto"],
    )

    train_als = PlatformSparkSubmitOperator(
        task_id="train_als",
        job="train_als",
        application_args=["--run-id", "{{ run_id }}", "--k", "{{ params.k }}", "--grid", "{{ params.als_grid }}",
                          "--holdout", "{{ params.holdout }}", "--seed", "{{ params.seed }}"],
    )

    @task
    def report(params: dict | None = None) -> dict:
        from airflow.sdk import get_current_context

        from pipeline.training import training_report
        from plugins.platform_hooks import platform_settings

        return training_report(platform_settings(), run_id=get_current_context()["run_id"])

    bootstrap_listeners() >> similar_tracks >> train_als >> report()


fma_training()
