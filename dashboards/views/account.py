"""Account page: log in, sign up as a listener, log out."""

from __future__ import annotations

import streamlit as st
from pymongo.errors import PyMongoError

from audio_features.fma_schema import TOP_LEVEL_GENRES
from dashboards.auth import AccountError, Role, authenticate, create_user
from dashboards.services import database
from dashboards.session import current_user, sign_in, sign_out


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


def _login_form() -> None:
    with st.form("login_form"):
        username = st.text_input("Username", key="login_username")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", key="login_submit")
    if submitted:
        try:
            user = authenticate(database(), username, password)
        except AccountError as exc:
            st.error(str(exc))
            return
        except PyMongoError as exc:
            st.error(f"Cannot log in now: the database is unavailable ({type(exc).__name__}).")
            return
        sign_in(user)
        st.rerun()


def _signup_form() -> None:
    with st.form("signup_form"):
        username = st.text_input("Username", key="signup_username", help="3-32 letters, digits, '_', '.' or '-'")
        password = st.text_input("Password", type="password", key="signup_password", help="at least 8 characters")
        repeated = st.text_input("Repeat password", type="password", key="signup_password2")
        genres = st.multiselect("Genres you like (1 to 5)", options=list(TOP_LEVEL_GENRES),
                                format_func=TOP_LEVEL_GENRES.get, key="signup_genres")
        submitted = st.form_submit_button("Sign up", key="signup_submit")
    if submitted:
        if password != repeated:
            st.error("The two passwords differ.")
            return
        try:
            user = create_user(database(), username, password, role=Role.LISTENER, genres=genres)
        except AccountError as exc:
            st.error(str(exc))
            return
        except PyMongoError as exc:
            st.error(f"Cannot sign up now: the database is unavailable ({type(exc).__name__}).")
            return
        sign_in(user)
        st.rerun()
