"""The stack scripts: idempotent up, exact down, clear errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from infra import process
from infra.process import ServiceFailedError, ServiceSpec, free_port
from infra.services import JavaMissingError, check_java
from fma_platform.settings import PROJECT_ROOT


def stack_env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "FMA_STATE_DIR": str(state_dir),
        "FMA_MONGO_PORT": str(free_port()),
        "FMA_KAFKA_PORT": str(free_port()),
        "FMA_AIRFLOW_PORT": str(free_port()),
        "FMA_STREAMLIT_PORT": str(free_port()),
        "FMA_DATA_DOCS_PORT": str(free_port()),
    }
    env.update(extra)
    return env


def run_stack(env: dict[str, str], *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infra.stack", *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def recorded_pids(state_dir: Path) -> dict[str, int]:
    records = {}
    for path in sorted((state_dir / "run").glob("*.json")):
        record = process.ProcessRecord.read(path)
        if record and process.pid_runs(record):
            records[path.stem] = record.pid
    return records


def processes_mentioning(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker`` (a unique state path/port)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            cmdline = ""  # the process ended (or hid) while we looked: it mentions nothing
        if marker in cmdline:
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
@pytest.mark.stack
def test_up_twice_keeps_one_copy_and_down_leaves_none(tmp_path):
    env = stack_env(tmp_path / "state")
    services = {"mongo", "kafka", "streaming-recommendations", "airflow-api-server", "airflow-scheduler",
                "airflow-dag-processor", "airflow-triggerer", "streamlit", "data_docs"}
    try:
        first = run_stack(env, "up")
        assert first.returncode == 0, first.stdout + first.stderr
        pids = recorded_pids(tmp_path / "state")
        assert set(pids) == services
        assert "login admin / " in first.stdout

        second = run_stack(env, "up")
        assert second.returncode == 0, second.stdout + second.stderr
        assert second.stdout.count("already running") == len(services)
        assert recorded_pids(tmp_path / "state") == pids
        assert len(processes_mentioning(str(tmp_path / "state" / "mongo"))) == 1
        assert len(processes_mentioning(f"tcp://127.0.0.1:{env['FMA_KAFKA_PORT']}")) == 1

        status = run_stack(env, "status")
        assert status.stdout.count("healthy") >= len(services)
    finally:
        down = run_stack(env, "down")
    assert down.returncode == 0, down.stderr
    assert recorded_pids(tmp_path / "state") == {}
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert processes_mentioning(str(tmp_path / "state")) == []


def test_port_taken_by_another_program_is_reported(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run_stack(stack_env(tmp_path, FMA_MONGO_PORT=str(port)), "up", "--only", "mongo", timeout=60)
    assert result.returncode == 1
    assert f"mongo: port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_java_is_a_clear_error(tmp_path):
    with pytest.raises(JavaMissingError, match="no java on PATH"):
        check_java({"PATH": str(tmp_path)})
    with pytest.raises(JavaMissingError, match="has no bin/java"):
        check_java({"JAVA_HOME": str(tmp_path)})
    env = stack_env(tmp_path, PATH=str(tmp_path))
    env.pop("JAVA_HOME", None)
    result = run_stack(env, "up", "--only", "mongo", timeout=60)
    assert result.returncode == 1
    assert "Spark needs Java 17+" in result.stderr


def test_a_service_that_dies_names_itself_and_its_log(tmp_path):
    spec = ServiceSpec(
        name="broken",
        command=[sys.executable, "-c", "import sys; print('cannot open storage'); sys.exit(3)"],
        log_path=tmp_path / "logs" / "broken.log",
        run_dir=tmp_path / "run",
        health=lambda: (_ for _ in ()).throw(ConnectionRefusedError("not listening")),
        start_timeout=20,
    )
    with pytest.raises(ServiceFailedError) as failure:
        process.start(spec)
    message = str(failure.value)
    assert "broken exited with status 3" in message
    assert str(spec.log_path) in message and "cannot open storage" in message
    assert not spec.record_path.exists()


def test_a_fresh_embedded_broker_resets_the_streaming_checkpoint(settings, tmp_path):
    """Tansu forgets everything on restart; old offsets would make the streaming job fail."""
    from infra import stack

    own = settings.model_copy(update={"state_dir": tmp_path, "kafka_port": free_port()})
    marker = own.streaming_checkpoint_dir / "offsets" / "0"
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    try:
        stack.up(own, ["kafka"])
        assert not own.streaming_checkpoint_dir.exists()
        own.streaming_checkpoint_dir.mkdir(parents=True)
        stack.up(own, ["kafka"])  # reused broker: its topics and offsets are still there
        assert own.streaming_checkpoint_dir.exists()
    finally:
        stack.down(own, ["kafka"])
