"""Platform page (analysts): which services answer, and what the database holds."""

from __future__ import annotations

import streamlit as st
from pymongo.errors import PyMongoError

from dashboards.auth import Role
from dashboards.services import database, database_key
from dashboards.session import require_role
from fma_platform.contracts import Collection
from fma_platform.settings import get_settings


@st.cache_data(ttl=10, show_spinner=False)
def collection_counts(db_key: str) -> dict[str, int]:
    """Documents per platform collection (cached briefly; raises when MongoDB is down)."""
    db = database()
    return {name.value: db[name.value].estimated_document_count() for name in Collection}


def platform_status() -> None:
    require_role(Role.ANALYST)
    settings = get_settings()
    st.title("Platform")
    st.caption("Services and data of the FMA music recommendation platform. The default dataset is an "
               "FMA-shaped **synthetic** sample.")
    try:
        counts = collection_counts(database_key())
    except PyMongoError as exc:
        st.error(f"MongoDB at {settings.mongo_url} is not reachable: {exc}")
        return
    st.subheader("Documents per collection")
    st.dataframe(
        [{"collection": name, "documents": count} for name, count in counts.items()],
        hide_index=True,
    )
