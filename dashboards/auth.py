"""Accounts: sign-up, log-in and the analyst CLI's storage, on the ``users`` collection.

Passwords are hashed with argon2id (argon2-cffi); only the hash is stored, and every hash
or check runs in the process's ``HashGate`` (a few at once; others are refused "busy").
``user_id`` is a server-made opaque id, never taken from the browser. Errors are specific
exceptions with a reason a person can read.

The app calls ``log_in`` and ``sign_up``: the same checks behind the limits of
``dashboards.throttle`` (backoff then lockout per username and per client, a sign-up
quota per client). What a stranger can learn about which usernames exist:

* Log-in: nothing. An unknown username and a wrong password give one message and cost
  one argon2 verify each (an unknown name is checked against a dummy hash made with the
  same parameters); the limits count unknown names exactly like real ones, so a lockout
  message ("Too many attempts, try again in 15 minutes") proves nothing either.
* Sign-up: a free name can only be shown by creating the account, as any service with
  chosen usernames must. A taken name and a client past its sign-up quota give one and
  the same answer, ``SIGNUP_REFUSED``, which honestly names both possible causes without
  saying which, and a taken name costs the same hash and insert as a successful
  sign-up. Every probe uses one of the client's ``FMA_LOGIN_SIGNUPS_PER_CLIENT`` sign-ups
  per window, so a client can test only a handful of names an hour. (A refusal by quota
  returns sooner, but that tells the client about its own quota, not about the name.)
  Messages such as "if that name is free your account was created" were rejected: a
  listener must know at once whether they can log in.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from audio_features.fma_schema import TOP_LEVEL_GENRES
from dashboards.errors import DashboardError
from dashboards.throttle import (
    ALLOW, AttemptKind, AttemptStore, BusyError, HashGate, LoginRules, Verdict, format_wait, process_hash_gate, subject_key,
)
from fma_platform.contracts import Collection
from fma_platform.settings import Settings, get_settings

log = logging.getLogger(__name__)

USERNAME_PATTERN = re.compile(r"^[a-z0-9_.-]{3,32}$")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # longer input is refused before any hashing
MAX_SIGNUP_GENRES = 5
TOO_MANY_ATTEMPTS = "Too many attempts, try again in {wait}."
SIGNUP_REFUSED = ("That username cannot be registered now: choose another one, or try again later "
                  "(each connection may make only a few sign-ups an hour).")

_hasher = PasswordHasher()


class Role(StrEnum):
    LISTENER = "listener"
    ANALYST = "analyst"


class AccountError(DashboardError):
    """A sign-up or log-in that cannot succeed; ``str(error)`` is safe to show."""


class UsernameTakenError(AccountError):
    """Sign-up with a username another account has (said only to administrators: the CLI)."""


class InvalidCredentialsError(AccountError):
    """Log-in with an unknown username or a wrong password (which of the two is not said)."""


class TooManyAttemptsError(AccountError):
    """Log-in refused by backoff or lockout, before any password check."""

    def __init__(self, retry_after_s: float, *, locked: bool) -> None:
        self.retry_after_s, self.locked = retry_after_s, locked
        super().__init__(TOO_MANY_ATTEMPTS.format(wait=format_wait(retry_after_s)))


class SignupRefusedError(AccountError):
    """Sign-up of a taken name or past the client's quota: one message for both."""

    def __init__(self) -> None:
        super().__init__(SIGNUP_REFUSED)


@dataclass(frozen=True)
class User:
    """The signed-in account as the app keeps it in the server-side session."""

    username: str
    user_id: str
    role: Role
    genres: list[int] = field(default_factory=list)


def ensure_user_indexes(db: Database) -> None:
    """Usernames and user ids are unique (idempotent)."""
    users = db[Collection.USERS]
    users.create_index([("username", ASCENDING)], unique=True, name="username_unique")
    users.create_index([("user_id", ASCENDING)], unique=True, name="user_id_unique")


def normalise_username(username: str) -> str:
    """Lower-cased, trimmed; raise ``AccountError`` unless 3-32 of ``a-z 0-9 _ . -``."""
    name = (username or "").strip().lower()
    if not USERNAME_PATTERN.match(name):
        raise AccountError("username must be 3-32 characters: letters, digits, '_', '.' or '-'")
    return name


def check_password(password: str) -> None:
    """Raise ``AccountError`` for a password too short (or absurdly long) to accept."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"password must have at most {MAX_PASSWORD_LENGTH} characters")


def check_genres(genres: list[int], *, role: Role) -> list[int]:
    """Top-level FMA genre ids; listeners choose 1 to ``MAX_SIGNUP_GENRES``."""
    chosen = sorted({int(g) for g in genres})
    unknown = [g for g in chosen if g not in TOP_LEVEL_GENRES]
    if unknown:
        raise AccountError(f"unknown top-level genre ids: {unknown}")
    if role == Role.LISTENER and not 1 <= len(chosen) <= MAX_SIGNUP_GENRES:
        raise AccountError(f"choose between 1 and {MAX_SIGNUP_GENRES} genres you like")
    return chosen


def _gate(settings: Settings | None = None) -> HashGate:
    settings = settings or get_settings()
    return process_hash_gate(settings.login_max_concurrent_hashes, settings.login_hash_wait_s)


_dummy_lock = threading.Lock()


@lru_cache(maxsize=2)
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int, hash_len: int, salt_len: int) -> str:
    """A hash of a random, forgotten password: what an unknown username is checked against."""
    twin = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism,
                          hash_len=hash_len, salt_len=salt_len, type=_hasher.type)
    return twin.hash(secrets.token_urlsafe(24))


def dummy_hash() -> str:
    """The dummy hash for the current hasher's parameters (made once per process, in a slot)."""
    with _dummy_lock:
        return _dummy_hash(_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism, _hasher.hash_len,
                           _hasher.salt_len)


