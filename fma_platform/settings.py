"""One settings object, read once from the environment and an optional ``.env`` file.

Every variable is prefixed ``FMA_`` (``FMA_MONGO_PORT=27100``). The embedded stack and the
compose stack use the same names; only the values differ. Paths resolve from the
project root, never from the current working directory.

The ``FMA_`` prefix belongs to these settings alone: a variable (in the environment or in
``.env``) whose name starts with ``FMA_`` but names no field is an error, so a misspelt or
retired setting never silently falls back to its default. Switches of the tooling around
the platform (the test suite, compose's own variables) use other names.

Two addresses are kept apart: ``bind_host`` is the interface the embedded services listen
on; ``host`` is the address clients (and people) use to reach them, so it is what URLs and
the default MongoDB/Kafka endpoints are built from. Listening on every interface
(``FMA_BIND_HOST=0.0.0.0``) therefore never leaks ``0.0.0.0`` into a link.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fma_platform.errors import PlatformError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Per-user cache that outlives a checkout's state folder (numba's JIT cache, the real-music
# corpus): $XDG_CACHE_HOME/fma-platform, else ~/.cache/fma-platform.
USER_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fma-platform"
ENV_PREFIX = "FMA_"
ENV_FILE = PROJECT_ROOT / ".env"
# Addresses that mean "every interface": a server can listen on them, no client can use them.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]", "*"})
# Shortest retention of raw listening events: training learns from every stored event, and
# its users' histories span weeks (the simulator's default history is 28 days).
MIN_LISTENING_EVENTS_RETENTION_DAYS = 30


class SettingsError(PlatformError, ValueError):
    """The environment or ``.env`` configures the platform with names or values it cannot use."""


class UnknownSettingError(SettingsError):
    """``FMA_*`` variables that name no setting (``names``: variable -> where it was found)."""

    def __init__(self, names: Mapping[str, str], known: Iterable[str]) -> None:
        self.names = dict(names)
        known = sorted(known)
        parts = []
        for name, origin in sorted(self.names.items()):
            match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f" (did you mean {match[0]}?)" if match else ""
            parts.append(f"{name} in {origin}{hint}")
        super().__init__(
            f"unknown setting{'s' if len(parts) > 1 else ''}: {'; '.join(parts)}. Every {ENV_PREFIX}* "
            "variable must name a field of fma_platform/settings.py; tools use other prefixes"
        )


class Settings(BaseSettings):
    """Typed configuration of every service endpoint, path and tunable of the platform."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        # Non-FMA_ lines of .env are not ours; unknown FMA_ names are refused in __init__.
        extra="ignore",
        # A validation error names the setting and the rule, never the value given: values
        # include passwords (a model check's error would otherwise print every input).
        hide_input_in_errors=True,
    )

    # Where the embedded stack keeps all of its state (databases, logs, pids, datasets).
    state_dir: Path = Field(default=PROJECT_ROOT / ".platform")
    # Where caches that are costly to rebuild and safe to share between checkouts live.
    cache_dir: Path = Field(default=USER_CACHE_DIR)
    # Interface the embedded services listen on (0.0.0.0: every interface).
    bind_host: str = "127.0.0.1"
    # Address clients use to reach the services: links, default MongoDB and Kafka endpoints.
    host: str = "127.0.0.1"

    # MongoDB (embedded: SecantusDB; production: MongoDB replica set).
    mongo_port: int = 27018
    mongo_uri: str = ""  # empty: mongodb://{host}:{mongo_port}
    mongo_db: str = "fma"
    # Timeouts of every MongoDB client (fma_platform.mongo, the one client factory): finding
    # and connecting to a server, and waiting for one reply (long enough for a bulk write of
    # a few thousand 518-float documents on the embedded server, short enough that a hung
    # server fails the call instead of blocking it forever).
    mongo_timeout_ms: int = Field(default=5_000, ge=1)
    mongo_socket_timeout_ms: int = Field(default=120_000, ge=1)
    # Retention (TTL indexes made by spark_jobs.streaming.sink.ensure_indexes; SecantusDB and
    # MongoDB both expire documents within ~60 s of the deadline). 0 keeps documents forever.
    # Windows count from when the platform stored a document (stream_metrics.batch_time,
    # dead_letters.received_at, listening_events.stored_at), never from a client's clock.
    # Training reads every stored listening event: this window is the longest history
    # training can learn from, and at least 30 days are kept (fewer is refused).
    retention_stream_metrics_days: int = Field(default=7, ge=0)
    retention_dead_letters_days: int = Field(default=30, ge=0)
    retention_listening_events_days: int = Field(default=365, ge=0)
    # Player reports the server refused (rejected_reports.last_at; dashboards.playback).
    retention_rejected_reports_days: int = Field(default=30, ge=0)

    # Kafka (embedded: Tansu; production: Apache Kafka in KRaft mode).
    kafka_port: int = 19092
    kafka_bootstrap_servers: str = ""  # empty: {host}:{kafka_port}
    kafka_events_topic: str = "listening-events"
    kafka_events_partitions: int = 3
    # Events the producer (fma_platform.producer) keeps on disk while Kafka is unreachable,
    # in <state_dir>/outbox; beyond it the oldest are dropped and counted (~300 bytes each).
    producer_outbox_max_events: int = Field(default=100_000, ge=1)
    # How every Kafka client authenticates and encrypts (fma_platform.kafka turns these into
    # kafka-python arguments and Spark's kafka.* options). SASL_* need the username and
    # password; *SSL verifies the broker against ssl_cafile (PEM; empty: the system's CAs).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")  # shown as ********** by repr and dumps
    kafka_ssl_cafile: str = ""

    # Spark.
    spark_master: str = "local[*]"
    spark_shuffle_partitions: int = 4
    spark_driver_memory: str = "2g"
    # Who runs the long-running streaming job (infra.streaming, #13): "embedded" (this
    # machine's infra.process, local[2]) or "compose" (the `streaming` service submits it to
    # the standalone master; the watchdog resubmits it there only when the master's status
    # page shows no application of its name: never a second copy).
    deployment: Literal["embedded", "compose"] = "embedded"
    # The standalone master's web UI (its /json/ status); empty: the master URL's host, port 8080.
    spark_master_webui_url: str = ""
    # Jars every spark-submit of the streaming job gets (--jars; globs allowed): the image's
    # Kafka connector under compose. Empty: none.
    spark_jars: str = ""
    # Streaming source of Kafka records: "native" (the spark-sql-kafka connector, which must
    # be on the classpath), "python" (the project's Python data source) or "auto" (native
    # when the connector is on the classpath).
    spark_kafka_source: Literal["auto", "python", "native"] = "auto"
    # Most Kafka records one streaming micro-batch reads (maxOffsetsPerTrigger of either
    # source), so a backlog after an outage drains in bounded batches instead of landing on
    # the driver at once. 0: no bound (every available record in one batch). The choice,
    # measured by benchmarks/bench_stream_backlog.py (50,000 events, 300 listeners): the
    # driver's peak is the same at 1,000-10,000, while each batch re-ranks its listeners, so
    # 2,000 drained at half the rate of 5,000 (321 vs 673 events/s; 730 without a bound).
    stream_max_records_per_batch: int = Field(default=5_000, ge=0)
    # Where the stream's per-listener work runs (issue 16): "executors" (decode and store on
    # the executors, then listeners partitioned by user_id, each partition ranking and writing
    # its listeners; the driver only coordinates) or "driver" (every step in the driver
    # process; kept so benchmarks/bench_streaming_throughput.py can compare both). Default
    # driver: on the 2-core machine a Spark job per micro-batch cost more than it spread
    # (bench_streaming_latency.py --execution executors,driver at 100 ev/s: p95 7.0 s vs 1.8 s).
    stream_execution: Literal["driver", "executors"] = "driver"
    # The stream's data writes: "mongo" (the platform), or "count" (benchmarks only: events,
    # dead letters, recommendations and trending are counted, not written; histories are the
    # batch's own events), to measure the job's own ceiling apart from the database.
    stream_sink: Literal["mongo", "count"] = "mongo"

    # Airflow (embedded: standalone components on SQLite; production: Postgres).
    airflow_port: int = 8080
    airflow_admin_user: str = "admin"

    # Streamlit.
    streamlit_port: int = 8501
    # Great Expectations' Data Docs (the ETL quality gate's HTML reports), served over HTTP
    # so the analyst pages can link them (infra/services.py data_docs_spec).
    data_docs_port: int = 8502
    # Player reports (dashboards.report_guard): each session may turn at most a burst of
    # reports and actions into events, refilled at a steady rate (a token bucket); listened
    # seconds may run this far ahead of the server's clock since the play started.
    player_event_burst: int = Field(default=20, ge=1)
    player_events_per_second: float = Field(default=1.0, gt=0)
    player_clock_slack_s: float = Field(default=2.0, ge=0)
    # Login abuse limits of the app (dashboards/throttle.py). Failed logins are counted per
    # username and per client over the last LOGIN_WINDOW_S; past the free failures each
    # further attempt must wait BACKOFF_BASE_S * 2^(failures - free) (at most BACKOFF_MAX_S)
    # after the last one; at the lockout count the key is refused for LOCKOUT_S, then gets
    # one attempt per LOCKOUT_S until its failures leave the window. Unknown usernames count
    # the same as real ones.
    login_window_s: int = Field(default=3600, ge=1)
    login_free_failures: int = Field(default=5, ge=0)  # per username, before any wait
    login_lockout_failures: int = Field(default=10, ge=1)  # per username
    login_client_free_failures: int = Field(default=20, ge=0)  # per client, across usernames
    login_client_lockout_failures: int = Field(default=50, ge=1)  # per client
    login_backoff_base_s: float = Field(default=2.0, ge=0)
    login_backoff_max_s: float = Field(default=60.0, ge=0)
    login_lockout_s: int = Field(default=900, ge=1)
    # Password hashes (argon2id, 64 MiB each) running at once per app process; an attempt
    # that finds no free slot within LOGIN_HASH_WAIT_S (about one hash here) is refused
    # ("busy, try again"), never queued without bound.
    login_max_concurrent_hashes: int = Field(default=2, ge=1)
    login_hash_wait_s: float = Field(default=1.0, ge=0)
    login_signups_per_client: int = Field(default=5, ge=1)  # per LOGIN_SIGNUP_WINDOW_S
    login_signup_window_s: int = Field(default=3600, ge=1)
    # Reverse proxies (comma-separated addresses or CIDRs) whose X-Forwarded-For names the
    # client; empty: none is trusted and the header is treated as hostile.
    login_trusted_proxies: str = ""

    # Datasets: "sample" (synthetic, generated) or an FMA subset name.
    dataset: str = "sample"
    sample_tracks: int = 120
    sample_seed: int = 7
    fma_base_url: str = "https://os.unil.cloud.switch.ch/fma"

    # Extraction.
    extract_workers: int = 2
    # Extraction chunks of one fma_etl run that may run at once (read when the DAG is parsed).
    # 1 on one machine (a chunk's `workers` processes already use its cores); under compose,
    # one per Celery worker replica, so added machines extract in parallel.
    extract_parallel_chunks: int = Field(default=1, ge=1)
    extract_chunk_size: int = 50
    # The warm extraction server (audio_features/server.py): when on, `python -m
    # audio_features extract` runs in one long-lived process per checkout that has paid the
    # imports and JIT load once (started on first use, under cache_dir), which stops after
    # this many seconds without a run. On by default: every ETL chunk is one such run, and the
    # server takes its fixed cost from ~8-20 s to ~2.4 s (README "Measured"); `make down` and
    # the test suite's end stop it; a run that cannot reach it extracts by itself.
    extractor_server: bool = True
    extractor_server_idle_s: float = Field(default=600.0, gt=0)

    def __init__(self, **values: Any) -> None:
        env_file = values.get("_env_file", self.model_config.get("env_file"))
        reject_unknown_variables(os.environ, env_file)
        super().__init__(**values)

    @field_validator("state_dir", "cache_dir", mode="after")
    @classmethod
    def _absolute_state_dir(cls, value: Path) -> Path:
        return value if value.is_absolute() else (PROJECT_ROOT / value)

    @field_validator("retention_listening_events_days", mode="after")
    @classmethod
    def _keeps_training_history(cls, value: int) -> int:
        if 0 < value < MIN_LISTENING_EVENTS_RETENTION_DAYS:
            raise ValueError(
                f"{value} days would delete listening events training still learns from: keep at least "
                f"{MIN_LISTENING_EVENTS_RETENTION_DAYS} days (or 0: forever)"
            )
        return value

    @field_validator("host", mode="after")
    @classmethod
    def _host_clients_can_use(cls, value: str) -> str:
        if value.strip() in WILDCARD_HOSTS or not value.strip():
            raise ValueError(
                f"{value!r} is not an address a client can connect to. {ENV_PREFIX}HOST is the address "
                f"clients use; to listen on every interface set {ENV_PREFIX}BIND_HOST={value or '0.0.0.0'} "
                f"and {ENV_PREFIX}HOST to this machine's name or address"
            )
        return value.strip()

    @model_validator(mode="after")
    def _kafka_credentials_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
                self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()):
            raise ValueError(
                f"{ENV_PREFIX}KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                f"{ENV_PREFIX}KAFKA_SASL_USERNAME and {ENV_PREFIX}KAFKA_SASL_PASSWORD"
            )
        return self

    def as_env(self) -> dict[str, str]:
        """These settings as ``FMA_*`` variables, for the processes the platform starts.

        Secrets are given in clear: this is a child process's environment, never a page or a log.
        """
        values = {name: value.get_secret_value() if isinstance(value, SecretStr) else value
                  for name, value in self.model_dump().items()}
        return {
            f"{ENV_PREFIX}{name.upper()}": str(value)
            for name, value in values.items()
            if value not in ("", None)
        }

    # Derived endpoints and paths ---------------------------------------------------------
    @property
    def mongo_url(self) -> str:
        return self.mongo_uri or f"mongodb://{self.host}:{self.mongo_port}"

    @property
    def mongo_url_redacted(self) -> str:
        """``mongo_url`` for messages, pages and logs: any password replaced by ``***``."""
        return redact_url(self.mongo_url)

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap_servers or f"{self.host}:{self.kafka_port}"

    @property
    def data_docs_url(self) -> str:
        """Where people reach the quality gate's Data Docs site."""
        return f"http://{self.host}:{self.data_docs_port}"

    @property
    def quality_dir(self) -> Path:
        """The quality gate's Great Expectations project (suites, results, Data Docs)."""
        return self.state_dir / "gx"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def mongo_storage_dir(self) -> Path:
        return self.state_dir / "mongo"

    @property
    def models_dir(self) -> Path:
        return self.state_dir / "models"

    @property
    def streaming_checkpoint_dir(self) -> Path:
        return self.state_dir / "checkpoints" / "streaming_recommendations"

    @property
    def sample_dir(self) -> Path:
        return self.data_dir / "sample"

    @property
    def numba_cache_dir(self) -> Path:
        """numba's JIT cache (librosa's compiled kernels): per user, so every run reuses it."""
        return self.cache_dir / "numba"

    @property
    def recorded_corpus_dir(self) -> Path:
        """The real-music test corpus built from Debian's packages (never committed)."""
        return self.cache_dir / "recorded-corpus"


