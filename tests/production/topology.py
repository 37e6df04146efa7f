"""docker-compose.yaml's services as local processes: render, map, start.

The compose file is rendered by the pinned Compose binary (the Makefile's ``COMPOSE``) with
``config --format json``; each service's command and environment are then mapped to this
machine: service host names to 127.0.0.1, each port a service ``expose``s (per replica) to a
free loopback port, container paths to local folders (bind mounts as they are, named
volumes under the run's folder, the image's /opt/fma-platform to this checkout). What is
not compose's own is said where it happens (``STAND_INS``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from fma_platform.settings import PROJECT_ROOT
from infra.process import free_port

COMPOSE_BINARY = PROJECT_ROOT / ".venv" / "lib" / "python3.11" / "site-packages" / "compose" / "docker-compose"
ENV_EXAMPLE = PROJECT_ROOT / "infra" / "compose.env.example"
IMAGE_ROOT = "/opt/fma-platform"  # the Dockerfile's WORKDIR: the project's code
LOOPBACK = "127.0.0.1"
# Replaced here, and why (the test's report lists them):
STAND_INS = {
    "mongo": "SecantusDB (MongoDB wire protocol; users and --auth, no replica set: replicaSet= dropped)",
    "kafka": "Tansu (Kafka protocol; no SASL: PLAINTEXT, no logins or ACLs)",
    "connector": "the Kafka connector jars are not here (Maven unreachable): the Python source, no --jars",
    "postgres": "Debian's PostgreSQL 15 (the image is postgres:17), started as compose's image would",
}


def compose_values(data_dir: Path) -> dict[str, str]:
    """compose.env.example with a fresh strong secret for every placeholder."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if re.match(r"^[A-Z_]+=", line):
            name, value = line.split("=", 1)
            values[name] = f"{name.lower().replace('_', '-')}-{secrets.token_urlsafe(12)}".replace("_", "-") \
                if value == "change-me" else value
    values.update({"HOST_DATA_DIR": str(data_dir), "PUBLIC_HOST": LOOPBACK, "AIRFLOW_WORKERS": "2",
                   "SPARK_WORKERS": "2", "SPARK_APP_CORES": "1", "SPARK_WORKER_CORES": "1",
                   "SPARK_WORKER_MEMORY": "1g"})
    return values


def render(values: dict[str, str], folder: Path) -> dict:
    env_file = folder / "compose.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    result = subprocess.run([str(COMPOSE_BINARY), "-f", str(PROJECT_ROOT / "docker-compose.yaml"), "--env-file",
                             str(env_file), "config", "--format", "json"], capture_output=True, text=True,
                            timeout=60, env={"PATH": os.environ.get("PATH", ""), "HOME": str(folder)})
    if result.returncode != 0:
        raise RuntimeError(f"docker compose config failed: {result.stderr}")
    return json.loads(result.stdout)


