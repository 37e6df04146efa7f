"""MongoDB down or hung: every client fails a call with a clear error within its timeout.

Three faults, each against something real: a port where nothing listens, a port that
accepts connections and never answers (a dead proxy, a half-open connection), and a real
SecantusDB server frozen with SIGSTOP after it answered (a hung server mid-operation).
And the tree has no other ``MongoClient`` than the factory's, so every client gets them.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from pymongo.errors import NetworkTimeout, PyMongoError, ServerSelectionTimeoutError

from fma_platform.mongo import mongo_client, ping, platform_db
from fma_platform.settings import PROJECT_ROOT
from infra import process
from infra.process import free_port
from infra.services import mongo_spec

TIMEOUT_MS = 1_000
# A call may take its server-selection timeout plus one connect/socket timeout, and the
# driver's own scheduling on a busy machine: well under the socket default of 120 s.
BOUND_S = 2 * TIMEOUT_MS / 1000 + 2.0
PASSWORD = "s3cret-Pa55"


def short_timeouts(settings, **update):
    return settings.model_copy(update={"mongo_timeout_ms": TIMEOUT_MS, "mongo_socket_timeout_ms": TIMEOUT_MS,
                                       **update})


def timed_failure(call) -> tuple[PyMongoError, float]:
    started = time.monotonic()
    with pytest.raises(PyMongoError) as caught:
        call()
    return caught.value, time.monotonic() - started


def test_nothing_listening_fails_within_the_timeout_naming_the_address_not_the_password(settings):
    port = free_port()
    down = short_timeouts(settings, mongo_uri=f"mongodb://fma:{PASSWORD}@127.0.0.1:{port}/?authSource=admin")

    error, seconds = timed_failure(lambda: platform_db(down).tracks.find_one({}))

    assert isinstance(error, ServerSelectionTimeoutError)
    assert seconds < BOUND_S
    assert f"127.0.0.1:{port}" in str(error) and PASSWORD not in str(error)


@contextmanager
def silent_server():
    """A port that accepts TCP connections and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except (TimeoutError, OSError):
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for connection in accepted:
            connection.close()
        listener.close()


def test_a_server_that_never_answers_fails_within_the_timeout(settings):
    with silent_server() as port:
        silent = short_timeouts(settings, mongo_port=port)
        error, seconds = timed_failure(lambda: platform_db(silent).tracks.find_one({}))
        ping_error, ping_seconds = timed_failure(lambda: ping(silent, timeout_ms=TIMEOUT_MS))

    assert isinstance(error, ServerSelectionTimeoutError) and isinstance(ping_error, ServerSelectionTimeoutError)
    assert seconds < BOUND_S and ping_seconds < BOUND_S
    assert str(port) in str(error)  # the topology names the server it waited for


@pytest.mark.slow
def test_a_server_hung_mid_session_fails_the_next_call_within_the_socket_timeout(settings, tmp_path):
    private = short_timeouts(settings, mongo_port=free_port(), state_dir=tmp_path)
    spec = mongo_spec(private)
    record, _ = process.start(spec)
    try:
        collection = platform_db(private).hung_test
        collection.insert_one({"_id": 1})
        assert collection.find_one({"_id": 1}) == {"_id": 1}  # a pooled connection that works
        os.killpg(record.pid, signal.SIGSTOP)
        try:
            error, seconds = timed_failure(lambda: collection.find_one({"_id": 1}))
        finally:
            os.killpg(record.pid, signal.SIGCONT)
    finally:
        process.stop(spec)

    assert isinstance(error, NetworkTimeout | ServerSelectionTimeoutError)
    assert seconds < BOUND_S
    assert "timed out" in str(error)


def test_options_in_the_url_cannot_lift_the_timeouts(settings):
    unbounded = short_timeouts(settings, mongo_uri=f"mongodb://127.0.0.1:{free_port()}/"
                                                   "?socketTimeoutMS=0&connectTimeoutMS=0&serverSelectionTimeoutMS=0")
    options = mongo_client(unbounded).options

    assert options.pool_options.socket_timeout == TIMEOUT_MS / 1000
    assert options.pool_options.connect_timeout == TIMEOUT_MS / 1000
    assert options.server_selection_timeout == TIMEOUT_MS / 1000


def test_the_settings_timeouts_are_the_defaults_and_callers_may_only_choose_their_own(settings):
    options = mongo_client(settings).options
    assert (options.server_selection_timeout, options.pool_options.socket_timeout) == (
        settings.mongo_timeout_ms / 1000, settings.mongo_socket_timeout_ms / 1000)
    assert mongo_client(settings, timeout_ms=1500).options.server_selection_timeout == 1.5


SOURCE_FOLDERS = ("fma_platform", "spark_jobs", "pipeline", "dashboards", "dags", "plugins", "infra", "simulator",
                  "audio_features", "fma_sample", "benchmarks", "tests")
CLIENT_CONSTRUCTOR = re.compile(r"\b(?:Async)?MongoClient\(")


def test_the_factory_is_the_only_place_a_mongo_client_is_made():
    factory = PROJECT_ROOT / "fma_platform" / "mongo.py"
    this_file = Path(__file__).resolve()
    elsewhere = sorted(
        str(path.relative_to(PROJECT_ROOT))
        for folder in SOURCE_FOLDERS
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        if path.resolve() not in (factory, this_file) and CLIENT_CONSTRUCTOR.search(path.read_text())
    )
    assert CLIENT_CONSTRUCTOR.search(factory.read_text())
    assert elsewhere == []
