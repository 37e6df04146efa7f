"""Start, find and stop the long-running processes of the embedded stack.

Each started process is recorded in ``RUN_DIR/<name>.json`` (pid, command, port). A
record is trusted only while its pid is alive *and* still runs the recorded command, so a
recycled pid is never mistaken for ours, and ``stop`` only ever signals processes this
project started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fma_platform.errors import PlatformError


class StackError(PlatformError, RuntimeError):
    """A service of the embedded stack could not be started, checked or stopped."""


class PortInUseError(StackError):
    """The port a service needs is taken by a process this project did not start."""


class ServiceFailedError(StackError):
    """A service exited or did not become healthy in time."""


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service and how to know that it works.

    ``health`` raises (any exception) while the service is not ready; its message is shown
    when the start times out.
    """

    name: str
    command: list[str]
    log_path: Path
    run_dir: Path
    health: Callable[[], None]
    port: int | None = None
    bind_host: str = "127.0.0.1"  # the interface ``port`` is opened on (checked free before start)
    url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    start_timeout: float = 60.0

    @property
    def record_path(self) -> Path:
        return self.run_dir / f"{self.name}.json"


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    start_ticks: int | None
    command: list[str]
    port: int | None
    started_at: float

    @classmethod
    def read(cls, path: Path) -> ProcessRecord | None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StackError(f"unreadable process record {path}: {exc}") from exc
        return cls(
            int(data["pid"]), data.get("start_ticks"), list(data["command"]), data.get("port"),
            float(data["started_at"]),
        )

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__))
        tmp.replace(path)


def process_start_ticks(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None when it is gone.

    Together with the pid this identifies one process for its whole life: a recycled pid
    has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if fields[0] == "Z":  # zombie: exited, not yet reaped
        return None
    return int(fields[19])


def pid_runs(record: ProcessRecord) -> bool:
    """True when the recorded process is still alive (and is the same process)."""
    return process_start_ticks(record.pid) == record.start_ticks


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (for tests and ad-hoc stacks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def running_record(spec: ServiceSpec) -> ProcessRecord | None:
    """The record of this service's process if it is still ours and alive."""
    record = ProcessRecord.read(spec.record_path)
    if record is None:
        return None
    if pid_runs(record):
        return record
    spec.record_path.unlink(missing_ok=True)  # stale: the process is gone
    return None


def is_healthy(spec: ServiceSpec) -> tuple[bool, str]:
    try:
        spec.health()
    except Exception as exc:  # health checks report any failure as "not ready"
        return False, f"{type(exc).__name__}: {exc}"
    return True, "ok"


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text[-lines:])


def wait_healthy(spec: ServiceSpec, *, popen: subprocess.Popen | None = None) -> None:
    """Poll the health check until it passes, the process exits, or the timeout."""
    deadline = time.monotonic() + spec.start_timeout
    reason = "not checked yet"
    while time.monotonic() < deadline:
        if popen is not None and popen.poll() is not None:
            raise ServiceFailedError(
                f"{spec.name} exited with status {popen.returncode} while starting; "
                f"log: {spec.log_path}\n{log_tail(spec.log_path)}"
            )
        healthy, reason = is_healthy(spec)
        if healthy:
            return
        time.sleep(0.5)
    raise ServiceFailedError(
        f"{spec.name} did not become healthy within {spec.start_timeout:.0f}s ({reason}); "
        f"log: {spec.log_path}\n{log_tail(spec.log_path)}"
    )


def start(spec: ServiceSpec) -> tuple[ProcessRecord, bool]:
    """Start ``spec`` unless our copy already runs; return its record and whether it is new.

    Raises ``PortInUseError`` when another program holds the port, ``ServiceFailedError``
    when the process dies or stays unhealthy (the process is then stopped again).
    """
    record = running_record(spec)
    if record is not None:
        wait_healthy(spec)
        return record, False
    if spec.port is not None and not port_is_free(spec.bind_host, spec.port):
        raise PortInUseError(
            f"{spec.name}: port {spec.port} on {spec.bind_host} is already in use by another program; "
            f"stop it or choose another port (FMA_{spec.name.upper().split('-')[0]}_PORT in .env)"
        )
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    with spec.log_path.open("ab") as log:
        log.write(f"\n--- starting {spec.name} at {time.ctime()}: {' '.join(spec.command)}\n".encode())
        popen = subprocess.Popen(
            spec.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=spec.cwd,
            env={**os.environ, **spec.env},
            start_new_session=True,  # own process group: stop() signals the whole tree
        )
    record = ProcessRecord(
        popen.pid, process_start_ticks(popen.pid), spec.command, spec.port, time.time()
    )
    record.write(spec.record_path)
    try:
        wait_healthy(spec, popen=popen)
    except ServiceFailedError:
        stop(spec)
        raise
    return record, True


def stop(spec: ServiceSpec, *, timeout: float = 20.0) -> bool:
    """Stop this service's process group if we started it; True when something was stopped."""
    record = running_record(spec)
    if record is None:
        return False
    _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_runs(record):
        _reap(record.pid)
        time.sleep(0.2)
    if pid_runs(record):
        _signal_group(record.pid, signal.SIGKILL)
        time.sleep(0.5)
        _reap(record.pid)
    _signal_group(record.pid, signal.SIGKILL)  # leftovers of the group (workers, children)
    spec.record_path.unlink(missing_ok=True)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # the leader's pid is its group id (start_new_session)
    except ProcessLookupError:
        return
    except PermissionError as exc:
        raise StackError(f"not allowed to signal process group {pid}: {exc}") from exc


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (same Python process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return
