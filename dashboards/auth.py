"""Accounts: sign-up, log-in and the analyst CLI's storage, on the ``users`` collection.

Passwords are hashed with argon2id (argon2-cffi); only the hash is stored. ``user_id``
is a server-made opaque id, never taken from the browser. Errors are specific
exceptions with a reason a person can read.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from audio_features.fma_schema import TOP_LEVEL_GENRES
from dashboards.errors import DashboardError
from fma_platform.contracts import Collection

USERNAME_PATTERN = re.compile(r"^[a-z0-9_.-]{3,32}$")
MIN_PASSWORD_LENGTH = 8
MAX_SIGNUP_GENRES = 5

_hasher = PasswordHasher()


class Role(StrEnum):
    LISTENER = "listener"
    ANALYST = "analyst"


class AccountError(DashboardError):
    """A sign-up or log-in that cannot succeed; ``str(error)`` is safe to show."""


class UsernameTakenError(AccountError):
    """Sign-up with a username another account has."""


class InvalidCredentialsError(AccountError):
    """Log-in with an unknown username or a wrong password (which of the two is not said)."""


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
    """Raise ``AccountError`` for a password too short to accept."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")


def check_genres(genres: list[int], *, role: Role) -> list[int]:
    """Top-level FMA genre ids; listeners choose 1 to ``MAX_SIGNUP_GENRES``."""
    chosen = sorted({int(g) for g in genres})
    unknown = [g for g in chosen if g not in TOP_LEVEL_GENRES]
    if unknown:
        raise AccountError(f"unknown top-level genre ids: {unknown}")
    if role == Role.LISTENER and not 1 <= len(chosen) <= MAX_SIGNUP_GENRES:
        raise AccountError(f"choose between 1 and {MAX_SIGNUP_GENRES} genres you like")
    return chosen


def create_user(
    db: Database, username: str, password: str, *, role: Role, genres: list[int] | None = None,
    created_at: datetime | None = None,
) -> User:
    """Store a new account with an argon2 hash; ``UsernameTakenError`` if the name exists."""
    name = normalise_username(username)
    check_password(password)
    chosen = check_genres(genres or [], role=role)
    ensure_user_indexes(db)
    user = User(username=name, user_id=f"u_{uuid.uuid4().hex[:16]}", role=role, genres=chosen)
    document = {
        "username": user.username, "user_id": user.user_id, "role": user.role.value,
        "password_hash": _hasher.hash(password), "genres": chosen,
        "created_at": created_at or datetime.now(timezone.utc),
    }
    try:
        db[Collection.USERS].insert_one(document)
    except DuplicateKeyError as exc:
        raise UsernameTakenError(f"the username {name!r} is taken") from exc
    return user


def authenticate(db: Database, username: str, password: str) -> User:
    """The account of ``username`` if ``password`` matches; ``InvalidCredentialsError`` otherwise."""
    refused = InvalidCredentialsError("wrong username or password")
    try:
        name = normalise_username(username)
    except AccountError as exc:
        raise refused from exc
    document = db[Collection.USERS].find_one({"username": name})
    if document is None:
        _hasher.hash(password or "")  # same cost as a real check: no username probing by timing
        raise refused
    try:
        _hasher.verify(document["password_hash"], password or "")
    except (VerificationError, InvalidHashError) as exc:
        raise refused from exc
    return user_from_document(document)


def user_from_document(document: dict) -> User:
    return User(
        username=document["username"], user_id=document["user_id"], role=Role(document["role"]),
        genres=[int(g) for g in document.get("genres") or []],
    )
