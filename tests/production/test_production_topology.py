"""The compose stack's own services as local processes, running the main job (#13 item 2).

From the rendered docker-compose.yaml (``topology``): PostgreSQL and Redis from Debian,
a Spark standalone master and 2 workers (``infra.spark_cluster``, the classes compose runs),
Airflow's api-server, scheduler, dag-processor, triggerer and 2 Celery workers, the
streaming service (its guard, then spark-submit to the master) and the player, each with
compose's command and environment mapped to loopback ports and local folders. MongoDB and
Kafka are the embedded stand-ins (``topology.STAND_INS``). One ``fma_etl`` run on a small
sample; then an event through Kafka; then the watchdog in compose mode.

Independent services start side by side (compose's ``depends_on`` order, no more): the
stores and the Spark cluster at once; then the init steps; then the streaming job, the
player and Airflow. Every process carries ``RUN_MARKER`` in its environment, so whatever
escapes its process group (the driver the watchdog resubmits detaches on purpose) is found
and stopped at the end. On a failure the services' logs go to test-artifacts/production/.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fma_platform.settings import PROJECT_ROOT
from tests.production.topology import (
    LOOPBACK,
    Topology,
    compose_values,
    machine_env,
    render,
    without_jars,
)

pytestmark = pytest.mark.production_topology

# Debian's PostgreSQL server (infra/bootstrap.sh installs it), its newest version if several.
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name),
             default=Path("/usr/lib/postgresql/15/bin"))
APP_NAME = "streaming-recommendations"
AIRFLOW_COMPONENTS = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
CELERY_WORKERS = ("airflow-worker-1", "airflow-worker-2")
AIRFLOW_QUEUE = "default"  # Airflow's [operators] default_queue: every worker consumes it
RUN_MARKER = "PRODUCTION_TOPOLOGY_RUN"  # not FMA_*: an unknown FMA_ name stops a platform process
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "production"
# What the artifacts leave out: data files, and the run's secrets (they are this run's own).
NOT_LOGS = shutil.ignore_patterns("pg", "mongo", "*.mp3", "*.parquet", "*.npy", "*.jar", "numba", "checkpoint*",
                                  "compose.env", "*passwords*", "airflow.cfg", "secrets.json")
POLL_S = 0.5
# The ETL run: 12 tracks in 4 extraction chunks (4 planted broken files: half may fail).
ETL_CONF = {"dataset": "sample", "sample_tracks": 12, "chunk_size": 3, "workers": 1, "pca_components": 4,
            "max_failure_fraction": 0.5}


class Processes:
    """Processes this test started, each in its own process group, with a log."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: dict[str, subprocess.Popen] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, command: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
        with (self.logs / f"{name}.log").open("ab") as log:
            popen = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        self.running[name] = popen
        return popen

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        popen = self.running.pop(name)
        try:
            os.killpg(popen.pid, sig)
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(timeout=10)
        except ProcessLookupError:
            return
        try:
            os.killpg(popen.pid, signal.SIGKILL)  # anything left in its group
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        """Last started first; each stopped in its own thread's time, all within ~40 s."""
        names = list(reversed(list(self.running)))
        databases = [name for name in names if name in ("postgres", "mongo", "redis", "kafka")]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda name: self.stop(name, timeout=20), [n for n in names if n not in databases]))
        for name in databases:  # after their clients; PostgreSQL's fast shutdown is SIGINT
            self.stop(name, signal.SIGINT if name == "postgres" else signal.SIGTERM, timeout=15)


def marked_processes(marker: str) -> list[int]:
    """Pids whose environment holds ``RUN_MARKER=marker``: this run's processes, wherever they went."""
    needle = f"{RUN_MARKER}={marker}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return pids


def kill_marked(marker: str) -> list[str]:
    """SIGKILL what is left of this run; returns ``pid command`` of each."""
    killed = []
    for pid in marked_processes(marker):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, FileNotFoundError):
            continue
        killed.append(f"{pid} {command[:160]}")
    return killed


def wait_until(check, what: str, timeout: float, processes: Processes | None = None, name: str = ""):
    deadline = time.monotonic() + timeout
    error = None
    while time.monotonic() < deadline:
        if processes and name and processes.running[name].poll() is not None:
            raise AssertionError(f"{name} exited while {what}:\n{processes.log(name)[-3000:]}")
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # readiness checks report any failure as "not yet"
            error = exc
        time.sleep(POLL_S)
    tail = processes.log(name)[-3000:] if processes and name else ""
    raise AssertionError(f"timed out after {timeout:.0f} s {what} ({error}):\n{tail}")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=3) as response:
        return response.status == 200


