"""Login abuse limits: how many failed logins a username and a client get, how long they
wait then, how many sign-ups a client makes, and how many password hashes run at once.

* ``AttemptPolicy`` / ``QuotaPolicy`` (pure): allow, delay or lock, from the times of the
  attempts already recorded. Past ``free_failures`` failures each further attempt must
  wait ``backoff_base_s * 2^(failures - free)`` (at most ``backoff_max_s``) after the
  latest one; at ``lockout_failures`` the key is refused for ``lockout_s``, then gets one
  attempt per ``lockout_s`` until its failures leave the window. Refused attempts are not
  recorded (they cost no hash), so a flood cannot extend its own lockout forever, and a
  key never holds many more records than its lockout count.
* ``AttemptStore``: those records in MongoDB's ``login_attempts`` (a TTL index removes
  them), so every Streamlit session and every app process sees the same counts. Keys
  are SHA-256 digests: a password typed into the username field is never stored.
* ``HashGate``: one bounded semaphore per process around argon2id (64 MiB and most of a
  core per hash). An attempt that finds no slot within ``wait_s`` is refused at once.
* ``client_identity`` (pure): who the client is, from the peer address Streamlit
  reports and X-Forwarded-For, which is believed only through proxies the settings trust.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from dashboards.errors import DashboardError
from fma_platform.contracts import Collection
from fma_platform.settings import Settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOCAL_CLIENT = "local"  # Streamlit reports a loopback peer as no address
# Every request whose X-Forwarded-For cannot be believed shares this one client: rotating
# forged addresses then gains an attacker nothing.
UNTRUSTED_FORWARDED_CLIENT = "forwarded-untrusted"
BUSY_MESSAGE = "The server is busy, try again in a few seconds."
_EXPONENT_CAP = 60  # 2^60 s is far past any lockout: keeps the float finite


class Verdict(StrEnum):
    ALLOW = "allow"
    DELAY = "delay"  # backoff: refused until retry_after_s has passed
    LOCK = "lock"  # lockout: refused until retry_after_s has passed


_SEVERITY = {Verdict.ALLOW: 0, Verdict.DELAY: 1, Verdict.LOCK: 2}


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    retry_after_s: float = 0.0

    @property
    def allowed(self) -> bool:
        return self.verdict == Verdict.ALLOW

    def stricter(self, other: Decision) -> Decision:
        """The decision that refuses more (a lock over a delay), then for longer."""
        return max(self, other, key=lambda d: (_SEVERITY[d.verdict], d.retry_after_s))


ALLOW = Decision(Verdict.ALLOW)


class ThrottleError(DashboardError):
    """A login or sign-up refused by the abuse limits; ``str(error)`` is safe to show."""


class BusyError(ThrottleError):
    """Every password-hashing slot of this process stayed taken for the allowed wait."""


class ThrottleSettingsError(ThrottleError):
    """A ``FMA_LOGIN_*`` value the limits cannot use."""


def format_wait(seconds: float) -> str:
    """``seconds`` rounded up for a person: "1 second", "45 seconds", "15 minutes"."""
    whole = max(1, math.ceil(seconds))
    if whole < 120:
        return f"{whole} second{'s' if whole != 1 else ''}"
    return f"{math.ceil(whole / 60)} minutes"


@dataclass(frozen=True)
class AttemptPolicy:
    """Backoff then lockout for one key (a username, a client) from its failure times."""

    free_failures: int
    lockout_failures: int
    backoff_base_s: float
    backoff_max_s: float
    lockout_s: float
    window_s: float

    @property
    def keep_s(self) -> float:
        """How long a failure can still matter to a decision."""
        return max(self.window_s, self.lockout_s)

    def decide(self, failures: Sequence[datetime], now: datetime) -> Decision:
        recent = sorted(t for t in failures if (now - t).total_seconds() < self.window_s)
        count = len(recent)
        if count >= self.lockout_failures:
            verdict, wait_s = Verdict.LOCK, self.lockout_s
        elif count >= self.free_failures and count:
            exponent = min(count - self.free_failures, _EXPONENT_CAP)
            verdict, wait_s = Verdict.DELAY, min(self.backoff_base_s * 2 ** exponent, self.backoff_max_s)
        else:
            return ALLOW
        left_s = (recent[-1] + timedelta(seconds=wait_s) - now).total_seconds()
        return Decision(verdict, left_s) if left_s > 0 else ALLOW


@dataclass(frozen=True)
class QuotaPolicy:
    """At most ``limit`` attempts per sliding ``window_s`` (sign-ups of one client)."""

    limit: int
    window_s: float

    def decide(self, attempts: Sequence[datetime], now: datetime) -> Decision:
        recent = sorted(t for t in attempts if (now - t).total_seconds() < self.window_s)
        if len(recent) < self.limit:
            return ALLOW
        frees_a_slot = recent[len(recent) - self.limit]  # once it leaves the window
        return Decision(Verdict.LOCK, (frees_a_slot - now).total_seconds() + self.window_s)


@dataclass(frozen=True)
class LoginRules:
    """Every limit of the account page, from the ``FMA_LOGIN_*`` settings."""

    username: AttemptPolicy
    client: AttemptPolicy
    signup: QuotaPolicy
    max_concurrent_hashes: int
    hash_wait_s: float
    trusted_proxies: tuple[IPNetwork, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginRules:
        def policy(free: int, lockout: int) -> AttemptPolicy:
            return AttemptPolicy(free_failures=free, lockout_failures=lockout,
                                 backoff_base_s=settings.login_backoff_base_s,
                                 backoff_max_s=settings.login_backoff_max_s,
                                 lockout_s=settings.login_lockout_s, window_s=settings.login_window_s)

        return cls(
            username=policy(settings.login_free_failures, settings.login_lockout_failures),
            client=policy(settings.login_client_free_failures, settings.login_client_lockout_failures),
            signup=QuotaPolicy(limit=settings.login_signups_per_client, window_s=settings.login_signup_window_s),
            max_concurrent_hashes=settings.login_max_concurrent_hashes,
            hash_wait_s=settings.login_hash_wait_s,
            trusted_proxies=trusted_networks(settings.login_trusted_proxies),
        )


# --- who the client is ----------------------------------------------------------------------
def trusted_networks(text: str) -> tuple[IPNetwork, ...]:
    """``FMA_LOGIN_TRUSTED_PROXIES`` ("10.0.0.5, 172.16.0.0/12") as networks."""
    networks = []
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ThrottleSettingsError(
                f"FMA_LOGIN_TRUSTED_PROXIES: {item!r} is not an IP address or network") from exc
    return tuple(networks)


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((text or "").strip().strip("[]"))
    except ValueError:
        return None


def client_identity(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]) -> str:
    """The client a request counts against: an IP address, ``LOCAL_CLIENT`` or the shared
    ``UNTRUSTED_FORWARDED_CLIENT``.

    ``peer`` is ``st.context.ip_address`` (None for loopback); ``forwarded_for`` the
    X-Forwarded-For header values. Streamlit's server (uvicorn) already replaces a loopback
    peer by the header's client (its ``FORWARDED_ALLOW_IPS`` default), so a peer that
    appears in the header may be forged. The header is believed only when the request came
    through a trusted proxy: then the client is the nearest hop that is not one.
    """
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    peer_address = _address(peer)
    if not hops:
        return str(peer_address) if peer_address else LOCAL_CLIENT

    def is_trusted(address) -> bool:
        return any(address in network for network in trusted)

    hop_addresses = [_address(hop) for hop in hops]
    peer_from_header = peer_address is None or peer_address in hop_addresses
    via_trusted = (peer_address is not None and is_trusted(peer_address)) or (
        peer_from_header and is_trusted(ipaddress.ip_address("127.0.0.1")))
    if not via_trusted:
        return UNTRUSTED_FORWARDED_CLIENT if peer_from_header else str(peer_address)
    for address in reversed(hop_addresses):
        if address is None:
            return UNTRUSTED_FORWARDED_CLIENT  # a malformed hop: nothing left of it is believable
        if not is_trusted(address):
            return str(address)
    return str(hop_addresses[0])


def subject_key(kind: str, value: str) -> str:
    """The stored form of a username or client: a SHA-256 digest, never the text."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


