"""Shared contracts of the platform: settings, collection and topic names, clients.

Every layer (DAGs, Spark jobs, the extractor's callers, the Streamlit app, infra scripts)
imports its configuration and names from here and nowhere else.
"""

from fma_platform.settings import PROJECT_ROOT, Settings, get_settings

__all__ = ["PROJECT_ROOT", "Settings", "get_settings"]
