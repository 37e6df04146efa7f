"""Pages of the app (in `views/`, not `pages/`: a `pages/` folder next to the entrypoint
turns on Streamlit's legacy file-based multipage mode), and which of them each role sees.

Navigation only hides what a role cannot use; every page also checks the role itself.
"""

from __future__ import annotations

import streamlit as st

from dashboards.auth import Role, User
from dashboards.views.account import account_page
from dashboards.views.catalogue import catalogue_page
from dashboards.views.library import library_page
from dashboards.views.live import live_page
from dashboards.views.models import models_page
from dashboards.views.pipeline import pipeline_page
from dashboards.views.platform import platform_status
from dashboards.views.player import player_page

PAGE_FUNCTIONS = {
    "account": account_page,
    "player": player_page,
    "library": library_page,
    "pipeline": pipeline_page,
    "models": models_page,
    "live": live_page,
    "catalogue": catalogue_page,
    "platform": platform_status,
}


def _page(name: str, title: str, icon: str) -> st.Page:
    return st.Page(PAGE_FUNCTIONS[name], title=title, icon=icon, url_path=name)


def navigation_for(user: User | None) -> dict[str, list[st.Page]]:
    """Sections of pages for ``user``'s role (anonymous users see the account page only)."""
    account = _page("account", "Account", ":material/person:")
    if user is None:
        return {"Welcome": [account]}
    if user.role == Role.ANALYST:
        return {
            "Analytics": [
                _page("pipeline", "Pipeline", ":material/account_tree:"),
                _page("models", "Models", ":material/model_training:"),
                _page("live", "Live listening", ":material/monitoring:"),
                _page("catalogue", "Catalogue", ":material/library_music:"),
                _page("platform", "Platform", ":material/monitor_heart:"),
            ],
            "Account": [account],
        }
    return {
        "Listen": [
            _page("player", "Player", ":material/play_circle:"),
            _page("library", "Your library", ":material/favorite:"),
        ],
        "Account": [account],
    }


def home_page(sections: dict[str, list[st.Page]]) -> st.Page:
    """The first page of the first section: where a user lands after signing in."""
    return next(iter(sections.values()))[0]
