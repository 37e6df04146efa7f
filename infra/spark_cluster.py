"""A Spark standalone cluster (master + workers) as local processes, and its master's status.

The compose stack runs ``spark-class org.apache.spark.deploy.master.Master`` and
``...deploy.worker.Worker spark://master:7077`` in containers; ``standalone_cluster`` runs
the same classes from the venv's PySpark on loopback ports, for tests and benchmarks that
need executors in other JVMs than the driver's::

    with standalone_cluster(workers=2, cores_per_worker=1, memory="1g", state_dir=tmp) as cluster:
        subprocess.run(["spark-submit", "--master", cluster.master_url, job])
        cluster.status()["completedapps"]

``master_status`` reads the master's JSON page (``http://host:webui/json/``: workers,
active and completed applications); the streaming watchdog uses it under compose to see
whether the streaming job runs before it submits one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from infra.process import StackError, free_port, log_tail

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
DEFAULT_WEBUI_PORT = 8080  # the master's, as Spark and the compose file have it
# Heap of each master/worker daemon: they only schedule and launch executors.
DAEMON_MEMORY = "256m"


class SparkClusterError(StackError):
    """The standalone master or a worker did not start, or its status cannot be read."""


def master_ui_url(master_url: str, webui_port: int = DEFAULT_WEBUI_PORT) -> str:
    """The web UI of the master at ``spark://host:port`` (Spark's default UI port unless given)."""
    parts = urlsplit(master_url)
    if parts.scheme != "spark" or not parts.hostname:
        raise SparkClusterError(f"{master_url!r} is not a standalone master URL (spark://host:port)")
    return f"http://{parts.hostname}:{webui_port}"


def master_status(webui_url: str, *, timeout: float = 5.0) -> dict:
    """The master's JSON status: ``status`` (ALIVE), ``workers``, ``activeapps``, ``completedapps``."""
    url = f"{webui_url.rstrip('/')}/json/"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SparkClusterError(f"cannot read the Spark master's status at {url}: {exc}") from exc


def active_apps(status: Mapping, name: str | None = None) -> list[dict]:
    """Applications the master runs now (state RUNNING or WAITING), optionally of one name."""
    return [app for app in status.get("activeapps", [])
            if app.get("state") in ("RUNNING", "WAITING") and (name is None or app.get("name") == name)]


def executor_apps_by_worker(status: Mapping, *, timeout: float = 5.0) -> dict[str, set[str]]:
    """Application ids that ran (or run) executors on each worker of a master's ``status``.

    The master's page lists workers and applications, the workers' own JSON pages
    (``webuiaddress``/json/) their ``executors`` and ``finishedexecutors``.
    """
    apps: dict[str, set[str]] = {}
    for worker in status.get("workers", []):
        page = master_status(worker["webuiaddress"], timeout=timeout)
        apps[worker["id"]] = {executor["appid"] for key in ("executors", "finishedexecutors")
                              for executor in page.get(key, [])}
    return apps


@dataclass
class Cluster:
    """A running standalone cluster: its URLs, processes and logs."""

    host: str
    port: int
    webui_port: int
    state_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.port}"

    @property
    def webui_url(self) -> str:
        return f"http://{self.host}:{self.webui_port}"

    def status(self) -> dict:
        """The master's JSON status page (``master_status``)."""
        return master_status(self.webui_url)

    def executor_apps_by_worker(self) -> dict[str, set[str]]:
        """Worker id -> ids of the applications that had executors on it."""
        return executor_apps_by_worker(self.status())

    def alive_workers(self) -> list[dict]:
        return [worker for worker in self.status().get("workers", []) if worker.get("state") == "ALIVE"]

    def log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"


def spark_home() -> str:
    """The venv's PySpark folder, which is a Spark distribution (found without importing it:
    infra never imports Spark)."""
    import importlib.util

    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise SparkClusterError("PySpark is not installed in this environment")
    return str(spec.submodule_search_locations[0])


def master_command(spark_class: str, host: str, port: int, webui_port: int) -> list[str]:
    return [spark_class, MASTER_CLASS, "--host", host, "--port", str(port), "--webui-port", str(webui_port)]


def worker_command(spark_class: str, master_url: str, *, host: str, webui_port: int, cores: int, memory: str,
                   work_dir: Path) -> list[str]:
    return [spark_class, WORKER_CLASS, "--host", host, "--webui-port", str(webui_port), "--cores", str(cores),
            "--memory", memory, "--work-dir", str(work_dir), master_url]


