"""Atomic file writes (readers see the old file or the new one, never half of one), an
exclusive lock between processes, and removal of scratch folders."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    write_atomic(path, lambda tmp: tmp.write_bytes(data))


@contextlib.contextmanager
def exclusive_lock(path: Path, *, waiting: str | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing). The kernel drops it when
    the holder exits, even by a crash, so a dead process never leaves it behind. ``waiting``:
    logged once when another process holds the lock."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                log.info("%s (%s)", waiting, path)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def remove_folder(folder: Path, *, what: str = "folder") -> None:
    """Delete a scratch ``folder`` and what it holds; one already gone is fine, one that cannot
    be removed is logged (it only costs disk space), never fatal."""
    folder = Path(folder)
    if not folder.exists():
        return
    try:
        shutil.rmtree(folder)
    except OSError as exc:
        log.warning("could not remove the %s %s: %s", what, folder, exc)
