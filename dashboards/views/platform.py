"""Platform page (analysts): whether MongoDB answers, its version, and what each collection holds."""

from __future__ import annotations

import streamlit as st

from dashboards.auth import Role
from dashboards.services import database_key
from dashboards.session import require_role
from fma_platform.health import ServiceUnavailableError, mongo_health
from fma_platform.settings import get_settings


@st.cache_data(ttl=10, show_spinner=False)
def _mongo(db_key: str) -> dict:
    """``fma_platform.health.mongo_health`` of the configured database (cached briefly)."""
    return mongo_health(get_settings())


def platform_status() -> None:
    require_role(Role.ANALYST)
    st.title("Platform")
    st.caption("Services and data of the FMA music recommendation platform. The default dataset is an "
               "FMA-shaped **synthetic** sample.")
    try:
        mongo = _mongo(database_key())
    except ServiceUnavailableError as exc:
        st.error(str(exc))
        return
    st.caption(f"MongoDB {mongo['version']}, database `{mongo['database']}`.")
    st.subheader("Documents per collection")
    st.dataframe(
        [{"collection": name, "documents": count} for name, count in mongo["documents"].items()],
        hide_index=True, key="collection_counts",
    )