def setting_variables() -> list[str]:
    """Every variable name a setting is read from (``FMA_MONGO_PORT``, ...)."""
    return [f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields]


def reject_unknown_variables(
    environ: Mapping[str, str], env_file: str | Path | Iterable[str | Path] | None = ENV_FILE,
) -> None:
    """Raise ``UnknownSettingError`` for ``FMA_*`` names in ``environ`` or ``env_file`` that name no setting.

    ``env_file`` is what the settings read (a path, several, or None). Names compare
    case-insensitively, as the settings read them.
    """
    known = setting_variables()
    known_upper = set(known)
    found = {name.upper(): "the environment" for name in environ}
    env_files = [env_file] if isinstance(env_file, (str, Path)) else list(env_file or ())
    for path in map(Path, env_files):
        if path.is_file():
            for name in dotenv_values(path):
                found.setdefault(name.upper(), str(path))
    unknown = {name: origin for name, origin in found.items()
               if name.startswith(ENV_PREFIX) and name not in known_upper}
    if unknown:
        raise UnknownSettingError(unknown, known)


def redact_url(url: str) -> str:
    """``url`` with the password of its user info (``scheme://user:password@host``) as ``***``.

    Works on multi-host MongoDB URIs too (``mongodb://u:p@h1:1,h2:2/?opts``), which
    ``urllib.parse`` cannot split; a URL without a password is returned unchanged.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority = rest[:authority_end]
    userinfo, at, hosts = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hosts}{rest[authority_end:]}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