def create_user(
    db: Database, username: str, password: str, *, role: Role, genres: list[int] | None = None,
    created_at: datetime | None = None, gate: HashGate | None = None,
) -> User:
    """Store a new account with an argon2 hash; ``UsernameTakenError`` if the name exists."""
    name = normalise_username(username)
    check_password(password)
    chosen = check_genres(genres or [], role=role)
    ensure_user_indexes(db)
    user = User(username=name, user_id=f"u_{uuid.uuid4().hex[:16]}", role=role, genres=chosen)
    with (gate or _gate()).slot():
        password_hash = _hasher.hash(password)
    document = {
        "username": user.username, "user_id": user.user_id, "role": user.role.value,
        "password_hash": password_hash, "genres": chosen,
        "created_at": created_at or datetime.now(timezone.utc),
    }
    try:
        db[Collection.USERS].insert_one(document)
    except DuplicateKeyError as exc:
        raise UsernameTakenError(f"the username {name!r} is taken") from exc
    return user


def authenticate(db: Database, username: str, password: str, *, gate: HashGate | None = None) -> User:
    """The account of ``username`` if ``password`` matches; ``InvalidCredentialsError`` otherwise.

    No limits here (``log_in`` adds them); one argon2 verify whether or not the name exists.
    """
    refused = InvalidCredentialsError("wrong username or password")
    try:
        name = normalise_username(username)
    except AccountError as exc:
        raise refused from exc
    if len(password or "") > MAX_PASSWORD_LENGTH:
        raise refused
    document = db[Collection.USERS].find_one({"username": name})
    with (gate or _gate()).slot():
        stored_hash = document["password_hash"] if document else dummy_hash()
        try:
            _hasher.verify(stored_hash, password or "")
        except (VerificationError, InvalidHashError) as exc:
            raise refused from exc
    if document is None:  # the dummy's password is random and forgotten; never reached
        raise refused
    return user_from_document(document)


def log_in(db: Database, username: str, password: str, *, client: str, settings: Settings | None = None,
           now: datetime | None = None) -> User:
    """``authenticate`` behind the limits for ``username`` and ``client`` (see the module doc).

    The attempt is recorded first and counts as a failure until it succeeds, so parallel
    attempts see each other; an attempt refused by the limits or by a busy ``HashGate`` is
    removed again (it cost no hash). Raises ``TooManyAttemptsError``, ``BusyError`` or
    ``InvalidCredentialsError``.
    """
    settings = settings or get_settings()
    rules = LoginRules.from_settings(settings)
    now = now or datetime.now(timezone.utc)
    username_key = subject_key("username", (username or "").strip().lower())
    client_key = subject_key("client", client)
    store = AttemptStore(db)
    attempt = store.record(AttemptKind.LOGIN, at=now, keep_s=max(rules.username.keep_s, rules.client.keep_s),
                           username_key=username_key, client_key=client_key)
    decision = ALLOW
    for policy, key in ((rules.username, {"username_key": username_key}), (rules.client, {"client_key": client_key})):
        failures = store.times(AttemptKind.LOGIN, since=now - timedelta(seconds=policy.window_s),
                               limit=policy.lockout_failures, excluding=attempt, **key)
        decision = decision.stricter(policy.decide(failures, now))
    if not decision.allowed:
        store.discard(attempt)
        raise TooManyAttemptsError(decision.retry_after_s, locked=decision.verdict == Verdict.LOCK)
    try:
        user = authenticate(db, username, password, gate=_gate(settings))
    except BusyError:
        store.discard(attempt)
        raise
    except InvalidCredentialsError:
        log.info("failed login from client %s (username key %s)", client, username_key[:12])
        raise
    store.forget_username(username_key)
    return user


def sign_up(db: Database, username: str, password: str, *, genres: list[int], client: str,
            settings: Settings | None = None, now: datetime | None = None) -> User:
    """A new listener account, within ``client``'s sign-up quota.

    Input mistakes (name pattern, password length, genres) are said as they are; a taken
    name and a spent quota both raise ``SignupRefusedError`` (see the module doc);
    ``BusyError`` when no hashing slot frees up (that attempt is not counted).
    """
    settings = settings or get_settings()
    rules = LoginRules.from_settings(settings)
    now = now or datetime.now(timezone.utc)
    normalise_username(username)
    check_password(password)
    check_genres(genres, role=Role.LISTENER)
    client_key = subject_key("client", client)
    store = AttemptStore(db)
    attempt = store.record(AttemptKind.SIGNUP, at=now, keep_s=rules.signup.window_s, client_key=client_key)
    earlier = store.times(AttemptKind.SIGNUP, since=now - timedelta(seconds=rules.signup.window_s),
                          limit=rules.signup.limit, excluding=attempt, client_key=client_key)
    if not rules.signup.decide(earlier, now).allowed:
        store.discard(attempt)
        raise SignupRefusedError()
    try:
        return create_user(db, username, password, role=Role.LISTENER, genres=genres, gate=_gate(settings))
    except BusyError:
        store.discard(attempt)
        raise
    except UsernameTakenError as exc:
        raise SignupRefusedError() from exc


def user_from_document(document: dict) -> User:
    return User(
        username=document["username"], user_id=document["user_id"], role=Role(document["role"]),
        genres=[int(g) for g in document.get("genres") or []],
    )
