"""Download and unpack FMA's archives (``fma_metadata.zip``, ``fma_small.zip``, ...).

Downloads stream into ``NAME.part`` and resume with HTTP Range requests after an
interruption; transient failures are retried with exponential backoff. A finished archive
is SHA-1 checked when a checksum is given: a mismatch moves the file aside
(``NAME.sha1-mismatch``) and raises. Extraction streams members to disk (zip64 included),
refuses member names that would escape the target folder, and leaves a marker so that a
re-run skips work already done. The base URL is always a parameter (from the settings).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import zipfile
import zlib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath

import requests
from tqdm import tqdm

from audio_features.errors import AudioFeaturesError

log = logging.getLogger(__name__)

# SHA-1 checksums FMA publishes for its archives (README of github.com/mdeff/fma).
FMA_ARCHIVE_SHA1: dict[str, str] = {
    "fma_metadata.zip": "f0df49ffe5f2a6008d7dc83c6915b31835dfe733",
    "fma_small.zip": "ade154f733639d52e35e32f5593efe5be76c6d70",
    "fma_medium.zip": "c67b69ea232021025fca9231fc1c7c1a063ab50b",
    "fma_large.zip": "497109f4dd721066b5ce5e5f250ec604dc78939e",
}
ARCHIVE_NAMES: tuple[str, ...] = tuple(FMA_ARCHIVE_SHA1)

PART_SUFFIX = ".part"
VERIFIED_SUFFIX = ".verified"  # sidecar: {"sha1", "size"} of an archive already checked
QUARANTINE_SUFFIX = ".sha1-mismatch"
_EXTRACTING_SUFFIX = ".extracting"
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class _TransientHTTPError(Exception):
    """An HTTP status worth retrying (408, 429, 5xx); only ever seen inside this module."""


_TRANSIENT_ERRORS = (
    _TransientHTTPError,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
_SHA1 = re.compile(r"[0-9a-f]{40}")
_CONTENT_RANGE = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)")


class AcquireError(AudioFeaturesError):
    """An FMA archive could not be downloaded, verified or extracted."""


class DownloadError(AcquireError):
    """A download failed: an unexpected HTTP answer, or transient errors past the retries."""


class ArchiveNotFoundError(DownloadError):
    """The server has no such archive (HTTP 404)."""


class ChecksumMismatchError(AcquireError):
    """A downloaded archive's SHA-1 differs from the expected one; the file was moved aside."""

    def __init__(self, archive: str, *, expected: str, actual: str, quarantined: Path) -> None:
        super().__init__(
            f"{archive}: SHA-1 {actual} does not match the expected {expected}; "
            f"the file was moved to {quarantined}"
        )
        self.expected = expected
        self.actual = actual
        self.quarantined = quarantined


class ExtractionError(AcquireError):
    """An archive could not be extracted."""


class UnsafeArchiveError(ExtractionError):
    """A member name would be written outside the target folder (path traversal)."""


class CorruptArchiveError(ExtractionError):
    """The file is not a readable zip archive, or a member fails its CRC check."""


@dataclass(frozen=True)
class DownloadResult:
    """Where the archive is, and whether this call transferred anything."""

    path: Path
    downloaded: bool
    sha1: str | None  # the verified checksum, None when none was given


@dataclass(frozen=True)
class ExtractionResult:
    """Where an archive was unpacked, and whether this call wrote anything."""

    dest_dir: Path
    extracted: bool
    members: int


@dataclass(frozen=True)
class AcquiredArchive:
    """The outcome of :func:`acquire_archive`."""

    download: DownloadResult
    extraction: ExtractionResult


