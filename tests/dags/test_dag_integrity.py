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