def run_step(name: str, command: list[str], env: dict[str, str], logs: Path, timeout: float) -> None:
    """A one-shot service (compose's init steps): its output kept as a log, its failure raised."""
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                            cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL)
    (logs / f"{name}.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, f"{name} failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-3000:]}"


def start_postgres(topology: Topology, root: Path, processes: Processes, env: dict) -> None:
    """PostgreSQL as the postgres:17 image's entrypoint would set it up from compose's environment."""
    service = topology.environment("postgres")
    data, sockets = root / "pg" / "data", root / "pg" / "run"
    for folder in (data, sockets):
        folder.mkdir(parents=True)
    for folder in (root / "pg", data, sockets):
        shutil.chown(folder, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_postgres, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                    "--auth-host=scram-sha-256", "--no-sync"], check=True, capture_output=True, env=env, timeout=120)
    port = topology.port("postgres", 5432)
    processes.start("postgres", [*as_postgres, str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k",
                                 str(sockets), "-c", f"listen_addresses={LOOPBACK}", "-c", "shared_buffers=32MB",
                                 "-c", "fsync=off"], env)

    def psql(sql: str) -> subprocess.CompletedProcess:
        return subprocess.run([*as_postgres, str(PG_BIN / "psql"), "-h", str(sockets), "-p", str(port), "-U",
                               "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True,
                              env=env, timeout=30)

    wait_until(lambda: psql("select 1").returncode == 0, "waiting for PostgreSQL", 60, processes, "postgres")
    user, password, database = service["POSTGRES_USER"], service["POSTGRES_PASSWORD"], service["POSTGRES_DB"]
    for sql in (f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'", f"CREATE DATABASE \"{database}\" OWNER \"{user}\""):
        result = psql(sql)
        assert result.returncode == 0, result.stderr


def start_mongo(topology: Topology, root: Path, processes: Processes, env: dict) -> None:
    """SecantusDB with the root user of compose's mongo service, then --auth (as mongod's image does)."""
    from fma_platform.mongo import mongo_client, ping
    from fma_platform.settings import Settings
    from infra.services import VENV_BIN

    mongo = topology.environment("mongo")
    port = topology.port("mongo", 27017)
    storage = root / "mongo"
    storage.mkdir()
    command = [str(VENV_BIN / "secantusd-py"), "--host", LOOPBACK, "--port", str(port), "--storage-path", str(storage)]
    open_settings = Settings(_env_file=None, mongo_uri=f"mongodb://{LOOPBACK}:{port}")
    processes.start("mongo-setup", command, env)
    wait_until(lambda: ping(open_settings, timeout_ms=500) or True, "waiting for SecantusDB", 60, processes,
               "mongo-setup")
    mongo_client(open_settings).admin.command("createUser", mongo["MONGO_INITDB_ROOT_USERNAME"],
                                              pwd=mongo["MONGO_INITDB_ROOT_PASSWORD"],
                                              roles=[{"role": "root", "db": "admin"}])
    processes.stop("mongo-setup")
    processes.start("mongo", [*command, "--auth"], env)
    root_uri = topology.environment("mongo-init")["FMA_MONGO_URI"]
    wait_until(lambda: ping(Settings(_env_file=None, mongo_uri=root_uri), timeout_ms=500) or True,
               "waiting for SecantusDB with --auth", 60, processes, "mongo")


def start_kafka(topology: Topology, processes: Processes, env: dict) -> None:
    """Tansu on compose's kafka port, then the topics (kafka-init's first step; Tansu has no SCRAM or ACLs)."""
    from infra.services import create_topics, tansu_binary

    port = topology.port("kafka", 9092)
    processes.start("kafka", [tansu_binary(), "broker", "--listener-url", f"tcp://{LOOPBACK}:{port}",
                              "--advertised-listener-url", f"tcp://{LOOPBACK}:{port}",
                              "--storage-engine", "memory://tansu/"], env)
    kafka_settings = settings_of({**env, **topology.environment("kafka-init")})
    wait_until(lambda: create_topics(kafka_settings) is not None, "creating topics", 60, processes, "kafka")


def save_artifacts(root: Path) -> Path:
    """The run's logs (services, Spark daemons and executors, Airflow tasks) under test-artifacts/."""
    target = ARTIFACTS / f"{time.strftime('%Y%m%d-%H%M%S')}-{root.name}"
    shutil.copytree(root, target, ignore=NOT_LOGS, symlinks=True, ignore_dangling_symlinks=True)
    return target


@pytest.fixture(scope="module")
def stack(request):
    if os.geteuid() != 0:
        pytest.skip("PostgreSQL must run as the postgres user: this test needs root to start it (runuser)")
    for binary in (PG_BIN / "postgres", Path(shutil.which("redis-server") or "/nonexistent")):
        if not binary.exists():
            pytest.skip(f"{binary} is missing: `make test-setup` (infra/bootstrap.sh) installs postgresql and "
                        "redis-server with apt")
    pytest.importorskip("airflow.providers.celery", reason="apache-airflow-providers-celery is not installed")
    from fma_platform.settings import get_settings
    from infra.spark_cluster import active_apps, standalone_cluster

    root = Path(tempfile.mkdtemp(prefix="fma-production-"))
    root.chmod(0o755)  # the postgres user reaches its folder through it
    values = compose_values(root / "data")
    (root / "data").mkdir()
    topology = Topology.build(render(values, root), root)
    base = {**machine_env(get_settings().numba_cache_dir, root / "cache"), RUN_MARKER: str(root)}
    processes = Processes(root / "logs")
    master_env = topology.environment("spark-master")
    cluster_context = standalone_cluster(2, 1, "1g", root / "spark", env={
        RUN_MARKER: str(root), "SPARK_DAEMON_JAVA_OPTS": master_env["SPARK_DAEMON_JAVA_OPTS"],
        "SPARK_MASTER_OPTS": master_env["SPARK_MASTER_OPTS"]})
    failed_before = request.session.testsfailed
    failed = True
    started = time.monotonic()
    pool = ThreadPoolExecutor(4)
    cluster_started = None
    try:
        # Nothing depends on these but the services after them: all at once.
        cluster_started = pool.submit(cluster_context.__enter__)
        postgres = pool.submit(start_postgres, topology, root, processes, base)
        mongo = pool.submit(start_mongo, topology, root, processes, base)
        kafka = pool.submit(start_kafka, topology, processes, base)
        (root / "redis").mkdir()
        processes.start("redis", topology.command("redis"), base, cwd=root / "redis")
        postgres.result()
        airflow_init = pool.submit(run_step, "airflow-init", topology.command("airflow-init"),
                                   {**base, **topology.environment("airflow-init")}, processes.logs, 300)
        mongo.result()
        run_step("mongo-init", topology.command("mongo-init"), {**base, **topology.environment("mongo-init")},
                 processes.logs, 120)
        kafka.result()
        cluster = cluster_started.result()
        topology.ports[("spark-master", 0, 7077)] = cluster.port
        topology.ports[("spark-master", 0, 8080)] = cluster.webui_port
        start_streaming(topology, processes, base)
        processes.start("player", topology.command("player"), {**base, **topology.environment("player")},
                        cwd=PROJECT_ROOT)
        airflow_init.result()
        # The watchdog must not find the master without the job while the service's driver
        # registers: compose starts Airflow long after the streaming service; so does this.
        wait_until(lambda: active_apps(cluster.status(), APP_NAME), "waiting for the streaming job on the master",
                   240, processes, "streaming")
        for name in AIRFLOW_COMPONENTS:
            processes.start(name, topology.command(name), {**base, **topology.environment(name)}, cwd=PROJECT_ROOT)
        for replica, name in enumerate(CELERY_WORKERS):
            command = topology.command("airflow-worker", replica) + [
                "--celery-hostname", celery_node(name)]  # one container hostname each
            processes.start(name, command, {**base, **topology.environment("airflow-worker", replica)},
                            cwd=PROJECT_ROOT)
        api_port = topology.port("airflow-api-server", 8080)
        wait_until(lambda: http_ok(f"http://{LOOPBACK}:{api_port}/api/v2/monitor/health"),
                   "waiting for the Airflow api-server", 180, processes, "airflow-api-server")
        wait_until(lambda: http_ok(f"http://{LOOPBACK}:{topology.port('player', 8501)}/_stcore/health"),
                   "waiting for the player", 120, processes, "player")
        print(f"production topology up in {time.monotonic() - started:.0f} s under {root}")
        yield {"topology": topology, "values": values, "cluster": cluster, "processes": processes, "base": base,
               "root": root, "started": started}
        failed = request.session.testsfailed > failed_before
    finally:
        processes.stop_all()
        if cluster_started is not None and cluster_started.done() and cluster_started.exception() is None:
            cluster_context.__exit__(None, None, None)
        pool.shutdown(wait=True, cancel_futures=True)
        escaped = kill_marked(str(root))  # e.g. the watchdog's resubmitted driver (its own session)
        print(f"production topology: {time.monotonic() - started:.0f} s in all; stopped {len(escaped)} detached "
              "process(es)" + "".join(f"\n  {line}" for line in escaped))
        if failed:
            print(f"production topology failed: logs in {save_artifacts(root)}")
        if os.environ.get("PRODUCTION_TOPOLOGY_KEEP") == "1":
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        deadline = time.monotonic() + 10
        while (leftover := marked_processes(str(root))) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        assert not leftover, f"processes of this run still alive: {leftover}"


def celery_node(worker: str) -> str:
    return f"{worker}@production-topology"


def settings_of(env: dict[str, str]):
    from fma_platform.settings import Settings, setting_variables

    known = set(setting_variables())
    values = {name[4:].lower(): value for name, value in env.items() if name in known}
    return Settings(_env_file=None, **values)


def start_streaming(topology: Topology, processes: Processes, base: dict, name: str = "streaming"):
    return processes.start(name, without_jars(topology.command("streaming")),
                           {**base, **topology.environment("streaming")}, cwd=PROJECT_ROOT)


def streaming_report(topology: Topology, base: dict) -> dict:
    """The job's heartbeat as the streaming service's login reads it (raises when it is dead)."""
    from fma_platform.mongo import platform_db
    from infra.streaming import streaming_health

    settings = settings_of({**base, **topology.environment("streaming")})
    return streaming_health(platform_db(settings, timeout_ms=2000), max_lag=2**62)


def streaming_dead(topology: Topology, base: dict) -> bool:
    from infra.streaming import StreamingDeadError

    try:
        streaming_report(topology, base)
    except StreamingDeadError:
        return True
    return False


def airflow_api(stack):
    from infra.airflow_api import AirflowApi

    topology, values = stack["topology"], stack["values"]
    return AirflowApi(base_url=f"http://{LOOPBACK}:{topology.port('airflow-api-server', 8080)}",
                      username=values["AIRFLOW_ADMIN_USER"], password=values["AIRFLOW_ADMIN_PASSWORD"], timeout=30)


def run_dag(api, dag_id: str, conf: dict, timeout: float) -> str:
    run_id = api.trigger(dag_id, conf)
    api.wait_for_run(dag_id, run_id, timeout=timeout, poll=1)
    return run_id


def chunks_by_worker(processes: Processes) -> dict[str, int]:
    return {name: processes.log(name).count("task_id='extract_chunk'") for name in CELERY_WORKERS}


@pytest.fixture(scope="module")
def etl_run(stack):
    """One fma_etl run on a small sample (``ETL_CONF``); fma_training stays paused.

    ``extract_chunk`` runs one chunk at a time (``max_active_tis_per_dagrun=1``), so which
    idle worker takes the next one is up to Redis. Once a worker has taken a chunk, it is
    drained (Celery's ``cancel_consumer``, as an operator takes a machine out): the other
    chunks must run on the other worker, and the run must still succeed.
    """
    from celery import Celery

    api, processes = airflow_api(stack), stack["processes"]
    api.wait_for_dag("fma_training")
    api.request("PATCH", "/dags/fma_training", json={"is_paused": True}).raise_for_status()
    api.wait_for_dag("fma_etl")
    started = time.monotonic()
    run_id = api.trigger("fma_etl", ETL_CONF)
    first = wait_until(lambda: next((name for name, count in chunks_by_worker(processes).items() if count), None),
                       "waiting for the first extraction chunk", 600)
    broker = stack["topology"].environment("airflow-worker")["AIRFLOW__CELERY__BROKER_URL"]
    control = Celery(broker=broker).control
    control.cancel_consumer(AIRFLOW_QUEUE, destination=[celery_node(first)], reply=False)
    try:
        api.wait_for_run("fma_etl", run_id, timeout=900, poll=1)
    finally:
        control.add_consumer(AIRFLOW_QUEUE, destination=[celery_node(first)], reply=False)
    print(f"fma_etl on the production topology: {time.monotonic() - started:.0f} s; extraction chunks per "
          f"worker {chunks_by_worker(processes)} ({first} drained after its first)")
    return run_id


def test_extraction_chunks_ran_on_both_celery_workers(stack, etl_run):
    chunks = chunks_by_worker(stack["processes"])
    assert all(count > 0 for count in chunks.values()), chunks
    assert sum(chunks.values()) >= 4, chunks


def test_the_spark_jobs_ran_on_the_standalone_master_with_executors_on_its_workers(stack, etl_run):
    cluster = stack["cluster"]
    status = cluster.status()
    transform = [app for app in status["completedapps"] if app["name"] == "transform-features"]
    assert transform and transform[-1]["state"] == "FINISHED", status["completedapps"]
    executors = cluster.executor_apps_by_worker()
    assert any(transform[-1]["id"] in apps for apps in executors.values()), executors
    streaming = [app for app in status["activeapps"] if app["name"] == APP_NAME]
    assert len(streaming) == 1 and any(streaming[0]["id"] in apps for apps in executors.values())


def test_an_event_through_kafka_becomes_recommendations_via_the_cluster_job(stack, etl_run):
    from fma_platform.contracts import Collection
    from fma_platform.events import new_event
    from fma_platform.mongo import platform_db
    from fma_platform.producer import EventProducer

    topology, base = stack["topology"], stack["base"]
    wait_until(lambda: streaming_report(topology, base), "waiting for the streaming job's heartbeat", 120,
               stack["processes"], "streaming")
    player = settings_of({**base, **topology.environment("player")})
    db = platform_db(player)
    track = db[Collection.TRACK_FEATURES].find_one({}, {"track_id": 1})
    assert track is not None, "the ETL run loaded no features"
    producer = EventProducer(player)
    try:
        played = new_event(user_id="production-listener", track_id=int(track["track_id"]), type="complete",
                           position_s=30.0, listened_s=30.0, track_duration_s=30.0,
                           client_ts=datetime.now(timezone.utc), session_id="prod", source="simulator")
        producer.send(played)
        assert producer.flush(30)
    finally:
        producer.close()
    recs = wait_until(lambda: db[Collection.REALTIME_RECOMMENDATIONS].find_one({"user_id": "production-listener"}),
                      "waiting for realtime recommendations", 120, stack["processes"], "streaming")
    assert recs["triggered_by"] == played.event_id and recs["items"]


def test_the_watchdog_restarts_a_killed_job_and_never_starts_a_second(stack, etl_run):
    from infra.spark_cluster import active_apps

    cluster, processes, topology, base = stack["cluster"], stack["processes"], stack["topology"], stack["base"]
    before = active_apps(cluster.status(), APP_NAME)
    assert len(before) == 1
    processes.stop("streaming", signal.SIGKILL)  # the container dies; compose would restart it
    wait_until(lambda: not active_apps(cluster.status(), APP_NAME), "waiting for the master to drop the job", 120)
    wait_until(lambda: streaming_dead(topology, base), "waiting for the heartbeat to go stale", 60)
    run_dag(airflow_api(stack), "streaming_watchdog", {}, timeout=400)
    after = active_apps(cluster.status(), APP_NAME)
    assert len(after) == 1 and after[0]["id"] != before[0]["id"], after
    # The container's restart: its guard waits beside the resubmitted job instead of doubling it.
    restarted = start_streaming(topology, processes, base, name="streaming-restarted")
    wait_until(lambda: "already runs on the master" in processes.log("streaming-restarted"),
               "waiting for the restarted service's guard", 60, processes, "streaming-restarted")
    assert restarted.poll() is None
    assert [app["id"] for app in active_apps(cluster.status(), APP_NAME)] == [after[0]["id"]]
    assert streaming_report(topology, base)["status"] == "ok"
    print(f"production topology: the tests ended {time.monotonic() - stack['started']:.0f} s after the start")
