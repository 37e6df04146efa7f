"""The ETL's extraction steps: chunk planning from the dataset and the per-chunk limit."""

from __future__ import annotations

import sys
import time

import pytest

from pipeline.chunking import AIRFLOW_MAX_MAP_LENGTH
from pipeline.etl import ExtractionRunError, extract_chunk, plan_chunks, run_streaming_output

DATASET = {"name": "local", "metadata_dir": "/nowhere/meta", "audio_dir": "/nowhere/audio", "synthetic": False}


def test_chunk_size_zero_is_chosen_from_the_dataset(settings, tmp_path):
    local = settings.model_copy(update={"state_dir": tmp_path})
    sample = plan_chunks(DATASET, list(range(120)), settings=local, chunk_size=0, workers=2)
    assert len(sample["chunks"]) == 1 and sample["chunk_size"] == 120  # too small to split: one task
    large = plan_chunks(DATASET, list(range(106_574)), settings=local, chunk_size=0, workers=2)
    assert len(large["chunks"]) <= AIRFLOW_MAX_MAP_LENGTH
    assert sum(len(c["track_ids"]) for c in large["chunks"]) == 106_574
    assert all(c["timeout_s"] >= 60 for c in large["chunks"])


def test_an_explicit_chunk_size_overrides_the_choice(settings, tmp_path):
    local = settings.model_copy(update={"state_dir": tmp_path})
    plan = plan_chunks(DATASET, list(range(25)), settings=local, chunk_size=10, workers=2)
    assert [len(c["track_ids"]) for c in plan["chunks"]] == [10, 10, 5]
    assert plan_chunks(DATASET, list(range(25)), settings=local, chunk_size=10, workers=2)["snapshot_id"] == \
        plan["snapshot_id"]  # a rerun finds its extracted chunks


def test_a_command_past_its_limit_is_killed_with_its_children():
    started = time.monotonic()
    code = ("import subprocess, sys, time; print('started', flush=True); "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)")
    returncode, last = run_streaming_output([sys.executable, "-c", code], env={}, timeout_s=1.5)
    assert returncode is None and last == "started"
    assert time.monotonic() - started < 10  # the grandchild's open stdout did not keep us waiting


def test_a_finished_command_reports_its_exit_status():
    assert run_streaming_output([sys.executable, "-c", "print('a\\rb'); raise SystemExit(3)"], env={},
                                timeout_s=30) == (3, "b")


def test_an_extraction_past_the_chunks_limit_fails_the_task_clearly(settings, tmp_path, monkeypatch):
    chunk = {"index": 4, "track_ids": [1, 2], "out_dir": str(tmp_path), "dataset": DATASET, "timeout_s": 0.01}
    with pytest.raises(ExtractionRunError, match=r"chunk 4: extraction took longer than 0 s and was stopped"):
        extract_chunk(chunk, settings=settings, run_id="r", workers=1)
