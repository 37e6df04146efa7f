"""Test harness: the real embedded servers on free ports, one Spark session per run.

At collection time the whole test run is pointed at a private state folder and free
ports through ``FMA_*`` variables, so nothing a test starts can touch a developer's
running stack, and code that reads ``get_settings()`` sees the test endpoints.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.process import free_port

_STATE = Path(tempfile.mkdtemp(prefix="fma-test-state-"))
os.environ.update({
    "FMA_STATE_DIR": str(_STATE),
    "FMA_MONGO_PORT": str(free_port()),
    "FMA_KAFKA_PORT": str(free_port()),
    "FMA_AIRFLOW_PORT": str(free_port()),
    "FMA_STREAMLIT_PORT": str(free_port()),
    "FMA_DATA_DOCS_PORT": str(free_port()),
    "FMA_SPARK_MASTER": "local[2]",
    "FMA_SPARK_SHUFFLE_PARTITIONS": "2",
})
os.environ.pop("FMA_MONGO_URI", None)
os.environ.pop("FMA_KAFKA_BOOTSTRAP_SERVERS", None)

from fma_platform.settings import Settings, get_settings  # noqa: E402  (after the env is set)

get_settings.cache_clear()
# Airflow reads its configuration when first imported: point it at the test state now.
from infra.services import airflow_env  # noqa: E402

os.environ.update(airflow_env(get_settings()))


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The test run's settings (private state folder, free ports)."""
    return get_settings()


@pytest.fixture(scope="session", autouse=True)
def _stop_the_extraction_server():
    """Extraction runs (CLI, ETL chunks) start the warm extraction server: stop it at the end."""
    yield
    from audio_features.server import stop_server

    stop_server(get_settings().cache_dir)


@pytest.fixture(scope="session")
def mongo_server(settings):
    """A real SecantusDB server for the whole test session."""
    from infra import process
    from infra.services import mongo_spec

    spec = mongo_spec(settings)
    process.start(spec)
    yield settings
    process.stop(spec)


def fresh_database(server_settings):
    """A fresh, uniquely named database on the session's server, dropped when the generator ends."""
    from fma_platform.mongo import mongo_client

    client = mongo_client(server_settings)
    name = f"test_{uuid.uuid4().hex[:10]}"
    yield client[name]
    client.drop_database(name)


@pytest.fixture()
def mongo_db(mongo_server):
    """A fresh, uniquely named database on the session's server, dropped afterwards."""
    yield from fresh_database(mongo_server)


@pytest.fixture(scope="session")
def kafka_broker(settings):
    """A real Tansu broker (Kafka protocol) with the platform's topics created."""
    from infra import process
    from infra.services import create_topics, kafka_spec

    spec = kafka_spec(settings)
    process.start(spec)
    create_topics(settings)
    yield settings
    process.stop(spec)


@pytest.fixture(scope="session")
def spark(settings):
    """The one SparkSession of the test run (local[2], 2 shuffle partitions)."""
    from spark_jobs.session import spark_session

    session = spark_session("fma-tests", settings=settings)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def airflow_db(settings):
    """A migrated Airflow metadata database (SQLite under the test state folder)."""
    from infra.services import migrate_airflow_db

    migrate_airflow_db(settings)
    return settings.airflow_home / "airflow.db"


@pytest.fixture(scope="session")
def recorded_corpus(settings):
    """The real-music corpus from Debian packages (``fma_sample.recorded``): built once per user.

    ``make test`` builds it before the tests; here it is only located (or built, when run
    without make). Returns a ``RecordedCorpus``: ``out_dir``, ``tracks_csv``, ``genres_csv``,
    ``audio_dir``, ``manifest``, ``clip_ids``, ``planted``, ``expected_failures``.
    """
    from fma_sample.recorded import ensure_recorded_corpus

    return ensure_recorded_corpus(settings.recorded_corpus_dir, progress=False)


@dataclass(frozen=True)
class RecordedExtraction:
    """One run of ``python -m audio_features extract`` over the whole recorded corpus."""

    out_dir: Path
    result: subprocess.CompletedProcess
    seconds: float
    workers: int


@pytest.fixture(scope="session")
def recorded_extraction(recorded_corpus, tmp_path_factory) -> RecordedExtraction:
    """The recorded corpus through the extractor's command, as a user types it: run once per
    test session and shared (the extractor's tests and the quality gate's read it)."""
    workers = 2
    out_dir = tmp_path_factory.mktemp("recorded-extract")
    command = [sys.executable, "-m", "audio_features", "extract", "--audio-dir", str(recorded_corpus.audio_dir),
               "--tracks", str(recorded_corpus.tracks_csv), "--out", str(out_dir), "--workers", str(workers)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    seconds = time.perf_counter() - started
    print(f"extracted the recorded corpus with {workers} workers in {seconds:.1f} s")
    return RecordedExtraction(out_dir=out_dir, result=result, seconds=seconds, workers=workers)


@pytest.fixture()
def unique_topic(kafka_broker):
    """Create and name a fresh topic with 3 partitions for one test."""
    from fma_platform.kafka import ensure_topics

    name = f"test-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_broker, {name: 3})
    return name


def pytest_sessionfinish(session, exitstatus):
    """Remove the private state folder (servers were stopped by their fixtures)."""
    import shutil

    shutil.rmtree(_STATE, ignore_errors=True)
