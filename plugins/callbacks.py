"""Airflow callbacks that keep the platform's run summaries true when a DAG run fails.

A step that fails knowingly (the quality gate) records its own reason; these callbacks
cover every other way a run ends in failure: any task failing for good, upstream
failures, a run killed by a timeout.
"""

from __future__ import annotations


def etl_run_failed(context) -> None:
    """``fma_etl``'s DAG-level ``on_failure_callback``: mark its ``etl_runs`` summary failed."""
    from pipeline import etl
    from plugins.platform_hooks import platform_settings

    etl.mark_run_failed(platform_settings(), context["run_id"], failure_reason(context))


def failure_reason(context) -> str:
    """What Airflow says ended the run, and the last task it looked at."""
    reason = context.get("reason") or "the DAG run failed"
    task_instance = context.get("task_instance")
    if task_instance is None:
        return f"DAG run failed: {reason}"
    index = getattr(task_instance, "map_index", -1)
    task = task_instance.task_id if index is None or index < 0 else f"{task_instance.task_id}[{index}]"
    return f"DAG run failed: {reason} (task {task})"
