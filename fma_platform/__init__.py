"""The platform's shared core: what every layer agrees on, and the one way to do shared things.

Contracts: settings (``settings``), collection/topic/model-family names (``contracts``),
the listening-event schema (``events``), what events mean (``listening``), the
``model_runs`` and ``stream_metrics`` documents (``model_runs``, ``stream_status``),
catalogue search (``catalogue``), error roots (``errors``). Shared mechanics: the MongoDB
client and write patterns (``mongo``), the Kafka producer and admin (``producer``,
``kafka``), the model store (``model_store``), the track-embedding loader
(``embeddings``), atomic files (``files``), service health (``health``).

It imports no other package of the project, and never Airflow, Spark or Streamlit.
``PROJECT_ROOT``, ``Settings`` and ``get_settings`` are importable from here, but loaded
on first use: importing a light module (``fma_platform.files``, ``fma_platform.errors``)
must not pay for pydantic (~0.3 s, and a command-line tool pays it on every run).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["PROJECT_ROOT", "Settings", "get_settings"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("fma_platform.settings"), name)
    raise AttributeError(f"module 'fma_platform' has no attribute {name!r}")
