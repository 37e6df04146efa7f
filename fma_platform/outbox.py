"""The producer's outbox on disk: events waiting for Kafka survive the process that accepted them.

An ``Outbox`` is a small SQLite file (``<folder>/<name>.sqlite``): events are appended at
the tail with a growing ``seq``, read from the head, and removed once the broker took
them. It counts the events it had to drop (``dropped``, kept in the file too).

Durability: every ``append`` is committed before it returns, in SQLite's write-ahead log
(``journal_mode=WAL``, ``synchronous=NORMAL``): a process that is killed (SIGKILL, a
crash, a container restart) loses nothing it accepted. The log is fsynced at SQLite's
checkpoints, not at every event, so an OS crash or a power cut may lose the last events
accepted before it (an fsync per event would cost a disk flush per listening event).

One process at a time writes a file: ``Outbox.open`` takes an exclusive lock on
``<file>.lock`` and, when another live producer holds it, uses the next free slot
(``<name>.1.sqlite``, ...). It then adopts every slot of the same name that nobody holds
(events left by a producer that died), so a restarted producer replays what its
predecessors left, whichever slot they used.
"""

from __future__ import annotations

import fcntl
import logging
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import IO

from fma_platform.errors import PlatformError

log = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, key BLOB NOT NULL, "
    "value BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)
_DROPPED = "dropped"


class OutboxError(PlatformError, OSError):
    """The outbox file cannot be opened or written (disk full, permissions, a damaged file)."""


@dataclass(frozen=True)
class OutboxRecord:
    seq: int
    key: bytes
    value: bytes


