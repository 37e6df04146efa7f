"""End-to-end tests of archive acquisition against a local HTTP server with Range support."""

from __future__ import annotations

import hashlib
import io
import random
import re
import struct
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from audio_features.acquire import (
    ARCHIVE_NAMES,
    ArchiveNotFoundError,
    ChecksumMismatchError,
    CorruptArchiveError,
    DownloadError,
    UnsafeArchiveError,
    acquire_archive,
    archive_url,
    download_archive,
    extract_archive,
)

FAST = {"backoff_seconds": 0.01, "progress": False, "timeout": 10.0}


@dataclass
class ArchiveServer:
    """What the fixture server serves, which faults it injects, and what it was asked."""

    files: dict[str, bytes] = field(default_factory=dict)
    # path -> faults for the next requests, in order: ("drop", n_bytes), ("status", code),
    # ("ignore_range", None).
    faults: dict[str, list[tuple[str, int | None]]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    # Called on each request before answering; its results are kept in ``observed``.
    observe: Callable[[], object] | None = None
    observed: list[object] = field(default_factory=list)
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests_for(self, path: str) -> list[str | None]:
        """The Range headers of the requests made for ``path`` (None: no Range)."""
        return [range_ for seen, range_ in self.requests if seen == path]


class _Handler(BaseHTTPRequestHandler):
    state: ArchiveServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.lstrip("/")
        range_header = self.headers.get("Range")
        with self.state.lock:
            self.state.requests.append((path, range_header))
            if self.state.observe is not None:
                self.state.observed.append(self.state.observe())
            queue = self.state.faults.get(path, [])
            fault = queue.pop(0) if queue else (None, None)
        body = self.state.files.get(path)
        if body is None:
            self.send_error(404)
        elif fault[0] == "status":
            self.send_error(fault[1])
        else:
            self._send_body(body, range_header, ignore_range=fault[0] == "ignore_range",
                            drop_after=fault[1] if fault[0] == "drop" else None)

    def _send_body(self, body: bytes, range_header: str | None, *, ignore_range: bool,
                   drop_after: int | None) -> None:
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if match and not ignore_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        payload = body[start:] if drop_after is None else body[start:start + drop_after]
        self.wfile.write(payload)
        self.wfile.flush()
        self.close_connection = True  # with drop_after: the body ends short of its length

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep request logs out of the test output."""


@pytest.fixture()
def server():
    state = ArchiveServer()
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/fma"
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture()
def session():
    """A session that ignores proxy variables: the server is on the loopback."""
    with requests.Session() as local:
        local.trust_env = False
        yield local


def _clip(seed: int, size: int = 150_000) -> bytes:
    return random.Random(seed).randbytes(size)


def _make_zip(members: dict[str, bytes], *, force_zip64: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, data in members.items():
            with zf.open(name, mode="w", force_zip64=force_zip64) as member:
                member.write(data)
    return buffer.getvalue()


SMALL_MEMBERS = {
    "fma_small/README.txt": b"FMA small subset (test archive)\n",
    "fma_small/000/000002.mp3": _clip(2),
    "fma_small/000/000005.mp3": _clip(5),
    "fma_small/001/001039.mp3": _clip(1039),
}


def _serve(server: ArchiveServer, name: str, archive: bytes) -> str:
    server.files[f"fma/{name}"] = archive
    return hashlib.sha1(archive).hexdigest()


def test_archive_url_joins_the_base_url_from_settings():
    assert archive_url("https://mirror.example/fma/", "fma_small.zip") == (
        "https://mirror.example/fma/fma_small.zip")
    assert ARCHIVE_NAMES == ("fma_metadata.zip", "fma_small.zip", "fma_medium.zip",
                             "fma_large.zip")
    with pytest.raises(ValueError, match="unknown FMA archive"):
        archive_url("https://mirror.example/fma", "fma_huge.zip")


def test_acquire_downloads_verifies_and_extracts(server, session, tmp_path):
    sha1 = _serve(server, "fma_small.zip", _make_zip(SMALL_MEMBERS))

    result = acquire_archive("fma_small.zip", base_url=server.base_url, data_dir=tmp_path,
                             sha1=sha1, session=session, **FAST)

    assert result.download.downloaded and result.download.sha1 == sha1
    assert result.extraction.extracted and result.extraction.members == 4
    for name, data in SMALL_MEMBERS.items():
        assert (tmp_path / name).read_bytes() == data
    assert not (tmp_path / "fma_small.zip.part").exists()


def test_zip64_archive_is_extracted(server, session, tmp_path):
    archive = _make_zip(SMALL_MEMBERS, force_zip64=True)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        info = zf.getinfo("fma_small/000/000002.mp3")
    name_len, extra_len = struct.unpack("<HH", archive[info.header_offset + 26:
                                                      info.header_offset + 30])
    extra_start = info.header_offset + 30 + name_len
    assert archive[extra_start:extra_start + 2] == b"\x01\x00"  # the zip64 extra field
    sha1 = _serve(server, "fma_large.zip", archive)

    result = acquire_archive("fma_large.zip", base_url=server.base_url, data_dir=tmp_path,
                             sha1=sha1, session=session, **FAST)

    assert result.extraction.members == 4
    assert (tmp_path / "fma_small/000/000002.mp3").read_bytes() == SMALL_MEMBERS[
        "fma_small/000/000002.mp3"]


def test_dropped_connection_is_resumed_with_a_range_request(server, session, tmp_path):
    archive = _make_zip(SMALL_MEMBERS)
    sha1 = _serve(server, "fma_small.zip", archive)
    cut, chunk_size = 200_000, 16_384
    server.faults["fma/fma_small.zip"] = [("drop", cut)]
    part = tmp_path / "fma_small.zip.part"
    server.observe = lambda: part.stat().st_size if part.exists() else 0

    result = download_archive(f"{server.base_url}/fma_small.zip", tmp_path / "fma_small.zip",
                              sha1=sha1, session=session, chunk_size=chunk_size, **FAST)

    partial_size = server.observed[1]  # the .part file when the retry came in
    # Whole chunks received before the drop were kept; the chunk in flight is fetched again.
    assert cut - chunk_size < partial_size <= cut
    assert server.requests_for("fma/fma_small.zip") == [None, f"bytes={partial_size}-"]
    assert result.downloaded
    assert hashlib.sha1(result.path.read_bytes()).hexdigest() == sha1


def test_interrupted_run_resumes_from_the_part_file(server, session, tmp_path):
    archive = _make_zip(SMALL_MEMBERS)
    sha1 = _serve(server, "fma_small.zip", archive)
    (tmp_path / "fma_small.zip.part").write_bytes(archive[:123_456])  # a previous process

    download_archive(f"{server.base_url}/fma_small.zip", tmp_path / "fma_small.zip",
                     sha1=sha1, session=session, **FAST)

    assert server.requests_for("fma/fma_small.zip") == ["bytes=123456-"]
    assert (tmp_path / "fma_small.zip").read_bytes() == archive


def test_server_ignoring_range_restarts_from_zero(server, session, tmp_path):
    archive = _make_zip(SMALL_MEMBERS)
    sha1 = _serve(server, "fma_small.zip", archive)
    (tmp_path / "fma_small.zip.part").write_bytes(archive[:50_000])
    server.faults["fma/fma_small.zip"] = [("ignore_range", None)]

    download_archive(f"{server.base_url}/fma_small.zip", tmp_path / "fma_small.zip",
                     sha1=sha1, session=session, **FAST)

    assert (tmp_path / "fma_small.zip").read_bytes() == archive


def test_complete_part_file_answered_416_is_accepted(server, session, tmp_path):
    archive = _make_zip(SMALL_MEMBERS)
    sha1 = _serve(server, "fma_small.zip", archive)
    (tmp_path / "fma_small.zip.part").write_bytes(archive)  # died before the rename

    download_archive(f"{server.base_url}/fma_small.zip", tmp_path / "fma_small.zip",
                     sha1=sha1, session=session, **FAST)

    assert server.requests_for("fma/fma_small.zip") == [f"bytes={len(archive)}-"]
    assert (tmp_path / "fma_small.zip").read_bytes() == archive


def test_transient_server_errors_are_retried(server, session, tmp_path):
    archive = _make_zip(SMALL_MEMBERS)
    sha1 = _serve(server, "fma_small.zip", archive)
    server.faults["fma/fma_small.zip"] = [("status", 503), ("status", 502)]

    download_archive(f"{server.base_url}/fma_small.zip", tmp_path / "fma_small.zip",
                     sha1=sha1, session=session, **FAST)

    assert len(server.requests_for("fma/fma_small.zip")) == 3
    assert (tmp_path / "fma_small.zip").read_bytes() == archive


def test_gives_up_after_the_last_attempt(server, session, tmp_path):
    _serve(server, "fma_small.zip", _make_zip(SMALL_MEMBERS))
    server.faults["fma/fma_small.zip"] = [("status", 503)] * 3

    with pytest.raises(DownloadError, match="gave up after 3 attempts.*HTTP 503"):
        download_archive(f"{server.base_url}/fma_small.zip", tmp_path / "fma_small.zip",
                         session=session, max_attempts=3, **FAST)
    assert not (tmp_path / "fma_small.zip").exists()


def test_sha1_mismatch_quarantines_the_download(server, session, tmp_path):
    archive = _make_zip(SMALL_MEMBERS)
    _serve(server, "fma_small.zip", archive)
    wrong = "0" * 40

    with pytest.raises(ChecksumMismatchError, match="does not match the expected 0000") as err:
        acquire_archive("fma_small.zip", base_url=server.base_url, data_dir=tmp_path,
                        sha1=wrong, session=session, **FAST)

    assert err.value.actual == hashlib.sha1(archive).hexdigest()
    assert err.value.quarantined == tmp_path / "fma_small.zip.sha1-mismatch"
    assert err.value.quarantined.read_bytes() == archive
    assert not (tmp_path / "fma_small.zip").exists()
    assert not (tmp_path / "fma_small.zip.part").exists()
    assert not (tmp_path / "fma_small").exists()  # nothing extracted from a bad archive


def test_missing_archive_is_a_404_without_retries(server, session, tmp_path):
    with pytest.raises(ArchiveNotFoundError, match="HTTP 404"):
        acquire_archive("fma_medium.zip", base_url=server.base_url, data_dir=tmp_path,
                        session=session, **FAST)
    assert len(server.requests_for("fma/fma_medium.zip")) == 1


def test_rerun_is_a_no_op(server, session, tmp_path):
    sha1 = _serve(server, "fma_small.zip", _make_zip(SMALL_MEMBERS))
    kwargs = {"base_url": server.base_url, "data_dir": tmp_path, "sha1": sha1,
              "session": session, **FAST}
    acquire_archive("fma_small.zip", **kwargs)
    clip = tmp_path / "fma_small/000/000002.mp3"
    mtime = clip.stat().st_mtime_ns

    again = acquire_archive("fma_small.zip", **kwargs)

    assert not again.download.downloaded and not again.extraction.extracted
    assert again.extraction.members == 4
    assert len(server.requests_for("fma/fma_small.zip")) == 1
    assert clip.stat().st_mtime_ns == mtime


def test_existing_archive_with_wrong_checksum_is_replaced(server, session, tmp_path):
    archive = _make_zip(SMALL_MEMBERS)
    sha1 = _serve(server, "fma_small.zip", archive)
    (tmp_path / "fma_small.zip").write_bytes(b"left over from another release")

    result = download_archive(f"{server.base_url}/fma_small.zip", tmp_path / "fma_small.zip",
                              sha1=sha1, session=session, **FAST)

    assert result.downloaded
    assert (tmp_path / "fma_small.zip").read_bytes() == archive
    assert (tmp_path / "fma_small.zip.sha1-mismatch").read_bytes() == (
        b"left over from another release")


@pytest.mark.parametrize("evil_name", ["../evil.txt", "/tmp/evil.txt", "fma/../../evil.txt",
                                       "fma\\..\\evil.txt"])
def test_path_traversal_members_are_refused(tmp_path, evil_name):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(_make_zip({"fma_small/ok.txt": b"fine", evil_name: b"gotcha"}))
    dest = tmp_path / "data"

    with pytest.raises(UnsafeArchiveError, match="refusing to extract member"):
        extract_archive(archive, dest, progress=False)

    assert not (tmp_path / "evil.txt").exists()
    assert not (dest / "fma_small/ok.txt").exists()  # names are checked before writing


def test_corrupt_archive_is_reported(tmp_path):
    archive = tmp_path / "fma_small.zip"
    archive.write_bytes(b"<html>not a zip, an error page</html>")

    with pytest.raises(CorruptArchiveError, match="not a readable zip archive"):
        extract_archive(archive, tmp_path / "data", progress=False)


def test_member_failing_its_crc_is_reported(tmp_path):
    data = _make_zip({"fma_small/000/000002.mp3": _clip(2, 10_000)})
    position = data.index(b"fma_small/000/000002.mp3") + len("fma_small/000/000002.mp3") + 100
    archive = tmp_path / "fma_small.zip"
    archive.write_bytes(data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1:])

    with pytest.raises(CorruptArchiveError, match="Bad CRC-32"):
        extract_archive(archive, tmp_path / "data", progress=False)
    assert not (tmp_path / "data/fma_small/000/000002.mp3").exists()


def test_interrupted_extraction_keeps_finished_files(tmp_path):
    archive = tmp_path / "fma_small.zip"
    archive.write_bytes(_make_zip(SMALL_MEMBERS))
    dest = tmp_path / "data"
    extract_archive(archive, dest, progress=False)
    (dest / ".fma_small.zip.extracted").unlink()  # as if the run had died before the end
    (dest / "fma_small/000/000005.mp3").unlink()
    kept = dest / "fma_small/000/000002.mp3"
    mtime = kept.stat().st_mtime_ns

    result = extract_archive(archive, dest, progress=False)

    assert result.extracted
    assert (dest / "fma_small/000/000005.mp3").read_bytes() == SMALL_MEMBERS[
        "fma_small/000/000005.mp3"]
    assert kept.stat().st_mtime_ns == mtime
