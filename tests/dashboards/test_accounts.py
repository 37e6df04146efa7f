"""Accounts: argon2-hashed sign-up, log-in, log-out, the analyst CLI, all on the real database."""

from __future__ import annotations

import io
import time

import pytest

from dashboards import users as users_cli
from dashboards.auth import (
    MAX_PASSWORD_LENGTH, AccountError, InvalidCredentialsError, Role, UsernameTakenError, authenticate, create_user,
)
from fma_platform.contracts import Collection
from tests.dashboards.conftest import PASSWORD, app_test, texts


def test_password_is_stored_as_argon2_hash_and_checked(app_db):
    user = create_user(app_db, "Lena", PASSWORD, role=Role.LISTENER, genres=[12, 15])
    stored = app_db[Collection.USERS].find_one({"username": "lena"})
    assert stored["password_hash"].startswith("$argon2id$") and PASSWORD not in stored["password_hash"]
    assert stored["genres"] == [12, 15] and stored["role"] == "listener" and stored["user_id"] == user.user_id
    assert authenticate(app_db, "LENA", PASSWORD) == user
    with pytest.raises(InvalidCredentialsError, match="wrong username or password"):
        authenticate(app_db, "lena", "not the password")
    with pytest.raises(InvalidCredentialsError):
        authenticate(app_db, "nobody", PASSWORD)


def test_sign_up_rules(app_db):
    create_user(app_db, "lena", PASSWORD, role=Role.LISTENER, genres=[12])
    with pytest.raises(UsernameTakenError, match="taken"):
        create_user(app_db, "lena", PASSWORD, role=Role.LISTENER, genres=[12])
    with pytest.raises(AccountError, match="at least 8"):
        create_user(app_db, "max", "short", role=Role.LISTENER, genres=[12])
    with pytest.raises(AccountError, match="choose between 1 and 5"):
        create_user(app_db, "max", PASSWORD, role=Role.LISTENER, genres=[])
    with pytest.raises(AccountError, match="unknown top-level genre"):
        create_user(app_db, "max", PASSWORD, role=Role.LISTENER, genres=[99999])


def test_an_oversized_password_is_refused_before_hashing(app_db, listener):
    huge = "x" * (MAX_PASSWORD_LENGTH + 1)
    with pytest.raises(AccountError, match=f"at most {MAX_PASSWORD_LENGTH}"):
        create_user(app_db, "max", huge, role=Role.LISTENER, genres=[12])
    started = time.perf_counter()
    with pytest.raises(InvalidCredentialsError, match="wrong username or password"):
        authenticate(app_db, "lena", huge)
    assert time.perf_counter() - started < 0.2  # no argon2 run (one takes ~0.3-0.6 s here)


def test_cli_creates_an_analyst_from_stdin(app_db, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert users_cli.main(["create-analyst", "--username", "ana", "--password-stdin"]) == 0
    assert "created analyst 'ana'" in capsys.readouterr().out
    assert authenticate(app_db, "ana", PASSWORD).role == Role.ANALYST


def test_cli_refuses_a_short_password(app_db, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert users_cli.main(["create-analyst", "--username", "ana", "--password-stdin"]) == 1
    assert "at least 8" in capsys.readouterr().err
    assert app_db[Collection.USERS].count_documents({}) == 0


def test_sign_up_then_log_out_then_log_in_through_the_app(app_db):
    at = app_test().run()
    assert not at.exception
    at.text_input(key="signup_username").input("lena")
    at.text_input(key="signup_password").input(PASSWORD)
    at.text_input(key="signup_password2").input(PASSWORD)
    at.multiselect(key="signup_genres").select(12).select(15)
    at.button(key="signup_submit").click().run()
    assert not at.exception
    assert "Player" in [t.value for t in at.title]
    stored = app_db[Collection.USERS].find_one({"username": "lena"})
    assert stored["genres"] == [12, 15] and stored["role"] == "listener"

    at.sidebar.button(key="logout").click().run()
    assert "Welcome to the FMA player" in [t.value for t in at.title]

    at.text_input(key="login_username").input("lena")
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="login_submit").click().run()
    assert "Player" in [t.value for t in at.title]
    assert at.session_state["auth_user"].user_id == stored["user_id"]


def test_wrong_password_is_refused_in_the_app(app_db, listener):
    at = app_test().run()
    at.text_input(key="login_username").input("lena")
    at.text_input(key="login_password").input("wrong password!")
    at.button(key="login_submit").click().run()
    assert not at.exception
    assert "wrong username or password" in texts(at)
    assert "auth_user" not in at.session_state
