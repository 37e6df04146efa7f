"""One model store for every job: versioned folders plus named pointers.

Layout of one model family (``settings.models_dir / <family>``)::

    CURRENT | CHAMPION        # pointer files: one line, the version in use
    <version>/metadata.json   # what made the version (params, data, metrics)
    <version>/...             # the job's own files (a Spark model folder, Parquet factors)

A version is written completely before any pointer names it, and a pointer is replaced
atomically (``fma_platform.files``), so a reader sees the old version or the new one,
never half of one. Versions are safe folder names (``[A-Za-z0-9._-]``); a rerun that
produces the same version overwrites it (jobs derive versions from their inputs, so a
rerun on the same data is idempotent).

Pointers are plain text. The families and which pointer each reads are named in
``fma_platform.contracts.ModelFamily``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fma_platform.errors import PlatformError
from fma_platform.files import write_text_atomic

METADATA_FILE = "metadata.json"
_SAFE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ModelStoreError(PlatformError):
    """The store cannot give what was asked: no such pointer or version, unreadable metadata."""


class NoModelError(ModelStoreError):
    """A pointer that no job has written yet, or a version without its files."""


@dataclass(frozen=True)
class ModelStore:
    """The versions and pointers of one model family under ``root``."""

    root: Path

    @classmethod
    def of(cls, models_dir: str | Path, family: str) -> ModelStore:
        """The store of ``family`` (a ``ModelFamily`` value) under the settings' ``models_dir``."""
        return cls(Path(models_dir) / str(family))

    # -- versions ----------------------------------------------------------------------
    def version_dir(self, version: str) -> Path:
        """``root/<version>``; raises for a version that is not a safe folder name."""
        if not _SAFE_VERSION.match(version or ""):
            raise ModelStoreError(f"model version {version!r} is not a safe folder name ([A-Za-z0-9._-], 1-128)")
        return self.root / version

    def prepare(self, version: str) -> Path:
        """Create (or reuse) the folder of ``version`` and return it: the job writes its files there."""
        folder = self.version_dir(version)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def write_metadata(self, version: str, metadata: dict[str, Any]) -> Path:
        """Write ``metadata.json`` of ``version`` atomically (after the job's own files)."""
        path = self.prepare(version) / METADATA_FILE
        write_text_atomic(path, json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n")
        return path

    def metadata(self, version: str) -> dict[str, Any]:
        """The metadata of ``version``; ``NoModelError`` when it has none."""
        path = self.version_dir(version) / METADATA_FILE
        if not path.is_file():
            raise NoModelError(f"model version {version!r} has no {path}")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelStoreError(f"{path} is unreadable: {exc}") from exc

    def has_version(self, version: str) -> bool:
        return (self.version_dir(version) / METADATA_FILE).is_file()

    def versions(self) -> list[str]:
        """Complete versions (with metadata), oldest first by metadata time."""
        if not self.root.is_dir():
            return []
        complete = [p for p in self.root.iterdir() if (p / METADATA_FILE).is_file()]
        return [p.name for p in sorted(complete, key=lambda p: ((p / METADATA_FILE).stat().st_mtime, p.name))]

    # -- pointers ----------------------------------------------------------------------
    def point(self, pointer: str, version: str) -> None:
        """Make ``pointer`` name ``version`` (which must be complete), atomically."""
        if not self.has_version(version):
            raise NoModelError(f"cannot point {pointer} at {version!r}: {self.version_dir(version)} is incomplete")
        write_text_atomic(self.root / pointer, version + "\n")

    def read_pointer(self, pointer: str) -> str | None:
        """The version ``pointer`` names; None when no job has written it yet."""
        path = self.root / pointer
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if not text:
            raise ModelStoreError(f"pointer {path} is empty")
        self.version_dir(text)  # a pointer naming an unsafe path is an error, not a path
        return text

    def require_pointer(self, pointer: str) -> str:
        """The version ``pointer`` names; ``NoModelError`` (saying which job writes it) when absent."""
        version = self.read_pointer(pointer)
        if version is None:
            raise NoModelError(f"no {self.root / pointer} yet: the job publishing {self.root.name} models has not run")
        return version