@contextmanager
def standalone_cluster(
    workers: int,
    cores_per_worker: int,
    memory: str,
    state_dir: Path,
    *,
    host: str = "127.0.0.1",
    env: Mapping[str, str] | None = None,
    start_timeout: float = 120.0,
) -> Iterator[Cluster]:
    """Start a master and ``workers`` workers on free ports of ``host``; stop them on exit.

    ``memory`` is what each worker offers executors (``1g``; an application asking for more
    executor memory than any worker offers waits forever). ``env`` adds to this process's
    environment (``SPARK_DAEMON_JAVA_OPTS`` for ``spark.authenticate``, ``JAVA_HOME``).
    Logs, work and local folders live under ``state_dir``. Yields once the master is ALIVE
    with every worker registered.
    """
    from infra.services import VENV_BIN, java_home

    if workers < 1 or cores_per_worker < 1:
        raise SparkClusterError(f"a cluster needs at least one worker and one core each (got {workers}, "
                                f"{cores_per_worker})")
    state_dir = Path(state_dir)
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    (state_dir / "local").mkdir(parents=True, exist_ok=True)
    cluster = Cluster(host=host, port=free_port(host), webui_port=free_port(host), state_dir=state_dir)
    spark_class = str(VENV_BIN / "spark-class")
    base_env = {
        **os.environ,
        "JAVA_HOME": java_home(),
        # spark-class finds Spark through the `python` on PATH: the venv's, whose PySpark it is.
        "SPARK_HOME": spark_home(),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "SPARK_LOCAL_IP": host,
        "SPARK_LOCAL_DIRS": str(state_dir / "local"),
        "SPARK_LOG_DIR": str(state_dir / "logs"),
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
        "SPARK_NO_DAEMONIZE": "1",
        **(env or {}),
    }
    try:
        _launch(cluster, "master", master_command(spark_class, host, cluster.port, cluster.webui_port), base_env)
        _wait(cluster, 0, start_timeout)
        for index in range(workers):
            name = f"worker-{index + 1}"
            command = worker_command(spark_class, cluster.master_url, host=host, webui_port=free_port(host),
                                     cores=cores_per_worker, memory=memory, work_dir=state_dir / name)
            _launch(cluster, name, command, base_env)
        _wait(cluster, workers, start_timeout)
        yield cluster
    finally:
        stop_cluster(cluster)


def _launch(cluster: Cluster, name: str, command: list[str], env: Mapping[str, str]) -> None:
    log_path = cluster.log_path(name)
    with log_path.open("ab") as log:
        cluster.processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                                   stdin=subprocess.DEVNULL, env=dict(env), start_new_session=True)


def _wait(cluster: Cluster, workers: int, timeout: float) -> None:
    """Until the master is ALIVE with ``workers`` workers ALIVE; fail early when a daemon exits."""
    deadline = time.monotonic() + timeout
    reason = "not checked yet"
    while time.monotonic() < deadline:
        for name, popen in cluster.processes.items():
            if popen.poll() is not None:
                raise SparkClusterError(f"spark {name} exited with status {popen.returncode} while starting; "
                                        f"log {cluster.log_path(name)}:\n{log_tail(cluster.log_path(name))}")
        try:
            status = cluster.status()
            alive = [w for w in status.get("workers", []) if w.get("state") == "ALIVE"]
            if status.get("status") == "ALIVE" and len(alive) >= workers:
                return
            reason = f"master {status.get('status')}, {len(alive)}/{workers} workers alive"
        except SparkClusterError as exc:
            reason = str(exc)
        time.sleep(0.5)
    raise SparkClusterError(f"the standalone cluster did not start within {timeout:.0f} s ({reason}); "
                            f"logs in {cluster.state_dir / 'logs'}")


def stop_cluster(cluster: Cluster, *, timeout: float = 20.0) -> None:
    """Stop the workers, then the master (each daemon's own process group)."""
    for name in sorted(cluster.processes, key=lambda n: n == "master"):
        popen = cluster.processes[name]
        if popen.poll() is None:
            _signal(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal(popen.pid, signal.SIGKILL)
                popen.wait(timeout=10)
        _signal(popen.pid, signal.SIGKILL)  # anything left in its group (executors of a worker)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return


def exec_unless_running(app_name: str, webui_url: str, command: list[str], *, poll_s: float = 10.0,
                        out=None) -> None:
    """Replace this process by ``command`` once the master runs no application ``app_name``.

    The compose ``streaming`` service starts through this guard: when the watchdog has
    resubmitted the job elsewhere (``infra.streaming.resubmit_to_cluster``), a restarted
    container waits instead of starting a second copy, and takes over when that copy ends.
    An unreachable master is waited for too (the job cannot run without it).
    """
    import sys

    out = out or sys.stderr
    said = ""
    while True:
        try:
            running = active_apps(master_status(webui_url), app_name)
            if not running:
                break
            reason = f"{app_name} already runs on the master ({', '.join(app['id'] for app in running)})"
        except SparkClusterError as exc:
            reason = str(exc)
        if reason != said:
            print(f"waiting: {reason}", file=out, flush=True)
            said = reason
        time.sleep(poll_s)
    os.execvp(command[0], command)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m infra.spark_cluster", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    guard = commands.add_parser("exec-unless-running", help="run COMMAND once the master runs no app of NAME")
    guard.add_argument("--app-name", required=True)
    guard.add_argument("--master-webui", required=True, help="the master's web UI, e.g. http://spark-master:8080")
    guard.add_argument("--poll-seconds", type=float, default=10.0)
    guard.add_argument("run", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.run[1:] if args.run[:1] == ["--"] else args.run
    if not command:
        parser.error("give the command to run after --")
    exec_unless_running(args.app_name, args.master_webui, command, poll_s=args.poll_seconds)
    return 1  # not reached: exec replaced this process


if __name__ == "__main__":
    raise SystemExit(main())
