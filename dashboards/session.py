"""The server-side session: who is signed in, the browser session id, the play queue.

Everything here lives in ``st.session_state`` on the server; the browser never supplies
a ``user_id``. Access checks stop the page with a message a person can act on.
"""

from __future__ import annotations

import uuid

import streamlit as st

from dashboards.auth import Role, User
from dashboards.player_state import PlayerQueue

USER_KEY = "auth_user"
SESSION_ID_KEY = "player_session_id"
QUEUE_KEY = "player_queue"
GO_HOME_KEY = "go_home"


def current_user() -> User | None:
    return st.session_state.get(USER_KEY)


def sign_in(user: User) -> None:
    """Start a fresh signed-in session (a new session id, an empty queue)."""
    _forget_player()
    st.session_state[USER_KEY] = user
    st.session_state[GO_HOME_KEY] = True


def take_go_home() -> bool:
    """True once after a sign-in: the app then opens the role's first page."""
    return bool(st.session_state.pop(GO_HOME_KEY, False))


def sign_out() -> None:
    _forget_player()
    st.session_state.pop(USER_KEY, None)


def _forget_player() -> None:
    for key in (SESSION_ID_KEY, QUEUE_KEY):
        st.session_state.pop(key, None)


def session_id() -> str:
    """The id of this browser session, made once per session on the server."""
    if SESSION_ID_KEY not in st.session_state:
        st.session_state[SESSION_ID_KEY] = f"s_{uuid.uuid4().hex}"
    return st.session_state[SESSION_ID_KEY]


def player_queue() -> PlayerQueue:
    if QUEUE_KEY not in st.session_state:
        st.session_state[QUEUE_KEY] = PlayerQueue()
    return st.session_state[QUEUE_KEY]


def require_role(role: Role) -> User:
    """The signed-in user if they have ``role``; otherwise explain and stop the page."""
    user = current_user()
    if user is None:
        st.warning("Please log in first (Account page).")
        st.stop()
    if user.role != role:
        needed = "analysts" if role == Role.ANALYST else "listeners"
        st.error(f"Access refused: this page is for {needed} only; you are signed in as a {user.role.value}.")
        st.stop()
    return user
