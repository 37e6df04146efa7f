"""Every DAG file imports cleanly, does no work at parse time, and is well formed."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from fma_platform.settings import PROJECT_ROOT

DAG_FILES = sorted(p for p in (PROJECT_ROOT / "dags").glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dag_bag():
    """Parse dags/ with every network connection refused, as proof of no parse-time I/O."""
    from airflow.dag_processing.dagbag import DagBag

    real_connect = socket.socket.connect

    def refuse(sock, address):
        raise AssertionError(f"a DAG file opened a network connection at parse time: {address}")

    socket.socket.connect = refuse
    try:
        started = time.monotonic()
        bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
        bag.parse_seconds = time.monotonic() - started
    finally:
        socket.socket.connect = real_connect
    return bag


def test_there_are_dag_files():
    assert DAG_FILES, "dags/ holds no DAG file"


def test_every_dag_file_imports_without_errors(dag_bag):
    assert dag_bag.import_errors == {}
    parsed_files = {Path(dag.fileloc).name for dag in dag_bag.dags.values()}
    assert parsed_files == {p.name for p in DAG_FILES}


def test_parsing_is_quick(dag_bag):
    assert dag_bag.parse_seconds < 30, f"parsing dags/ took {dag_bag.parse_seconds:.1f}s"


@pytest.mark.parametrize("attribute", ["tags", "retries"])
def test_every_dag_has_tags_and_retries(dag_bag, attribute):
    for dag_id, dag in dag_bag.dags.items():
        if attribute == "tags":
            assert dag.tags, f"{dag_id} has no tags"
        else:
            for task in dag.tasks:
                assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


def test_every_etl_task_has_a_wall_clock_limit(dag_bag):
    """A hung download, extraction or Spark job fails and retries instead of holding the run."""
    dag = dag_bag.dags["fma_etl"]
    limits = {task.task_id: task.execution_timeout for task in dag.tasks}
    assert all(limit is not None for limit in limits.values()), limits
    assert limits["acquire"] > limits["extract_chunk"] > limits["load"]
    assert dag.params["chunk_size"] == 0  # chosen from the dataset unless a run says otherwise


def test_extraction_chunks_at_once_follow_the_setting(dag_bag, settings):
    """One chunk at a time on one machine; one per Celery worker under compose (its setting)."""
    extract = dag_bag.dags["fma_etl"].get_task("extract_chunk")
    assert extract.max_active_tis_per_dagrun == settings.extract_parallel_chunks == 1


def test_dags_start_unpaused_on_both_stacks(settings):
    """fma_training is scheduled on the ETL's asset: a paused DAG would never follow an
    ETL run a data engineer triggers from the UI."""
    import yaml

    from infra.services import airflow_env

    assert airflow_env(settings)["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yaml").read_text())
    airflow_env_of_compose = compose["x-airflow"]["environment"]
    assert str(airflow_env_of_compose["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"]) == "False"


def test_the_etl_marks_its_run_failed_whatever_task_fails(dag_bag):
    from plugins.callbacks import etl_run_failed, failure_reason

    dag = dag_bag.dags["fma_etl"]
    assert dag.on_failure_callback is etl_run_failed or etl_run_failed in dag.on_failure_callback

    class FailedTask:
        task_id, map_index = "extract_chunk", 3

    assert failure_reason({"reason": "task_failure", "task_instance": FailedTask()}) == \
        "DAG run failed: task_failure (task extract_chunk[3])"
    assert failure_reason({}) == "DAG run failed: the DAG run failed"
