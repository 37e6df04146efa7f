"""Platform page: which services answer, and what the database holds."""

from __future__ import annotations

import streamlit as st

from fma_platform.contracts import Collection
from fma_platform.mongo import platform_db
from fma_platform.settings import get_settings


@st.cache_data(ttl=10, show_spinner=False)
def collection_counts() -> dict[str, int]:
    """Documents per platform collection (cached briefly; raises when MongoDB is down)."""
    db = platform_db(timeout_ms=1500)
    return {name.value: db[name.value].estimated_document_count() for name in Collection}


def platform_status() -> None:
    settings = get_settings()
    st.title("FMA music recommendation platform")
    st.caption(
        "The player and analyst dashboards land here as the platform grows. "
        "The default dataset is an FMA-shaped **synthetic** sample."
    )
    try:
        counts = collection_counts()
    except Exception as exc:  # any driver error means "database unavailable" to a viewer
        st.error(f"MongoDB at {settings.mongo_url} is not reachable: {exc}")
        return
    st.subheader("Documents per collection")
    st.dataframe(
        [{"collection": name, "documents": count} for name, count in counts.items()],
        hide_index=True,
    )