def outbox_name(client_id: str, topic: str) -> str:
    """A file-name-safe outbox name (no dots: they separate slot numbers) for one producer
    identity and topic."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{client_id}--{topic}")


class Outbox:
    """Events waiting for Kafka, oldest first, in one SQLite file this process holds.

    Not thread-safe by itself: the producer calls it under its own lock.
    """

    def __init__(self, path: Path, lock: IO) -> None:
        self.path = path
        self._lock = lock
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._count = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            self._dropped = self._counter(_DROPPED)
        except sqlite3.Error as exc:
            _unlock(lock)
            raise OutboxError(f"cannot open the event outbox {path}: {exc}") from exc
        self.recovered = self._count  # events a previous process left (adopted ones are added)

    @classmethod
    def open(cls, folder: Path, name: str) -> Outbox:
        """The first slot of ``name`` in ``folder`` no live process holds, with the events of
        every other unheld slot of that name moved into it."""
        if not name or "." in name or "/" in name:
            raise ValueError(f"an outbox name has no dots or slashes (see outbox_name), got {name!r}")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutboxError(f"cannot create the event outbox folder {folder}: {exc}") from exc
        for slot in count():
            path = folder / (f"{name}.sqlite" if slot == 0 else f"{name}.{slot}.sqlite")
            lock = _try_lock(path)
            if lock is not None:
                break
            log.info("event outbox %s is held by another producer; trying the next slot", path)
        outbox = cls(path, lock)
        for other in sorted(folder.glob(f"{name}.*.sqlite")) + [folder / f"{name}.sqlite"]:
            if other != path and other.exists():
                outbox._adopt(other)
        return outbox

    def __len__(self) -> int:
        return self._count

    @property
    def dropped(self) -> int:
        """Events this outbox file ever had to drop (across processes)."""
        return self._dropped

    def append(self, key: bytes, value: bytes) -> None:
        """Add one event at the tail, committed before returning."""
        self._write("INSERT INTO events (key, value) VALUES (?, ?)", (key, value))
        self._count += 1

    def head(self, limit: int) -> list[OutboxRecord]:
        """The ``limit`` oldest events."""
        rows = self._read("SELECT seq, key, value FROM events ORDER BY seq LIMIT ?", (limit,))
        return [OutboxRecord(seq, bytes(key), bytes(value)) for seq, key, value in rows]

    def remove(self, seqs: Sequence[int]) -> None:
        """Forget delivered events."""
        if seqs:
            removed = self._write(f"DELETE FROM events WHERE seq IN ({','.join('?' * len(seqs))})", tuple(seqs))
            self._count -= removed

    def drop_oldest(self, number: int, *, after_seq: int) -> int:
        """Drop the ``number`` oldest events after ``after_seq`` (those before are in flight) and
        count them in ``dropped``, in one transaction; how many were dropped."""
        if number <= 0:
            return 0
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                dropped = self._db.execute(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT ?)",
                    (after_seq, number)).rowcount
                self._db.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) "
                                 "DO UPDATE SET value = value + excluded.value", (_DROPPED, dropped))
        except sqlite3.Error as exc:
            raise OutboxError(f"dropping events from the outbox {self.path} failed: {exc}") from exc
        self._count -= dropped
        self._dropped += dropped
        return dropped

    def close(self) -> None:
        """Close the file and release it; a non-first slot left empty is deleted."""
        db, self._db = self._db, None
        if db is None:
            return
        empty = self._count == 0 and self._dropped == 0
        db.close()
        if empty and _slot_of(self.path) > 0:
            _delete_database(self.path)
        _unlock(self._lock)

    # --- internals ---------------------------------------------------------------------------
    def _adopt(self, other: Path) -> None:
        """Move the events and dropped count of the unheld outbox ``other`` into this one."""
        lock = _try_lock(other)
        if lock is None:
            return  # a live producer holds it
        moved = dropped = 0
        try:
            self._db.execute("ATTACH DATABASE ? AS other", (str(other),))
            try:
                tables = {row[0] for row in self._db.execute("SELECT name FROM other.sqlite_master")}
                with self._db:  # emptied in the same transaction (atomic per file in WAL mode)
                    self._db.execute("BEGIN IMMEDIATE")
                    if "events" in tables:
                        moved = self._db.execute("INSERT INTO events (key, value) SELECT key, value "
                                                 "FROM other.events ORDER BY seq").rowcount
                        self._db.execute("DELETE FROM other.events")
                    if "counters" in tables:
                        dropped = (self._db.execute("SELECT value FROM other.counters WHERE name = ?",
                                                    (_DROPPED,)).fetchone() or (0,))[0]
                        self._db.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) "
                                         "DO UPDATE SET value = value + excluded.value", (_DROPPED, dropped))
                        self._db.execute("DELETE FROM other.counters")
            finally:
                self._db.execute("DETACH DATABASE other")
        except sqlite3.Error as exc:
            _unlock(lock)
            raise OutboxError(f"cannot take over the events left in {other}: {exc}") from exc
        _delete_database(other)
        _unlock(lock)
        self._count += moved
        self._dropped += dropped
        self.recovered += moved
        if moved or dropped:
            log.warning("event outbox %s took over %d events (%d dropped before) left in %s", self.path, moved,
                        dropped, other)

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def _write(self, sql: str, parameters: tuple) -> int:
        try:
            return self._db.execute(sql, parameters).rowcount
        except sqlite3.Error as exc:
            raise OutboxError(f"writing the event outbox {self.path} failed: {exc}") from exc

    def _read(self, sql: str, parameters: tuple) -> list[tuple]:
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"reading the event outbox {self.path} failed: {exc}") from exc


def _slot_of(path: Path) -> int:
    """0 for ``<name>.sqlite``, n for ``<name>.<n>.sqlite``."""
    stem = path.name.removesuffix(".sqlite")
    suffix = stem.rpartition(".")[2]
    return int(suffix) if suffix.isdigit() and "." in stem else 0


def _try_lock(path: Path) -> IO | None:
    """An exclusive lock on ``<path>.lock``, or None when another open file holds it."""
    try:
        handle = open(f"{path}.lock", "a+")  # noqa: SIM115  (held until close)
    except OSError as exc:
        raise OutboxError(f"cannot open the event outbox lock {path}.lock: {exc}") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _unlock(handle: IO) -> None:
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


def _delete_database(path: Path) -> None:
    """Delete an SQLite file and its write-ahead log (the caller holds its lock)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
