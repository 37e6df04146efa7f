"""Account page: log in, sign up as a listener, log out.

The abuse limits live in ``dashboards.auth.log_in`` / ``sign_up``; the page only says who
the client is (``client``) and shows what they answer.
"""

from __future__ import annotations

import streamlit as st
from pymongo.errors import PyMongoError

from audio_features.fma_schema import TOP_LEVEL_GENRES
from dashboards.auth import MAX_PASSWORD_LENGTH, log_in, sign_up
from dashboards.errors import DashboardError
from dashboards.services import database
from dashboards.session import current_user, sign_in, sign_out
from dashboards.throttle import client_identity, trusted_networks
from fma_platform.settings import get_settings


def account_page() -> None:
    user = current_user()
    if user is not None:
        _signed_in(user)
        return
    st.title("Welcome to the FMA player")
    st.caption("Free Music Archive tracks, recommended for you. Listeners sign up here; analysts get an "
               "account from an administrator.")
    log_in, sign_up = st.tabs(["Log in", "Sign up"])
    with log_in:
        _login_form()
    with sign_up:
        _signup_form()


def _signed_in(user) -> None:
    st.title("Your account")
    st.write(f"Signed in as **{user.username}** ({user.role.value}).")
    if user.genres:
        st.write("Genres you like: " + ", ".join(TOP_LEVEL_GENRES.get(g, str(g)) for g in user.genres))
    if st.button("Log out", key="account_logout"):
        sign_out()
        st.rerun()


def client() -> str:
    """This browser's client identity: the peer address, or a trusted proxy's X-Forwarded-For."""
    trusted = trusted_networks(get_settings().login_trusted_proxies)
    return client_identity(st.context.ip_address, st.context.headers.get_all("X-Forwarded-For"), trusted)


def _login_form() -> None:
    with st.form("login_form"):
        username = st.text_input("Username", key="login_username", max_chars=64)
        password = st.text_input("Password", type="password", key="login_password", max_chars=MAX_PASSWORD_LENGTH)
        submitted = st.form_submit_button("Log in", key="login_submit")
    if submitted:
        try:
            user = log_in(database(), username, password, client=client())
        except DashboardError as exc:
            st.error(str(exc))
            return
        except PyMongoError as exc:
            st.error(f"Cannot log in now: the database is unavailable ({type(exc).__name__}).")
            return
        sign_in(user)
        st.rerun()


def _signup_form() -> None:
    with st.form("signup_form"):
        username = st.text_input("Username", key="signup_username", max_chars=32,
                                 help="3-32 letters, digits, '_', '.' or '-'")
        password = st.text_input("Password", type="password", key="signup_password", max_chars=MAX_PASSWORD_LENGTH,
                                 help="at least 8 characters")
        repeated = st.text_input("Repeat password", type="password", key="signup_password2",
                                 max_chars=MAX_PASSWORD_LENGTH)
        genres = st.multiselect("Genres you like (1 to 5)", options=list(TOP_LEVEL_GENRES),
                                format_func=TOP_LEVEL_GENRES.get, key="signup_genres")
        submitted = st.form_submit_button("Sign up", key="signup_submit")
    if submitted:
        if password != repeated:
            st.error("The two passwords differ.")
            return
        try:
            user = sign_up(database(), username, password, genres=genres, client=client())
        except DashboardError as exc:
            st.error(str(exc))
            return
        except PyMongoError as exc:
            st.error(f"Cannot sign up now: the database is unavailable ({type(exc).__name__}).")
            return
        sign_in(user)
        st.rerun()
