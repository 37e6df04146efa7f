"""The warm extraction server: one long-lived process that has paid the extractor's start-up.

A run of ``python -m audio_features extract`` costs ~4-6 s before its first track on this
kind of machine, whatever its size: importing scipy, numba and librosa and loading numba's
JIT cache in each worker, pandas in the parent. The ETL runs the command once per chunk,
so that fixed cost is paid by every chunk. The server pays it once per machine:

- ``python -m audio_features serve`` warms up (``extract.warm_worker``, then pandas and
  Parquet), listens on a Unix socket (``socket_path``: under the per-user cache folder,
  named after this interpreter, this code and the JIT cache folder, so a changed checkout
  never runs on an older server), and exits after ``idle_s`` seconds without a run.
- ``extract`` with the server on (``--server``, or the ``extractor_server`` setting) is a
  thin client: it connects (starting the server on first use, under a lock, so two
  clients start one), passes its stdout and stderr (``SCM_RIGHTS``), its arguments,
  folder and environment, and exits with the run's exit code.
- For each client the server forks a *session*: a copy of the warm process that runs the
  ordinary command (``cli.main``), whose ``ExtractorPool`` forks its workers from that warm
  copy (``extract.process_is_warm``) instead of spawning cold ones. Per-track timeout,
  crash replacement and ``failures.csv`` are the plain command's own code. A session is its
  own process group, and is killed with its workers when its client goes away (killed by
  the ETL's chunk timeout, Ctrl-C): the client's connection is the session's lifeline.

The JIT cache is written only by the server's warm-up, under the same lock as every
worker's (``extract.numba_cache_lock``); sessions and their workers load nothing new.
Only processes of the server's own user may connect (the socket is 0600 in a 0700 folder
and the peer's uid is checked). If the server cannot start or dies before a run begins,
the client runs the command itself (the plain path): the server only ever saves time.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

SERVER_DIRNAME = "extractor-server"
_HELLO = b"fma-extract/1"  # sent with the client's stdout and stderr descriptors
_MAX_REQUEST_BYTES = 64 * 2**20  # argv of a 100,000-track chunk is ~1 MB
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes
_POLL_S = 0.05
# Exit code when the run broke inside the server (not the command's own 0/2).
EXIT_SESSION_LOST = 70


def socket_path(cache_dir: Path) -> Path | None:
    """This checkout's server socket under ``cache_dir``; None when the path is too long to bind.

    The name hashes the interpreter, the folders of this package and of the shared core it
    runs on (``fma_platform``), their sources' sizes and modification times, and
    ``NUMBA_CACHE_DIR``: a server only ever serves the code and JIT cache it warmed up with.
    """
    package = Path(__file__).resolve().parent
    key = hashlib.sha256()
    for part in (sys.executable, str(package), os.environ.get("NUMBA_CACHE_DIR", "")):
        key.update(part.encode() + b"\0")
    for source in sorted([*package.glob("*.py"), *(package.parent / "fma_platform").glob("*.py")]):
        stat = source.stat()
        key.update(f"{source}:{stat.st_size}:{stat.st_mtime_ns}\0".encode())
    path = Path(cache_dir) / SERVER_DIRNAME / f"{key.hexdigest()[:16]}.sock"
    return path if len(os.fsencode(path)) <= _MAX_SOCKET_PATH else None


def pid_path(sock: Path) -> Path:
    """Where a running server writes its process id (beside its socket)."""
    return sock.with_suffix(".pid")


def stop_server(cache_dir: Path) -> bool:
    """Stop this checkout's server under ``cache_dir`` (``make down``, the end of a test run).

    Removes its socket: the server sees that within a second and exits (runs in progress
    finish). Whether a server was listening.
    """
    sock = socket_path(cache_dir)
    if sock is None or not sock.exists():
        return False
    sock.unlink(missing_ok=True)
    pid_path(sock).unlink(missing_ok=True)
    return True


# -- client -------------------------------------------------------------------------


def run_through_server(argv: Sequence[str], *, sock: Path, idle_s: float,
                       start_timeout_s: float) -> int | None:
    """Run ``python -m audio_features <argv>`` in the warm server; its exit code.

    None when no server could be reached or started, or it lost the run before starting
    it: the caller then runs the command itself (nothing was done yet).
    """
    connection = _connect(sock)
    if connection is None:
        try:
            connection = _start_and_connect(sock, idle_s=idle_s, timeout_s=start_timeout_s)
        except OSError as exc:  # its folder, lock or log cannot be made: run without it
            print(f"warning: cannot start the extraction server at {sock}: {exc}; extracting without it",
                  file=sys.stderr)
            return None
    if connection is None:
        return None
    with connection:
        sys.stdout.flush()
        sys.stderr.flush()
        request = {"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)}
        try:
            socket.send_fds(connection, [_HELLO], [sys.stdout.fileno(), sys.stderr.fileno()])
            connection.sendall(json.dumps(request).encode() + b"\n")
            replies = connection.makefile("rb")
            started = _reply(replies)
        except OSError:
            return None
        if started is None or "started" not in started:
            return None
        try:
            finished = _reply(replies)
        except OSError:
            finished = None
    if finished is None or not isinstance(finished.get("exit"), int):
        print(f"error: the extraction server lost this run (session {started['started']}); "
              f"see {sock.with_suffix('.log')}", file=sys.stderr)
        return EXIT_SESSION_LOST
    return finished["exit"]


def _reply(replies) -> dict | None:
    line = replies.readline(4096)
    if not line.endswith(b"\n"):
        return None
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _connect(sock: Path) -> socket.socket | None:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(os.fspath(sock))
    except OSError:  # no server (no file, or a stale socket left by a killed one)
        connection.close()
        return None
    return connection


def _start_and_connect(sock: Path, *, idle_s: float, timeout_s: float) -> socket.socket | None:
    """Start a server (one at a time: the first client starts it, the others wait) and connect."""
    from fma_platform.files import exclusive_lock

    sock.parent.mkdir(parents=True, exist_ok=True)
    sock.parent.chmod(0o700)
    with exclusive_lock(sock.with_suffix(".lock")):
        connection = _connect(sock)  # another client started it while this one waited
        if connection is not None:
            return connection
        with open(sock.with_suffix(".log"), "ab") as log:
            # A session of its own and no handle on the caller's output: the server outlives
            # this run, and the ETL's kill of this command's process group must not reach it.
            server = subprocess.Popen(
                [sys.executable, "-m", "audio_features", "serve", "--socket", os.fspath(sock),
                 "--idle-timeout", repr(idle_s)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and server.poll() is None:
            connection = _connect(sock)
            if connection is not None:
                return connection
            time.sleep(_POLL_S)
        if server.poll() is None:  # hung in its warm-up: not a server anyone can use
            server.kill()
        server.wait()
        print(f"warning: the extraction server did not start (exit {server.returncode}, see "
              f"{sock.with_suffix('.log')}); extracting without it", file=sys.stderr)
        return None


# -- server -------------------------------------------------------------------------


def serve(sock: Path, *, idle_s: float) -> None:
    """Warm up, then serve runs on ``sock`` until ``idle_s`` seconds pass with none.

    Also stops when its socket file is removed or taken over by another server, and on
    SIGTERM; it removes its socket and pid file on the way out.
    """
    from audio_features.extract import default_numba_cache_dir, warm_worker

    default_numba_cache_dir()
    warm_worker()
    _import_what_a_run_uses()
    signal.signal(signal.SIGTERM, _exit_on_signal)
    sock.parent.mkdir(parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = sock.with_name(f".{sock.name}.{os.getpid()}")
    staging.unlink(missing_ok=True)
    listener.bind(os.fspath(staging))
    staging.chmod(0o600)
    listener.listen(64)
    os.replace(staging, sock)  # a client connects only to a warm server
    inode = sock.stat().st_ino
    pid_path(sock).write_text(f"{os.getpid()}\n")
    listener.settimeout(1.0)
    sessions: set[int] = set()
    last_active = time.monotonic()
    try:
        while _still_ours(sock, inode):
            if _reap(sessions):
                last_active = time.monotonic()
            if not sessions and time.monotonic() - last_active > idle_s:
                break
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            if _peer_uid(connection) != os.getuid():
                connection.close()
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                _session(connection)  # never returns
            connection.close()
            sessions.add(pid)
            last_active = time.monotonic()
    finally:
        listener.close()
        if _still_ours(sock, inode):
            sock.unlink(missing_ok=True)
            pid_path(sock).unlink(missing_ok=True)


def _import_what_a_run_uses() -> None:
    """What a session needs besides librosa (the warm-up loaded that): loaded once, here."""
    for module in ("pandas", "pyarrow.parquet", "tqdm", "audio_features.cli"):
        importlib.import_module(module)


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _still_ours(sock: Path, inode: int) -> bool:
    try:
        return sock.stat().st_ino == inode
    except OSError:
        return False


def _reap(sessions: set[int]) -> bool:
    """Collect finished sessions; True if any finished."""
    reaped = False
    while sessions:
        pid, _ = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            break
        sessions.discard(pid)
        reaped = True
    return reaped


def _peer_uid(connection: socket.socket) -> int:
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", credentials)[1]


def _session(connection: socket.socket) -> None:
    """One run, in a fork of the warm server; exits the process when done."""
    code = EXIT_SESSION_LOST
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.setpgid(0, 0)  # its workers join this group, and die with it
        message, fds, _, _ = socket.recv_fds(connection, len(_HELLO), 2)
        if message != _HELLO or len(fds) != 2:
            os._exit(code)
        request = json.loads(connection.makefile("rb").readline(_MAX_REQUEST_BYTES))
        if request["argv"][:1] != ["extract"]:  # a session runs extractions, nothing else
            os._exit(code)
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} session {os.getpid()}: {' '.join(request['argv'][:1])} "
              f"({len(request['argv'])} arguments) in {request['cwd']}", file=sys.stderr, flush=True)
        for target, fd in zip((1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.register_at_fork(after_in_child=connection.close)  # workers must not hold the lifeline
        finished = threading.Event()
        threading.Thread(target=_die_with_client, args=(connection, finished), daemon=True).start()
        connection.sendall(json.dumps({"started": os.getpid()}).encode() + b"\n")
        code = _run_command(request["argv"])
        sys.stdout.flush()
        sys.stderr.flush()
        finished.set()
        connection.sendall(json.dumps({"exit": code}).encode() + b"\n")
    except BaseException:  # noqa: BLE001 - a session must never return into the server's loop
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
    finally:
        os._exit(code & 0xFF)


def _run_command(argv: list[str]) -> int:
    from audio_features.cli import main

    try:
        return main([*argv, "--no-server"])
    except SystemExit as exc:  # argparse's own exits
        return exc.code if isinstance(exc.code, int) else 2


def _die_with_client(connection: socket.socket, finished: threading.Event) -> None:
    """End this session's process group (it and its workers) once the client is gone."""
    with contextlib.suppress(OSError):
        while connection.recv(1):
            pass
    if not finished.is_set():
        os.killpg(os.getpgrp(), signal.SIGKILL)
