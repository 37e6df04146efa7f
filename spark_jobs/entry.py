"""What every spark-submit entry file shares: its logging, its session's lifetime, its exit contract.

An entry file parses its arguments and hands one piece of work to ``run_job``:

* exit 0: the work's summary printed as one line on stdout (the DAG's task log shows it);
* exit 2: the platform refused the input or the state (a ``PlatformError``): one JSON line
  ``{"error": reason code or error class, "detail": what and where}`` on stderr, no
  traceback: the task fails with a reason a data engineer can act on;
* anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fma_platform.errors import PlatformError, ReasonedError
from fma_platform.settings import Settings
from spark_jobs.session import spark_session

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run_job(work: Callable[[], Any], *, summarise: Callable[[Any], str] | None = None,
            level: int = logging.WARNING) -> int:
    """Run ``work``; print its summary and return 0, or print the refusal and return 2."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    try:
        summary = work()
    except PlatformError as exc:
        print(json.dumps(error_document(exc)), file=sys.stderr, flush=True)
        return 2
    print(summarise(summary) if summarise else json.dumps(summary, default=str), flush=True)
    return 0


def error_document(exc: PlatformError) -> dict[str, str]:
    """``{"error", "detail"}`` of a refusal: the stable reason code when the error has one."""
    if isinstance(exc, ReasonedError):
        return {"error": exc.reason, "detail": exc.detail}
    return {"error": type(exc).__name__, "detail": str(exc)}


@contextmanager
def job_session(app_name: str, settings: Settings) -> Iterator[Any]:
    """The job's SparkSession, stopped when the work is done (or failed)."""
    spark = spark_session(app_name, settings=settings)
    try:
        yield spark
    finally:
        spark.stop()
