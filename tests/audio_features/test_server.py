"""The warm extraction server: runs through it give the plain command's outputs, one server
is reused, a session dies with its client, the server stops when idle, and a run never
depends on it (no server: the command extracts by itself). Workers forked from a warm
process keep the per-track timeout and crash handling.

Servers run in a short private cache folder (a Unix socket path holds ~100 bytes) on the
per-user numba cache, so their warm-up loads instead of compiling.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from audio_features import extract as X
from audio_features import server as S
from audio_features.fma_schema import audio_path
from fma_platform.settings import Settings
from tests.audio_features.test_cli import write_tracks_csv
from tests.audio_features.test_extract import CrashingPath, HangingPath
from tests.audio_features.test_features import write_clip

GOOD = (2, 3)
BROKEN = {20: "missing_file", 21: "empty_file", 22: "not_audio"}


@pytest.fixture
def cache_dir():
    folder = Path(tempfile.mkdtemp(prefix="afs-", dir="/tmp"))
    yield folder
    pid_file = next(folder.glob(f"{S.SERVER_DIRNAME}/*.pid"), None)
    if pid_file is not None:  # a server this test started: stop it
        _stop(int(pid_file.read_text()))
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def env(cache_dir) -> dict[str, str]:
    numba = os.environ.get("NUMBA_CACHE_DIR") or str(Settings().numba_cache_dir)
    return {**os.environ, "FMA_CACHE_DIR": str(cache_dir), "NUMBA_CACHE_DIR": numba,
            "FMA_EXTRACTOR_SERVER_IDLE_S": "120"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("served")
    audio = root / "audio"
    for seed, track_id in enumerate(GOOD):
        write_clip(audio_path(audio, track_id), "music", seconds=2.0, seed=seed)
    audio_path(audio, 21).write_bytes(b"")
    audio_path(audio, 22).write_text("<html>not found</html>\n" * 50)
    tracks = write_tracks_csv(root / "tracks.csv", dict.fromkeys([*GOOD, *BROKEN], 2.0))
    return audio, tracks


def _extract(folder, out: Path, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess:
    audio, tracks = folder
    return subprocess.run(
        [sys.executable, "-m", "audio_features", "extract", "--audio-dir", str(audio), "--tracks", str(tracks),
         "--out", str(out), *flags], capture_output=True, text=True, timeout=600, env=env)


def _server_files(cache_dir: Path) -> tuple[Path, Path, Path]:
    sock = next((cache_dir / S.SERVER_DIRNAME).glob("*.sock"))
    return sock, S.pid_path(sock), sock.with_suffix(".log")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _stop(pid: int) -> None:
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        _wait_until(lambda: not _alive(pid), 30)


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def test_the_socket_is_keyed_on_the_jit_cache_and_refused_when_too_long(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/a")
    first = S.socket_path(Path("/tmp/c"))
    assert first.parent == Path("/tmp/c") / S.SERVER_DIRNAME and first.suffix == ".sock"
    assert S.socket_path(Path("/tmp/c")) == first
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/b")
    assert S.socket_path(Path("/tmp/c")) != first  # another JIT cache: another server
    assert S.socket_path(Path("/tmp") / ("x" * 120)) is None


@pytest.mark.slow
def test_a_warm_process_forks_workers_that_keep_the_timeout_and_crash_handling(folder, monkeypatch):
    audio, _ = folder
    monkeypatch.setattr(X, "_warm_here", X.process_is_warm())  # restored after the test
    X.warm_worker()
    assert X.process_is_warm()
    jobs = [X.TrackJob(2, audio_path(audio, 2)), X.TrackJob(98, HangingPath(audio / "hang.mp3")),
            X.TrackJob(99, CrashingPath(audio / "crash.mp3")), X.TrackJob(3, audio_path(audio, 3))]
    with X.ExtractorPool(1, limits=X.ExtractionLimits(track_timeout_s=5.0)) as pool:
        assert pool.start_method == "fork"
        by_track = {o.track_id: o for o in pool.run(jobs)}
    assert by_track[98].reason == X.REASON_TIMEOUT and "5 s" in by_track[98].detail
    assert (by_track[99].reason, by_track[99].detail) == (X.REASON_WORKER_CRASH, "worker process exited with code 3")
    assert by_track[2].record is not None and by_track[3].record is not None


@pytest.mark.slow
def test_runs_through_one_warm_server_give_the_plain_outputs(folder, env, cache_dir, tmp_path):
    ids = ["--track-ids", *map(str, [*GOOD, *BROKEN])]
    plain = _extract(folder, tmp_path / "plain", env, "--no-server", *ids)
    assert plain.returncode == 0, plain.stderr
    assert not (cache_dir / S.SERVER_DIRNAME).exists()  # --no-server starts nothing

    first = _extract(folder, tmp_path / "first", env, "--server", *ids)
    assert first.returncode == 0, first.stderr
    sock, pid_file, log = _server_files(cache_dir)
    server = int(pid_file.read_text())
    assert _alive(server) and oct(sock.stat().st_mode & 0o777) == "0o600"
    second = _extract(folder, tmp_path / "second", {**env, "FMA_EXTRACTOR_SERVER": "true"}, *ids)  # the setting
    assert second.returncode == 0, second.stderr
    assert int(pid_file.read_text()) == server  # reused, not restarted
    assert log.read_text().count(" session ") == 2  # both runs were served by it
    # A session runs extractions only: another command is refused before it starts, and the
    # client is told so (None: it would run the command itself).
    assert S.run_through_server(["serve", "--idle-timeout", "1"], sock=sock, idle_s=60, start_timeout_s=60) is None
    assert int(pid_file.read_text()) == server and _alive(server)

    for run in (first, second):  # the client prints what the session printed
        assert "2 tracks extracted, 3 failed" in run.stdout and "track/s" in run.stderr
    expected = pd.read_csv(tmp_path / "plain" / "features.csv", index_col=0, header=[0, 1, 2])
    for out in ("first", "second"):
        features = pd.read_csv(tmp_path / out / "features.csv", index_col=0, header=[0, 1, 2])
        pd.testing.assert_frame_equal(features, expected)
        failures = pd.read_csv(tmp_path / out / "failures.csv")
        assert dict(zip(failures.track_id, failures.reason)) == BROKEN

    os.kill(server, signal.SIGTERM)  # stops cleanly: socket and pid file removed
    assert _wait_until(lambda: not _alive(server), 30)
    assert not sock.exists() and not pid_file.exists()


@pytest.mark.slow
def test_a_killed_client_takes_its_session_and_workers_down(folder, env, cache_dir, tmp_path):
    audio, _ = folder
    many = {track_id: 2.0 for track_id in range(100, 160)}
    for track_id in many:
        audio_path(audio, track_id).parent.mkdir(parents=True, exist_ok=True)
        if not audio_path(audio, track_id).exists():
            os.link(audio_path(audio, GOOD[track_id % 2]), audio_path(audio, track_id))
    tracks = write_tracks_csv(tmp_path / "many.csv", many)
    client = subprocess.Popen(
        [sys.executable, "-m", "audio_features", "extract", "--audio-dir", str(audio), "--tracks", str(tracks),
         "--out", str(tmp_path / "out"), "--server", "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    progress = ""
    # The session is extracting: the bar shows a first finished track (tqdm may skip "1/60"
    # when two workers finish between its refreshes: seen on a quiet machine).
    while not re.search(r"\b[1-9]\d?/60", progress) and client.poll() is None:
        progress += client.stderr.read(1)
    assert client.poll() is None, f"the run ended before it could be killed: {progress[-300:]}"
    _, _, log = _server_files(cache_dir)
    session = int(log.read_text().split(" session ")[-1].split(":")[0])
    assert len(_group_members(session)) == 3  # the session and its two workers
    client.kill()
    client.wait()
    assert _wait_until(lambda: not _group_members(session), 30)
    assert not (tmp_path / "out" / "features.csv").exists()  # the run stopped, unfinished


@pytest.mark.slow
def test_the_server_stops_after_its_idle_timeout(env, cache_dir):
    sock = cache_dir / S.SERVER_DIRNAME / "idle.sock"
    server = subprocess.Popen([sys.executable, "-m", "audio_features", "serve", "--socket", str(sock),
                               "--idle-timeout", "1"], env=env, stderr=subprocess.PIPE, text=True)
    assert _wait_until(lambda: sock.exists() or server.poll() is not None, 600)
    assert server.wait(timeout=60) == 0, server.stderr.read()
    assert not sock.exists() and not S.pid_path(sock).exists()


@pytest.mark.slow
def test_without_a_usable_server_the_command_extracts_by_itself(folder, env, cache_dir, tmp_path):
    (cache_dir / S.SERVER_DIRNAME).write_text("a file where the server's folder should be")
    run = _extract(folder, tmp_path / "out", env, "--server", "--track-ids", *map(str, GOOD))
    assert run.returncode == 0, run.stderr
    assert "extracting without it" in run.stderr
    assert "2 tracks extracted, 0 failed" in run.stdout