class _Attempt(Enum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    RESTART = "restart"


def archive_url(base_url: str, name: str) -> str:
    """The URL of one FMA archive under ``base_url`` (from the settings)."""
    if name not in ARCHIVE_NAMES:
        expected = ", ".join(ARCHIVE_NAMES)
        raise ValueError(f"unknown FMA archive {name!r}; expected one of {expected}")
    return f"{base_url.rstrip('/')}/{name}"


def acquire_archive(
    name: str,
    *,
    base_url: str,
    data_dir: Path | str,
    sha1: str | None = None,
    session: requests.Session | None = None,
    max_attempts: int = 5,
    backoff_seconds: float = 1.0,
    timeout: float = 60.0,
    progress: bool = True,
) -> AcquiredArchive:
    """Download ``name`` into ``data_dir`` and unpack it there; safe to re-run.

    Pass ``sha1=FMA_ARCHIVE_SHA1[name]`` to check the published checksum.
    """
    data_dir = Path(data_dir)
    download = download_archive(
        archive_url(base_url, name), data_dir / name, sha1=sha1, session=session,
        max_attempts=max_attempts, backoff_seconds=backoff_seconds, timeout=timeout,
        progress=progress,
    )
    extraction = extract_archive(download.path, data_dir, progress=progress)
    return AcquiredArchive(download=download, extraction=extraction)


# Download --------------------------------------------------------------------------------


def download_archive(
    url: str,
    dest: Path | str,
    *,
    sha1: str | None = None,
    session: requests.Session | None = None,
    max_attempts: int = 5,
    backoff_seconds: float = 1.0,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
    progress: bool = True,
) -> DownloadResult:
    """Download ``url`` to ``dest``, resuming a previous ``dest.part`` with a Range request.

    Parameters
    ----------
    sha1
        Expected SHA-1 (hex). The archive only gets its final name once it matches.
    max_attempts
        Requests per call before giving up on transient errors (connection drops,
        timeouts, HTTP 408/429/5xx); each retry resumes where the last one stopped.
    backoff_seconds
        First wait between attempts; doubles each time.

    Returns
    -------
    DownloadResult
        ``downloaded`` is False when ``dest`` was already complete (and verified).

    Raises
    ------
    ArchiveNotFoundError
        HTTP 404.
    DownloadError
        Any other unexpected HTTP status, or transient errors on every attempt.
    ChecksumMismatchError
        The downloaded bytes do not have the expected SHA-1.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    dest = Path(dest)
    expected = _normalized_sha1(sha1)
    if _already_downloaded(dest, expected):
        log.info("%s: already downloaded, skipping", dest)
        return DownloadResult(dest, downloaded=False, sha1=expected)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + PART_SUFFIX)
    owns_session = session is None
    session = session or requests.Session()
    try:
        digest = _fetch_with_retries(
            url, part, session=session, max_attempts=max_attempts,
            backoff_seconds=backoff_seconds, timeout=timeout, chunk_size=chunk_size,
            progress=progress,
        )
    finally:
        if owns_session:
            session.close()
    _accept(part, dest, actual=digest.hexdigest(), expected=expected)
    return DownloadResult(dest, downloaded=True, sha1=expected)


def _normalized_sha1(sha1: str | None) -> str | None:
    if sha1 is None:
        return None
    normalized = sha1.strip().lower()
    if not _SHA1.fullmatch(normalized):
        raise ValueError(f"not a SHA-1 hex digest: {sha1!r}")
    return normalized


def _already_downloaded(dest: Path, expected: str | None) -> bool:
    """True when ``dest`` is complete: files only get their final name once complete."""
    if not dest.is_file():
        return False
    if expected is None:
        return True
    if _verified_record(dest) == {"sha1": expected, "size": dest.stat().st_size}:
        return True
    actual = file_sha1(dest)
    if actual == expected:
        _write_verified_record(dest, actual)
        return True
    quarantined = _quarantine(dest)
    log.warning("%s: SHA-1 %s is not %s; moved to %s, downloading again",
                dest, actual, expected, quarantined)
    return False


def _verified_record(dest: Path) -> dict | None:
    record = dest.with_name(dest.name + VERIFIED_SUFFIX)
    if not record.is_file():
        return None
    try:
        return json.loads(record.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        log.warning("%s: unreadable verification record, checking the archive again", record)
        return None


def _write_verified_record(dest: Path, sha1: str) -> None:
    record = dest.with_name(dest.name + VERIFIED_SUFFIX)
    record.write_text(json.dumps({"sha1": sha1, "size": dest.stat().st_size}), encoding="utf-8")


def _quarantine(path: Path) -> Path:
    target = path.with_name(path.name.removesuffix(PART_SUFFIX) + QUARANTINE_SUFFIX)
    os.replace(path, target)
    path.with_name(path.name + VERIFIED_SUFFIX).unlink(missing_ok=True)
    return target


def _accept(part: Path, dest: Path, *, actual: str, expected: str | None) -> None:
    """Give a complete download its final name, or quarantine it on a checksum mismatch."""
    if expected is not None and actual != expected:
        quarantined = _quarantine(part)
        raise ChecksumMismatchError(dest.name, expected=expected, actual=actual,
                                    quarantined=quarantined)
    os.replace(part, dest)
    if expected is not None:
        _write_verified_record(dest, actual)


def file_sha1(path: Path | str, *, chunk_size: int = 1 << 20) -> str:
    """The SHA-1 hex digest of a file, read in chunks."""
    digest = hashlib.sha1()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


class _PartDigest:
    """SHA-1 of the ``.part`` file's bytes, kept in step with appends across attempts."""

    def __init__(self, part: Path) -> None:
        self.part = part
        self.size = -1  # unknown until synced
        self.sha1 = hashlib.sha1()

    def sync(self) -> int:
        """Re-hash the part file if this digest does not cover it; return its size."""
        size = self.part.stat().st_size if self.part.exists() else 0
        if size != self.size:
            self.sha1 = hashlib.sha1()
            self.size = 0
            if size:
                with self.part.open("rb") as handle:
                    while chunk := handle.read(1 << 20):
                        self.update(chunk)
        return size

    def reset(self) -> None:
        self.sha1 = hashlib.sha1()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.sha1.update(chunk)
        self.size += len(chunk)

    def hexdigest(self) -> str:
        return self.sha1.hexdigest()


def _fetch_with_retries(
    url: str, part: Path, *, session: requests.Session, max_attempts: int,
    backoff_seconds: float, timeout: float, chunk_size: int, progress: bool,
) -> _PartDigest:
    digest = _PartDigest(part)
    for attempt in range(1, max_attempts + 1):
        try:
            outcome = _fetch_once(url, part, digest, session=session, timeout=timeout,
                                  chunk_size=chunk_size, progress=progress)
            reason = f"{outcome.value} transfer"
        except _TRANSIENT_ERRORS as exc:
            outcome, reason = _Attempt.INCOMPLETE, f"{type(exc).__name__}: {exc}"
        if outcome is _Attempt.COMPLETE:
            return digest
        if attempt < max_attempts:
            wait = backoff_seconds * 2 ** (attempt - 1)
            log.warning("%s: attempt %d/%d stopped (%s); resuming in %.1f s",
                        url, attempt, max_attempts, reason, wait)
            time.sleep(wait)
    raise DownloadError(f"{url}: gave up after {max_attempts} attempts; last: {reason}")


def _fetch_once(
    url: str, part: Path, digest: _PartDigest, *, session: requests.Session,
    timeout: float, chunk_size: int, progress: bool,
) -> _Attempt:
    """One request: resume from the part file's size, append what arrives."""
    offset = digest.sync()
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
        status = response.status_code
        if status == 416 and offset:
            return _after_unsatisfiable_range(url, part, digest, offset, response)
        _raise_for_status(url, response)
        if status == 206:
            start, total = _parse_content_range(url, response.headers.get("Content-Range"))
            if start != offset:
                log.warning("%s: asked for byte %d, got %s; restarting", url, offset, start)
                _restart(part, digest)
                return _Attempt.RESTART
            mode = "ab"
        else:  # 200: the server ignored the Range header, the body is the whole file
            if offset:
                log.warning("%s: server answered 200 to a Range request; restarting", url)
            digest.reset()
            offset, mode = 0, "wb"
            total = _content_length(response)
        _stream_body(response, part, digest, mode=mode, offset=offset, total=total,
                     chunk_size=chunk_size, progress=progress)
    if total is not None and digest.size != total:
        return _Attempt.INCOMPLETE
    return _Attempt.COMPLETE


def _raise_for_status(url: str, response: requests.Response) -> None:
    status = response.status_code
    if status in (200, 206):
        return
    if status == 404:
        raise ArchiveNotFoundError(f"{url}: HTTP 404, no such archive on the server")
    if status in _RETRY_STATUSES:
        raise _TransientHTTPError(f"HTTP {status} {response.reason}")
    raise DownloadError(f"{url}: unexpected HTTP {status} {response.reason}")


def _after_unsatisfiable_range(
    url: str, part: Path, digest: _PartDigest, offset: int, response: requests.Response
) -> _Attempt:
    """HTTP 416: complete when the part already holds the whole file, else start over."""
    _, total = _parse_content_range(url, response.headers.get("Content-Range"))
    if total == offset:
        return _Attempt.COMPLETE
    log.warning("%s: range from byte %d not satisfiable (size %s); restarting",
                url, offset, total)
    _restart(part, digest)
    return _Attempt.RESTART


def _restart(part: Path, digest: _PartDigest) -> None:
    part.unlink(missing_ok=True)
    digest.reset()


def _parse_content_range(url: str, header: str | None) -> tuple[int | None, int | None]:
    """``bytes 100-999/1000`` -> (100, 1000); ``bytes */1000`` -> (None, 1000)."""
    match = _CONTENT_RANGE.fullmatch((header or "").strip())
    if match is None:
        raise DownloadError(f"{url}: unreadable Content-Range header {header!r}")
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(3)) if match.group(3) != "*" else None
    return start, total


