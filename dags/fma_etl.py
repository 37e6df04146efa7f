"""FMA ETL: acquire -> catalogue (staged) -> extract (mapped chunks) -> validate (GX) ->
transform (Spark) -> load (publishes catalogue + features to MongoDB) -> the
``fma_track_features`` asset.

Listeners see a run's tracks only after its gate passed: a failed run changes nothing
they can find or play (``pipeline.etl``, "Staging").

Every step is a function of ``pipeline.etl``; this file only wires them. Re-running the
DAG (or retrying any task) leaves the same documents: all writes are upserts on natural
keys and extracted chunks are reused.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from fma_platform.settings import get_settings
from plugins.callbacks import etl_run_failed
from plugins.operators import PlatformSparkSubmitOperator
from plugins.platform_hooks import TRACK_FEATURES_ASSET

PARAMS = {
    "dataset": Param("sample", enum=["sample", "small", "medium", "large", "local"],
                     description="sample = generated synthetic FMA-shaped data; small/medium/large = real FMA"),
    "metadata_dir": Param("", type="string", description="fma_metadata folder (local dataset, or override)"),
    "audio_dir": Param("", type="string", description="audio folder in FMA layout (local dataset, or override)"),
    "chunk_size": Param(0, type="integer", minimum=0,
                        description="tracks per extraction task; 0: chosen from the dataset (pipeline.chunking)"),
    "workers": Param(2, type="integer", minimum=1, description="processes per extraction task"),
    "max_failure_fraction": Param(0.1, type="number", minimum=0, maximum=1,
                                  description="share of tracks allowed to fail before the DAG fails"),
    "sample_tracks": Param(0, type="integer", minimum=0, description="sample size (0: from settings)"),
    "sample_seed": Param(0, type="integer", minimum=0, description="sample seed (0: from settings)"),
    "pca_components": Param(32, type="integer", minimum=2, description="embedding dimensions"),
}


# Wall-clock limits: a hung task fails (and retries) instead of holding the run forever.
TASK_TIMEOUT = timedelta(hours=2)  # catalogue, validate, transform, load of fma_large
ACQUIRE_TIMEOUT = timedelta(hours=12)  # downloading fma_large's 93 GiB archive
EXTRACT_TASK_TIMEOUT = timedelta(hours=6)  # a backstop: each chunk has its own, sized limit


def _run() -> tuple[str, datetime]:
    context = get_current_context()
    return context["run_id"], context["dag_run"].start_date or context["logical_date"]


@dag(
    dag_id="fma_etl",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params=PARAMS,
    tags=["etl", "fma"],
    max_active_runs=1,
    max_active_tasks=2,
    render_template_as_native_obj=True,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=15), "execution_timeout": TASK_TIMEOUT},
    # Any task failing for good marks the run's etl_runs summary failed (not only validate).
    on_failure_callback=etl_run_failed,
    doc_md=__doc__,
)
def fma_etl():
    from plugins.platform_hooks import platform_settings

    @task(execution_timeout=ACQUIRE_TIMEOUT)
    def acquire(params: dict | None = None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from pipeline import etl
        from pipeline.datasets import DatasetError

        run_id, started = _run()
        try:
            return etl.acquire(dict(params), settings=platform_settings(), run_id=run_id, started_at=started)
        except DatasetError as exc:
            raise AirflowFailException(str(exc)) from exc  # wrong params or files: retrying cannot help

    @task
    def catalogue(acquired: dict) -> dict:
        from pipeline import etl

        run_id, started = _run()
        return etl.catalogue(acquired["dataset"], settings=platform_settings(), run_id=run_id, recorded_at=started)

    @task
    def plan_chunks(acquired: dict, catalogued: dict, params: dict | None = None) -> dict:
        from pipeline import etl

        return etl.plan_chunks(acquired["dataset"], catalogued["track_ids"], settings=platform_settings(),
                               chunk_size=int(params["chunk_size"]), workers=int(params["workers"]))

    @task
    def chunks_of(plan: dict) -> list[dict]:
        return plan["chunks"]

    # Each chunk also stops its extractor after the chunk's own limit (pipeline.chunking);
    # chunks at once: Settings.extract_parallel_chunks (one per Celery worker under compose).
    @task(max_active_tis_per_dagrun=get_settings().extract_parallel_chunks, retries=3,
          execution_timeout=EXTRACT_TASK_TIMEOUT)
    def extract_chunk(chunk: dict, params: dict | None = None) -> dict:
        from pipeline import etl

        run_id, _ = _run()
        return etl.extract_chunk(chunk, settings=platform_settings(), run_id=run_id, workers=int(params["workers"]))

    # Runs when some extraction chunks failed for good: their tracks count as failures.
    @task(trigger_rule="all_done_min_one_success")
    def validate(plan: dict, catalogued: dict, extracted: list[dict], params: dict | None = None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from pipeline import etl
        from pipeline.load import ToleranceExceededError
        from pipeline.quality import QualityGateError

        run_id, started = _run()
        try:
            return etl.validate(plan, catalogued, settings=platform_settings(), run_id=run_id,
                                max_failure_fraction=float(params["max_failure_fraction"]), validated_at=started,
                                chunk_results=list(extracted))
        except (QualityGateError, ToleranceExceededError) as exc:
            etl.mark_run_failed(platform_settings(), run_id, str(exc))
            raise AirflowFailException(str(exc)) from exc  # bad data: retrying cannot help

    @task
    def plan_transform(plan: dict, params: dict | None = None) -> dict:
        from pipeline import etl

        run_id, _ = _run()
        return etl.transform_plan(plan, settings=platform_settings(), k=int(params["pca_components"]), run_id=run_id)

    transform = PlatformSparkSubmitOperator(
        task_id="transform",
        job="transform_features",
        application_args="{{ ti.xcom_pull(task_ids='plan_transform')['args'] }}",
    )

    @task(outlets=[TRACK_FEATURES_ASSET])
    def load(plan: dict, catalogued: dict, transform_args: dict) -> dict:
        from pipeline import etl

        run_id, started = _run()
        return etl.load(plan, catalogued, transform_args, settings=platform_settings(), run_id=run_id,
                        loaded_at=started)

    acquired = acquire()
    catalogued = catalogue(acquired)
    plan = plan_chunks(acquired, catalogued)
    extracted = extract_chunk.expand(chunk=chunks_of(plan))
    validated = validate(plan, catalogued, extracted)
    transform_args = plan_transform(plan)
    validated >> transform_args >> transform >> load(plan, catalogued, transform_args)


fma_etl()