# --- the records, in MongoDB ----------------------------------------------------------------
class AttemptKind(StrEnum):
    LOGIN = "login"
    SIGNUP = "signup"


_indexed: set[tuple[int, str]] = set()
_indexed_lock = threading.Lock()


class AttemptStore:
    """Login and sign-up attempts in ``login_attempts``, shared by every app process."""

    def __init__(self, db: Database) -> None:
        self._attempts = db[Collection.LOGIN_ATTEMPTS]
        self._ensure_indexes(db)

    def _ensure_indexes(self, db: Database) -> None:
        """Once per process and database: lookups by key and time, expiry by ``expires_at``."""
        marker = (id(db.client), db.name)  # clients are cached per URL by fma_platform.mongo
        with _indexed_lock:
            if marker in _indexed:
                return
            self._attempts.create_index([("kind", ASCENDING), ("username_key", ASCENDING), ("at", DESCENDING)],
                                        name="by_username")
            self._attempts.create_index([("kind", ASCENDING), ("client_key", ASCENDING), ("at", DESCENDING)],
                                        name="by_client")
            self._attempts.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry")
            _indexed.add(marker)

    def record(self, kind: AttemptKind, *, at: datetime, keep_s: float, client_key: str,
               username_key: str | None = None) -> ObjectId:
        """Store one attempt (it counts as failed until ``forget`` or ``discard``); its id."""
        document = {"kind": kind.value, "client_key": client_key, "at": at,
                    "expires_at": at + timedelta(seconds=keep_s)}
        if username_key is not None:
            document["username_key"] = username_key
        return self._attempts.insert_one(document).inserted_id

    def times(self, kind: AttemptKind, *, since: datetime, limit: int, excluding: ObjectId,
              username_key: str | None = None, client_key: str | None = None) -> list[datetime]:
        """The newest ``limit`` attempt times of one key since ``since`` (but ``excluding``)."""
        query = {"kind": kind.value, "at": {"$gte": since}, "_id": {"$ne": excluding}}
        query.update({"username_key": username_key} if username_key is not None else {"client_key": client_key})
        cursor = self._attempts.find(query, {"at": 1, "_id": 0}).sort("at", DESCENDING).limit(max(limit, 1))
        return [document["at"] for document in cursor]

    def discard(self, attempt_id: ObjectId) -> None:
        """Remove a refused attempt: it never reached a hash, so it does not count."""
        self._attempts.delete_one({"_id": attempt_id})

    def forget_username(self, username_key: str) -> int:
        """A successful login clears the username's failures (not the client's)."""
        return self._attempts.delete_many({"kind": AttemptKind.LOGIN.value, "username_key": username_key}).deleted_count


# --- the hashing slots of this process ------------------------------------------------------
class HashGate:
    """At most ``capacity`` password hashes at once; a caller waits ``wait_s`` at the most.

    ``running``, ``peak``, ``entered`` and ``refused`` count what happened, for tests and
    status pages.
    """

    def __init__(self, capacity: int, wait_s: float) -> None:
        if capacity < 1:
            raise ThrottleSettingsError(f"at least one hashing slot is needed, got {capacity}")
        self.capacity, self.wait_s = capacity, wait_s
        self._slots = threading.BoundedSemaphore(capacity)
        self._lock = threading.Lock()
        self.running = self.peak = self.entered = self.refused = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block; ``BusyError`` if none frees up within ``wait_s``."""
        if not self._slots.acquire(timeout=self.wait_s):
            with self._lock:
                self.refused += 1
            raise BusyError(BUSY_MESSAGE)
        with self._lock:
            self.running += 1
            self.entered += 1
            self.peak = max(self.peak, self.running)
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1
            self._slots.release()


@lru_cache(maxsize=4)
def process_hash_gate(capacity: int, wait_s: float) -> HashGate:
    """The gate every session of this process shares (one per configured capacity and wait)."""
    return HashGate(capacity, wait_s)