def _content_length(response: requests.Response) -> int | None:
    length = response.headers.get("Content-Length")
    return int(length) if length is not None and length.isdigit() else None


def _stream_body(
    response: requests.Response, part: Path, digest: _PartDigest, *, mode: str, offset: int,
    total: int | None, chunk_size: int, progress: bool,
) -> None:
    with part.open(mode) as sink, tqdm(
        total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
        desc=part.name.removesuffix(PART_SUFFIX), disable=not progress,
    ) as bar:
        for chunk in response.iter_content(chunk_size=chunk_size):
            sink.write(chunk)
            digest.update(chunk)
            bar.update(len(chunk))


# Extraction ------------------------------------------------------------------------------


def extract_archive(
    archive: Path | str, dest_dir: Path | str, *, progress: bool = True
) -> ExtractionResult:
    """Unpack a zip archive (zip64 included) into ``dest_dir``, streaming each member.

    Every member name is checked before anything is written. Files are written under a
    temporary name and renamed once their CRC checked out, so after an interruption a
    re-run keeps finished files. A marker ``dest_dir/.NAME.extracted`` makes a re-run of a
    completed extraction a no-op.

    Raises
    ------
    CorruptArchiveError
        Not a zip archive, or a member fails its CRC check.
    UnsafeArchiveError
        A member name is absolute, climbs out with ``..``, or is otherwise unsafe.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    if not archive.is_file():
        raise ExtractionError(f"{archive}: no such archive")
    marker = dest_dir / f".{archive.name}.extracted"
    stat = archive.stat()
    stamp = {"archive": archive.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if _marker_matches(marker, stamp):
        log.info("%s: already extracted into %s, skipping", archive.name, dest_dir)
        return ExtractionResult(dest_dir, extracted=False, members=_marker_members(marker))
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            targets = [_member_target(dest_dir, info.filename) for info in members]
            _extract_members(zipped, members, targets, progress=progress)
    except zipfile.BadZipFile as exc:
        raise CorruptArchiveError(f"{archive}: not a readable zip archive: {exc}") from exc
    marker.write_text(json.dumps({**stamp, "members": len(members)}), encoding="utf-8")
    return ExtractionResult(dest_dir, extracted=True, members=len(members))


def _marker_matches(marker: Path, stamp: dict) -> bool:
    if not marker.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        log.warning("%s: unreadable extraction marker, extracting again", marker)
        return False
    return {key: recorded.get(key) for key in stamp} == stamp


def _marker_members(marker: Path) -> int:
    return int(json.loads(marker.read_text(encoding="utf-8"))["members"])


def _member_target(dest_dir: Path, name: str) -> Path:
    """Where a member goes; raises when the name would land outside ``dest_dir``."""
    member = PurePosixPath(name)
    unsafe = (
        not name or "\x00" in name or "\\" in name or member.is_absolute()
        or ".." in member.parts or ":" in (member.parts[0] if member.parts else "")
    )
    root = dest_dir.resolve()
    target = (root / member).resolve()
    if unsafe or not target.is_relative_to(root):
        raise UnsafeArchiveError(f"refusing to extract member {name!r}: outside {dest_dir}")
    return target


def _extract_members(
    zipped: zipfile.ZipFile, members: list[zipfile.ZipInfo], targets: list[Path], *,
    progress: bool,
) -> None:
    total = sum(info.file_size for info in members)
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
              desc=f"unzip {Path(zipped.filename or '').name}", disable=not progress) as bar:
        for info, target in zip(members, targets):
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif not (target.is_file() and target.stat().st_size == info.file_size):
                _extract_member(zipped, info, target)
            bar.update(info.file_size)


def _extract_member(zipped: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + _EXTRACTING_SUFFIX)
    try:
        with zipped.open(info) as source, partial.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        partial.unlink(missing_ok=True)
        raise CorruptArchiveError(f"{zipped.filename}: member {info.filename!r}: {exc}") from exc
    os.replace(partial, target)
