"""Login abuse: brute force, credential stuffing, hash floods, sign-up floods and username
enumeration, attacked on the real database (and through the real account page).

Time is the attacker's script clock (``now=``), so an hour of hammering runs in seconds;
the password hashes are real argon2id, observed by ``CountingHasher`` (a real hasher that
also counts and measures how many run at once).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from ipaddress import ip_network

import pytest
from argon2 import PasswordHasher, extract_parameters

from dashboards import auth
from dashboards.auth import (
    SIGNUP_REFUSED, InvalidCredentialsError, Role, SignupRefusedError, TooManyAttemptsError, create_user, log_in,
    sign_up,
)
from dashboards.throttle import (
    LOCAL_CLIENT, UNTRUSTED_FORWARDED_CLIENT, AttemptPolicy, BusyError, Decision, HashGate, QuotaPolicy,
    ThrottleSettingsError, Verdict,
    client_identity, format_wait, trusted_networks,
)
from fma_platform.contracts import Collection
from fma_platform.settings import PROJECT_ROOT, Settings
from tests.dashboards.conftest import PASSWORD, app_test, texts

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)  # the attacker's clock starts here
ATTACKER = "203.0.113.66"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class CountingHasher(PasswordHasher):
    """argon2id as the app uses it, counting hashes and verifies and the most running at once."""

    def __init__(self) -> None:
        super().__init__()
        self.hashes = self.verifies = self.running = self.peak = 0
        self._lock = threading.Lock()

    def _counted(self, work):
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            return work()
        finally:
            with self._lock:
                self.running -= 1

    def hash(self, password, *, salt=None):
        with self._lock:
            self.hashes += 1
        return self._counted(lambda: super(CountingHasher, self).hash(password, salt=salt))

    def verify(self, hash, password):
        with self._lock:
            self.verifies += 1
        return self._counted(lambda: super(CountingHasher, self).verify(hash, password))


@pytest.fixture()
def hasher(monkeypatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(auth, "_hasher", counting)
    return counting


def attempt(db, username, password, *, now, client=ATTACKER, settings=None) -> str:
    """One login try: "ok", "wrong", "delay" or "lock"."""
    try:
        log_in(db, username, password, client=client, settings=settings or Settings(), now=now)
    except InvalidCredentialsError:
        return "wrong"
    except TooManyAttemptsError as exc:
        return "lock" if exc.locked else "delay"
    return "ok"


# --- pure rules -----------------------------------------------------------------------------
POLICY = AttemptPolicy(free_failures=5, lockout_failures=10, backoff_base_s=2.0, backoff_max_s=60.0,
                       lockout_s=900.0, window_s=3600.0)


def test_backoff_doubles_after_the_free_failures_then_locks():
    waits = []
    for count in range(12):
        failures = [at(0)] * count
        waits.append(POLICY.decide(failures, at(0)))
    assert [d.verdict for d in waits[:5]] == [Verdict.ALLOW] * 5
    assert [(d.verdict, d.retry_after_s) for d in waits[5:10]] == [(Verdict.DELAY, s) for s in (2, 4, 8, 16, 32)]
    assert waits[10] == waits[11] == Decision(Verdict.LOCK, 900.0)
    assert POLICY.decide([at(0)] * 10, at(900)).allowed  # one more try once the lock ends
    assert POLICY.decide([at(0)] * 10, at(899)).verdict == Verdict.LOCK
    assert POLICY.decide([at(0)] * 40, at(0)).retry_after_s == 900.0  # no overflow, no growth


def test_backoff_never_waits_longer_than_its_maximum_and_failures_leave_the_window():
    client = AttemptPolicy(free_failures=20, lockout_failures=50, backoff_base_s=2.0, backoff_max_s=60.0,
                           lockout_s=900.0, window_s=3600.0)
    assert client.decide([at(0)] * 45, at(0)) == Decision(Verdict.DELAY, 60.0)
    assert client.decide([at(0)] * 49, at(3600)).allowed  # all older than the window


def test_a_patient_attacker_gets_few_tries_a_day_per_username():
    failures, now, tries = [], at(0), 0
    while now < at(24 * 3600):
        decision = POLICY.decide(failures, now)
        if decision.allowed:
            failures.append(now)
            tries += 1
            now += timedelta(seconds=1)
        else:
            now += timedelta(seconds=decision.retry_after_s)
    print(f"patient attacker, default username limits: {tries} password tries in 24 h")
    assert tries <= 24 * 3600 / 900 + 10 * 24  # far below the 86,400 a one-per-second script makes


def test_sign_up_quota_is_a_sliding_window():
    quota = QuotaPolicy(limit=3, window_s=3600)
    assert quota.decide([at(0), at(10)], at(20)).allowed
    refused = quota.decide([at(0), at(10), at(20)], at(30))
    assert refused.verdict == Verdict.LOCK and refused.retry_after_s == 3570
    assert quota.decide([at(0), at(10), at(20)], at(3600)).allowed


def test_waits_are_said_in_seconds_or_minutes():
    assert [format_wait(s) for s in (0.2, 1, 44.1, 119, 120, 900, 899.5)] == [
        "1 second", "1 second", "45 seconds", "119 seconds", "2 minutes", "15 minutes", "15 minutes"]


def test_x_forwarded_for_is_hostile_unless_a_trusted_proxy_sent_it():
    none = ()
    assert client_identity("198.51.100.7", [], none) == "198.51.100.7"
    assert client_identity(None, [], none) == LOCAL_CLIENT
    # A direct client adding the header: the peer it connected from counts.
    assert client_identity("198.51.100.7", ["1.2.3.4"], none) == "198.51.100.7"
    # Streamlit's server swapped a loopback peer for the header's value: forged addresses
    # all land in one shared client, so rotating them buys nothing.
    for forged in ("1.2.3.4", "5.6.7.8", "9.9.9.9"):
        assert client_identity(forged, [forged], none) == UNTRUSTED_FORWARDED_CLIENT
    proxies = trusted_networks("127.0.0.1, 10.0.0.0/8")
    assert proxies == (ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8"))
    # Behind trusted proxies: the nearest hop that is not one, whatever the client prepended.
    assert client_identity("10.0.0.5", ["6.6.6.6, 198.51.100.7, 10.0.0.9"], proxies) == "198.51.100.7"
    assert client_identity("198.51.100.7", ["6.6.6.6", "198.51.100.7"], proxies) == "198.51.100.7"
    assert client_identity("10.0.0.5", ["not-an-ip, 10.0.0.9"], proxies) == UNTRUSTED_FORWARDED_CLIENT
    assert client_identity("198.51.100.9", ["6.6.6.6"], proxies) == "198.51.100.9"  # not via a proxy
    with pytest.raises(ThrottleSettingsError, match="'proxy.example' is not an IP address"):
        trusted_networks("10.0.0.1, proxy.example")


def test_hash_gate_refuses_at_once_past_its_capacity():
    gate, inside, release = HashGate(2, wait_s=0.05), threading.Barrier(3), threading.Event()

    def hold():
        with gate.slot():
            inside.wait()
            release.wait(5)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for thread in holders:
        thread.start()
    inside.wait()
    started = time.perf_counter()
    with pytest.raises(BusyError, match="busy, try again"):
        with gate.slot():
            pass
    refused_after = time.perf_counter() - started
    release.set()
    for thread in holders:
        thread.join()
    assert refused_after < 1.0 and (gate.peak, gate.entered, gate.refused, gate.running) == (2, 2, 1, 0)


# --- attacks on the real database -----------------------------------------------------------
def test_brute_force_of_200_passwords_is_slowed_then_refused(app_db, hasher):
    owner = create_user(app_db, "lena", PASSWORD, role=Role.LISTENER, genres=[12])
    hasher.hashes = 0
    guesses = [f"guess-{i:03d}-password" for i in range(200)]
    guesses[150] = PASSWORD  # the right one, reached while locked
    outcomes = [attempt(app_db, "lena", guess, now=at(second)) for second, guess in enumerate(guesses)]

    first_delay, first_lock = outcomes.index("delay"), outcomes.index("lock")
    refused = sum(o in ("delay", "lock") for o in outcomes)
    print(f"brute force, 200 guesses at 1/s: {outcomes.count('wrong')} checked, slowed after "
          f"{first_delay}, locked after {outcomes[:first_lock].count('wrong')} failures, {refused} refused")
    assert first_delay == 5 and outcomes[:5] == ["wrong"] * 5  # five free tries
    assert outcomes.count("wrong") == 10 and refused == 190
    assert outcomes[first_lock:] == ["lock"] * (200 - first_lock)
    assert outcomes[150] == "lock"  # the right password, refused while locked
    assert hasher.verifies == 10 and hasher.hashes == 0  # refused tries ran no argon2 at all
    # The lock is on the username: the owner, from elsewhere, is refused too ...
    assert attempt(app_db, "lena", PASSWORD, now=at(200), client="198.51.100.1") == "lock"
    # ... until 15 minutes after the last failure (at 66 s), then accepted.
    last_failure = max(i for i, o in enumerate(outcomes) if o == "wrong")
    assert attempt(app_db, "lena", PASSWORD, now=at(last_failure + 899), client="198.51.100.1") == "lock"
    user = log_in(app_db, "lena", PASSWORD, client="198.51.100.1", settings=Settings(), now=at(last_failure + 900))
    assert user == owner and hasher.verifies == 11
    # A success clears the username's failures: the owner's next typo is a plain one.
    assert attempt(app_db, "lena", "typo typo typo", now=at(last_failure + 901)) == "wrong"


def test_credential_stuffing_from_one_client_is_refused_per_client(app_db, hasher):
    create_user(app_db, "lena", PASSWORD, role=Role.LISTENER, genres=[12])
    pairs = [(f"victim{i:03d}", f"leaked-password-{i}") for i in range(120)]
    pairs[100] = ("lena", PASSWORD)  # a pair that would work, late in the list
    outcomes = [attempt(app_db, name, password, now=at(second)) for second, (name, password) in enumerate(pairs)]
    checked = outcomes.count("wrong")
    print(f"credential stuffing, 120 pairs at 1/s from one client: {checked} checked, "
          f"slowed after {outcomes.index('delay')}, {120 - checked} refused")
    assert outcomes[:20] == ["wrong"] * 20 and outcomes[20] == "delay"
    assert checked <= 26 and outcomes[100] == "delay" and "ok" not in outcomes
    assert hasher.verifies == checked
    # A patient stuffer that waits out every delay is locked after 50 failures in all.
    now, more = at(120), 0
    while (outcome := attempt(app_db, f"patient{more:03d}", "leaked-password", now=now)) != "lock":
        if outcome == "wrong":
            more += 1
            now += timedelta(seconds=1)
        else:
            now += timedelta(seconds=61)
    assert checked + more == 50 and now - at(120) < timedelta(hours=1)
    # Other clients are not held back by it.
    assert attempt(app_db, "lena", PASSWORD, now=now, client="198.51.100.1") == "ok"


def test_twenty_concurrent_logins_never_run_more_hashes_than_the_cap(app_db, hasher):
    settings = Settings(login_max_concurrent_hashes=3, login_hash_wait_s=0.2)
    for i in range(4):
        create_user(app_db, f"member{i}", PASSWORD, role=Role.LISTENER, genres=[12])
    hasher.peak = hasher.verifies = 0
    start, results, lock = threading.Barrier(20), {}, threading.Lock()

    def login(i: int) -> None:
        name, password = (f"member{i}", PASSWORD) if i < 4 else (f"stranger{i}", "some password")
        start.wait()
        began = time.perf_counter()
        try:
            log_in(app_db, name, password, client=f"198.51.100.{i}", settings=settings)
            outcome = "ok"
        except BusyError:
            outcome = "busy"
        except InvalidCredentialsError:
            outcome = "wrong"
        with lock:
            results[i] = (outcome, time.perf_counter() - began)

    threads = [threading.Thread(target=login, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    outcomes = [results[i][0] for i in range(20)]
    busy_times = [seconds for outcome, seconds in results.values() if outcome == "busy"]
    print(f"20 concurrent logins, cap 3: most hashes at once {hasher.peak}, "
          f"{len(busy_times)} refused busy (slowest refusal {max(busy_times):.2f} s)")
    assert hasher.peak <= 3 and len(busy_times) >= 1
    assert hasher.verifies == 20 - len(busy_times)  # refused ones never hashed
    assert all(outcomes[i] in ("ok", "busy") for i in range(4)) and "ok" not in outcomes[4:]
    assert max(busy_times) < 5.0  # refused without queueing behind the running hashes
    # Busy refusals leave no record: only the checked strangers count as failures.
    assert app_db[Collection.LOGIN_ATTEMPTS].count_documents({"kind": "login"}) == outcomes.count("wrong")


def test_sign_up_flood_from_one_client_is_refused(app_db, hasher):
    outcomes = []
    for i in range(20):
        try:
            sign_up(app_db, f"bot{i:02d}", PASSWORD, genres=[12], client=ATTACKER, settings=Settings(), now=at(i))
            outcomes.append("created")
        except SignupRefusedError as exc:
            assert str(exc) == SIGNUP_REFUSED
            outcomes.append("refused")
    print(f"sign-up flood, 20 from one client: {outcomes.count('created')} created, {outcomes.count('refused')} refused")
    assert outcomes == ["created"] * 5 + ["refused"] * 15
    assert hasher.hashes == 5 and app_db[Collection.USERS].count_documents({}) == 5
    # Another client signs up meanwhile; the flooding client again after its hour.
    sign_up(app_db, "neighbour", PASSWORD, genres=[12], client="198.51.100.1", settings=Settings(), now=at(20))
    sign_up(app_db, "bot20", PASSWORD, genres=[12], client=ATTACKER, settings=Settings(), now=at(3600))
    assert app_db[Collection.USERS].count_documents({}) == 7


# --- what a stranger can learn about usernames ----------------------------------------------
LENIENT = {"login_free_failures": 100, "login_lockout_failures": 100, "login_client_free_failures": 100,
           "login_client_lockout_failures": 100}


def test_unknown_username_and_wrong_password_look_and_cost_the_same(app_db, hasher):
    create_user(app_db, "lena", PASSWORD, role=Role.LISTENER, genres=[12])
    settings = Settings(**LENIENT)
    messages, seconds = {"unknown": set(), "wrong": set()}, {"unknown": [], "wrong": []}
    for round_ in range(5):
        for case, name in (("unknown", f"ghost{round_}"), ("wrong", "lena")):
            verifies = hasher.verifies
            started = time.perf_counter()
            with pytest.raises(InvalidCredentialsError) as refused:
                log_in(app_db, name, "not the password", client=ATTACKER, settings=settings)
            seconds[case].append(time.perf_counter() - started)
            messages[case].add(str(refused.value))
            assert hasher.verifies == verifies + 1  # one argon2 verify either way
    # The fastest of each: the cost itself, with the least of the busy machine's noise in it.
    ratio = min(seconds["unknown"]) / min(seconds["wrong"])
    print(f"login time unknown username / wrong password (fastest of 5 each): {ratio:.2f}")
    assert messages["unknown"] == messages["wrong"] == {"wrong username or password"}
    stored = app_db[Collection.USERS].find_one({"username": "lena"})["password_hash"]
    assert extract_parameters(auth.dummy_hash()) == extract_parameters(stored)
    assert 0.5 < ratio < 2.0


def test_lockout_says_the_same_for_unknown_and_real_usernames(app_db):
    create_user(app_db, "lena", PASSWORD, role=Role.LISTENER, genres=[12])
    said = {}
    for name in ("lena", "ghost"):
        for second in range(70):  # the 10th failure, at 66 s, locks
            outcome = attempt(app_db, name, "not the password", now=at(second), client=f"198.51.100.{len(said)}")
        assert outcome == "lock"
        with pytest.raises(TooManyAttemptsError) as locked:
            log_in(app_db, name, PASSWORD, client="192.0.2.1", settings=Settings(), now=at(100))
        said[name] = str(locked.value)
    assert said["lena"] == said["ghost"] == "Too many attempts, try again in 15 minutes."


def test_sign_up_of_a_taken_name_reads_like_a_spent_quota(app_db, hasher):
    create_user(app_db, "lena", PASSWORD, role=Role.LISTENER, genres=[12])
    hasher.hashes = 0
    settings = Settings(login_signups_per_client=2)
    with pytest.raises(SignupRefusedError) as taken:
        sign_up(app_db, "Lena", PASSWORD, genres=[15], client=ATTACKER, settings=settings, now=at(0))
    assert hasher.hashes == 1  # a taken name costs the hash a new account costs
    sign_up(app_db, "maxine", PASSWORD, genres=[15], client=ATTACKER, settings=settings, now=at(1))
    with pytest.raises(SignupRefusedError) as spent:
        sign_up(app_db, "freename", PASSWORD, genres=[15], client=ATTACKER, settings=settings, now=at(2))
    assert str(taken.value) == str(spent.value) == SIGNUP_REFUSED
    assert "taken" not in SIGNUP_REFUSED and "exists" not in SIGNUP_REFUSED
    assert app_db[Collection.USERS].count_documents({"username": "freename"}) == 0


# --- where the counts live ------------------------------------------------------------------
def test_attempts_expire_through_a_ttl_index(app_db):
    attempt(app_db, "ghost", "not the password", now=datetime.now(timezone.utc) - timedelta(hours=2))
    attempt(app_db, "ghost", "not the password", now=datetime.now(timezone.utc))
    attempts = app_db[Collection.LOGIN_ATTEMPTS]
    assert attempts.index_information()["expiry"]["expireAfterSeconds"] == 0
    stored = attempts.find_one()
    assert ATTACKER not in str(stored) and "ghost" not in str(stored)  # digests only
    app_db.client.admin.command("secantusAdmin.pruneTtl")  # the embedded server's TTL pass, now
    assert attempts.count_documents({}) == 1


def test_a_lockout_holds_across_app_processes(app_db):
    create_user(app_db, "lena", PASSWORD, role=Role.LISTENER, genres=[12])
    now = datetime.now(timezone.utc)
    for second in range(-70, 0):  # the 10th failure, 4 s ago, locks for 15 minutes
        attempt(app_db, "lena", "not the password", now=now + timedelta(seconds=second))
    script = ("from dashboards.auth import log_in, TooManyAttemptsError\n"
              "from fma_platform.mongo import platform_db\n"
              "try:\n"
              f"    log_in(platform_db(), 'lena', {PASSWORD!r}, client='192.0.2.9')\n"
              "except TooManyAttemptsError as exc:\n"
              "    print(exc)\n")
    other = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                           env={**os.environ, "FMA_MONGO_DB": app_db.name}, timeout=120, check=True)
    assert other.stdout.strip() == "Too many attempts, try again in 15 minutes."


# --- through the real account page ----------------------------------------------------------
def _log_in_through_the_page(at, username: str, password: str) -> None:
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    at.button(key="login_submit").click().run()
    assert not at.exception


@pytest.mark.parametrize("username", ["lena", "ghost"])
def test_the_account_page_locks_out_a_guesser(app_db, app_env, listener, username):
    app_env(login_free_failures="2", login_lockout_failures="3", login_backoff_base_s="0")
    page = app_test().run()
    for _ in range(3):
        _log_in_through_the_page(page, username, "a wrong guess")
        assert "wrong username or password" in texts(page)
    _log_in_through_the_page(page, username, PASSWORD)
    assert "Too many attempts, try again in 15 minutes." in texts(page)
    assert "auth_user" not in page.session_state
    fresh = app_test().run()  # a new browser session counts the same failures
    _log_in_through_the_page(fresh, username, PASSWORD)
    assert "Too many attempts, try again in 15 minutes." in texts(fresh)


def test_the_sign_up_page_does_not_tell_a_taken_name_from_a_spent_quota(app_db, app_env, listener):
    app_env(login_signups_per_client="1")
    page = app_test().run()
    shown = []
    for name in ("lena", "brandnew"):
        page.text_input(key="signup_username").input(name)
        page.text_input(key="signup_password").input(PASSWORD)
        page.text_input(key="signup_password2").input(PASSWORD)
        page.multiselect(key="signup_genres").set_value([15])
        page.button(key="signup_submit").click().run()
        assert not page.exception
        shown.append([e.value for e in page.error])
    assert shown == [[SIGNUP_REFUSED], [SIGNUP_REFUSED]]
    assert app_db[Collection.USERS].count_documents({"username": "brandnew"}) == 0