@dataclass
class Topology:
    """The rendered stack and where each of its names lands on this machine."""

    config: dict
    root: Path
    ports: dict[tuple[str, int, int], int] = field(default_factory=dict)  # (service, replica, port) -> local
    paths: dict[str, str] = field(default_factory=dict)  # container path -> local path

    @classmethod
    def build(cls, config: dict, root: Path) -> Topology:
        topology = cls(config, root)
        for name, service in config["services"].items():
            replicas = (service.get("deploy") or {}).get("replicas") or 1
            for replica in range(replicas):
                for port in service.get("expose", []):
                    topology.ports[(name, replica, int(port))] = free_port(LOOPBACK)
            for volume in service.get("volumes", []):
                local = volume["source"] if volume["type"] == "bind" else str(root / "volumes" / volume["source"])
                Path(local).mkdir(parents=True, exist_ok=True)
                topology.paths.setdefault(volume["target"], local)
        topology.paths[IMAGE_ROOT] = str(PROJECT_ROOT)
        for name, port in (("mongo", 27017), ("kafka", 9092)):  # stand-ins: compose states no expose
            topology.ports[(name, 0, port)] = free_port(LOOPBACK)
        return topology

    def service(self, name: str) -> dict:
        return self.config["services"][name]

    def port(self, service: str, port: int, replica: int = 0) -> int:
        return self.ports[(service, replica, port)]

    def local(self, text: str, service: str, replica: int = 0) -> str:
        """One value of ``service`` (replica ``replica``) as this machine reaches it."""
        for (name, index, port), local in self.ports.items():
            if index == 0:
                text = text.replace(f"{name}:{port}", f"{LOOPBACK}:{local}")
        for target in sorted(self.paths, key=len, reverse=True):
            text = re.sub(rf"(?<![\w/]){re.escape(target)}(?=/|$|\b)", self.paths[target], text)
        own = {str(port): str(local) for (name, index, port), local in self.ports.items()
               if name == service and index == replica}
        if text in own:
            return own[text]
        if "=" in text and text.rsplit("=", 1)[1] in own:  # --server.port=8501
            key, port = text.rsplit("=", 1)
            return f"{key}={own[port]}"
        return LOOPBACK if text in ("0.0.0.0", service) else text.replace("0.0.0.0", LOOPBACK)

    def command(self, service: str, replica: int = 0) -> list[str]:
        return [self.local(arg, service, replica) for arg in self.service(service)["command"]]

    def environment(self, service: str, replica: int = 0) -> dict[str, str]:
        env = {name: self.connection(self.local(value or "", service, replica)) if name.startswith("AIRFLOW_CONN_")
               else self.local(value or "", service, replica)
               for name, value in (self.service(service).get("environment") or {}).items()}
        return without_stand_in_features(env)

    def connection(self, value: str) -> str:
        """An Airflow connection in JSON with its ``host`` and ``port`` as separate fields
        (``{"host": "mongo", "port": 27017}``) pointed at the service's local port."""
        connection = json.loads(value)
        host, port = connection.get("host"), connection.get("port")
        if host and port is not None and (host, 0, int(port)) in self.ports:
            connection.update(host=LOOPBACK, port=self.ports[(host, 0, int(port))])
        return json.dumps(connection)


def without_stand_in_features(env: dict[str, str]) -> dict[str, str]:
    """What the stand-ins cannot do, taken out of one service's environment (``STAND_INS``)."""
    env = dict(env)
    for name, value in env.items():
        if "mongodb://" in value:
            env[name] = re.sub(r"[?&]replicaSet=rs0", "", value).replace("/fma&", "/fma?").replace("/&", "/?")
        if name.startswith("AIRFLOW_CONN_MONGO"):
            connection = json.loads(value)
            connection.get("extra", {}).pop("replicaSet", None)
            env[name] = json.dumps(connection)
        if name.startswith("AIRFLOW_CONN_KAFKA"):
            connection = json.loads(value)
            connection["extra"] = {k: v for k, v in connection["extra"].items()
                                   if not k.startswith(("security.", "sasl."))}
            env[name] = json.dumps(connection)
    if "FMA_KAFKA_SECURITY_PROTOCOL" in env:
        env["FMA_KAFKA_SECURITY_PROTOCOL"] = "PLAINTEXT"
        env.pop("FMA_KAFKA_SASL_USERNAME", None)
        env.pop("FMA_KAFKA_SASL_PASSWORD", None)
        env.pop("FMA_KAFKA_SASL_MECHANISM", None)
    if env.get("FMA_SPARK_KAFKA_SOURCE") == "native" or "FMA_SPARK_JARS" in env:
        env["FMA_SPARK_KAFKA_SOURCE"] = "python"
        env.pop("FMA_SPARK_JARS", None)
    return env


def without_jars(command: list[str]) -> list[str]:
    """``--jars X`` dropped (``STAND_INS['connector']``)."""
    if "--jars" not in command:
        return command
    index = command.index("--jars")
    return command[:index] + command[index + 2:]


def machine_env(numba_cache: Path, own_cache: Path) -> dict[str, str]:
    """What the image gives every container (Dockerfile ENV), as this machine has it.

    Caches are the run's own (``own_cache``: a container's home is its own, and the warm
    extractor server started there must not be the one this checkout's other runs share),
    except numba's compiled kernels (``numba_cache``), which only save the JIT time.
    """
    from infra.services import VENV_BIN, java_home

    keep = {name: value for name, value in os.environ.items()
            if not name.startswith(("FMA_", "AIRFLOW", "SPARK_", "PYSPARK_"))}
    return {**keep, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "JAVA_HOME": java_home(),
            "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, "PYTHONUNBUFFERED": "1",
            "NUMBA_CACHE_DIR": str(numba_cache), "FMA_CACHE_DIR": str(own_cache), "SPARK_LOCAL_IP": LOOPBACK,
            "PYTHONPATH": str(PROJECT_ROOT)}
