"""The platform's shared core: what every layer agrees on, and the one way to do shared things.

Contracts: settings (``settings``), collection/topic/model-family names (``contracts``),
the listening-event schema (``events``), what events mean (``listening``), the
``model_runs`` and ``stream_metrics`` documents (``model_runs``, ``stream_status``),
catalogue search (``catalogue``), error roots (``errors``). Shared mechanics: the MongoDB
client and write patterns (``mongo``), the Kafka producer and admin (``producer``,
``kafka``), the model store (``model_store``), the track-embedding loader
(``embeddings``), atomic files (``files``), service health (``health``).

It imports no other package of the project, and never Airflow, Spark or Streamlit.
"""

from fma_platform.settings import PROJECT_ROOT, Settings, get_settings

__all__ = ["PROJECT_ROOT", "Settings", "get_settings"]
