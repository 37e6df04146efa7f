"""Catalogue page (analysts): genre distribution and a 2-D map of track embeddings."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.analytics import embedding_map, genre_distribution
from dashboards.auth import Role
from dashboards.charts import embedding_chart, genre_chart
from dashboards.views.common import database_section, empty_state, service_banners
from dashboards.services import database, database_key
from dashboards.session import require_role


@st.cache_data(ttl=60, show_spinner=False)
def _genres(db_key: str) -> pd.DataFrame:
    return genre_distribution(database())


@st.cache_data(ttl=300, show_spinner="Projecting embeddings…")
def _embedding_map(db_key: str) -> pd.DataFrame:
    return embedding_map(database())


def catalogue_page() -> None:
    require_role(Role.ANALYST)
    st.title("Catalogue")
    service_banners(events=False)
    with database_section("The catalogue"):
        genres = _genres(database_key())
        st.subheader("Tracks per genre")
        if genres.empty:
            empty_state("tracks", "trigger the `fma_etl` DAG to load the catalogue")
            return
        st.metric("Tracks", int(genres["tracks"].sum()))
        st.altair_chart(genre_chart(genres), key="genre_chart")
        st.subheader("Track embeddings (first two principal components)")
        points = _embedding_map(database_key())
        if points.empty:
            empty_state("embeddings", "the `fma_etl` DAG's transform step computes them")
        else:
            st.altair_chart(embedding_chart(points), key="embedding_chart")
