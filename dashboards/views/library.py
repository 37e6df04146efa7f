"""Library page (listeners): the listener's own history and liked tracks."""

from __future__ import annotations

import streamlit as st

from dashboards.auth import Role
from dashboards.data import liked_tracks, listening_history
from dashboards.views.common import attribution, database_section, empty_state, service_banners
from dashboards.services import database
from dashboards.session import require_role


def library_page() -> None:
    user = require_role(Role.LISTENER)
    st.title("Your library")
    service_banners(events=False)
    st.caption("Only your own listening is shown here. Events reach this page once the streaming job "
               "has stored them.")
    liked, history = st.tabs(["Liked tracks", "Listening history"])
    with liked, database_section("Your liked tracks"):
        tracks = liked_tracks(database(), user.user_id)
        if not tracks:
            empty_state("liked tracks", "press Like in the player")
        for track in tracks:
            st.markdown(attribution(track))
    with history, database_section("Your listening history"):
        rows = listening_history(database(), user.user_id, limit=100)
        if not rows:
            empty_state("listening history", "play something in the player (the streaming job stores events)")
        else:
            st.dataframe(rows, hide_index=True, key="history_table")
