"""Check an FMA audio folder against the track ids of the metadata.

FMA keeps each clip at ``AUDIO_DIR/NNN/NNNNNN.mp3`` where ``NNNNNN`` is the zero-padded track
id and ``NNN`` its first three digits. A scan reports what the metadata lists but the folder
lacks, what the folder holds but the metadata does not list, and files off the layout.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from audio_features.errors import AudioFeaturesError
from audio_features.fma_schema import audio_path

_FOLDER = re.compile(r"[0-9]{3}")
_CLIP = re.compile(r"([0-9]{6})\.mp3")


class AudioDirError(AudioFeaturesError):
    """The audio folder to scan does not exist or is not a folder."""


@dataclass(frozen=True)
class AudioLayoutReport:
    """What an audio folder holds compared with the metadata's track ids.

    Attributes
    ----------
    present
        Listed tracks whose clip is where FMA puts it (sorted ids).
    missing
        Listed tracks with no clip at their FMA path (sorted ids).
    unlisted
        Clips on the layout whose track the metadata does not list, by track id.
    misplaced
        ``.mp3`` files off the ``NNN/NNNNNN.mp3`` layout (wrong folder, name or depth).
    other_files
        Files that are not ``.mp3`` (FMA's archives ship a README.txt and checksums).
    """

    audio_dir: Path
    present: list[int]
    missing: list[int]
    unlisted: dict[int, Path]
    misplaced: list[Path]
    other_files: list[Path]

    @property
    def complete(self) -> bool:
        """Every listed track has its clip and every clip is listed and well placed."""
        return not (self.missing or self.unlisted or self.misplaced)


def scan_audio_dir(audio_dir: Path | str, track_ids: Iterable[int]) -> AudioLayoutReport:
    """Compare the clips under ``audio_dir`` with ``track_ids`` from the metadata.

    Raises
    ------
    AudioDirError
        ``audio_dir`` does not exist or is not a folder.
    ValueError
        A track id is not a non-negative integer of at most six digits.
    """
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise AudioDirError(f"{audio_dir}: no such audio folder")
    listed = {_checked_id(track_id) for track_id in track_ids}
    clips, misplaced, other_files = _classify_files(audio_dir)
    return AudioLayoutReport(
        audio_dir=audio_dir,
        present=sorted(listed & clips.keys()),
        missing=sorted(listed - clips.keys()),
        unlisted={tid: clips[tid] for tid in sorted(clips.keys() - listed)},
        misplaced=sorted(misplaced),
        other_files=sorted(other_files),
    )


def _checked_id(track_id: int) -> int:
    as_int = int(track_id)
    if as_int != track_id or not 0 <= as_int <= 999_999:
        raise ValueError(f"not an FMA track id: {track_id!r}")
    return as_int


def _classify_files(audio_dir: Path) -> tuple[dict[int, Path], list[Path], list[Path]]:
    """Split the folder's files into on-layout clips (by id), misplaced mp3s, others."""
    clips: dict[int, Path] = {}
    misplaced: list[Path] = []
    other_files: list[Path] = []
    for path in audio_dir.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(audio_dir)
        track_id = layout_track_id(relative)
        if track_id is not None:
            clips[track_id] = path
        elif path.suffix.lower() == ".mp3":
            misplaced.append(path)
        else:
            other_files.append(path)
    return clips, misplaced, other_files


def layout_track_id(relative_path: Path | str) -> int | None:
    """The track id of a path on FMA's layout (``000/000002.mp3`` -> 2), else None."""
    parts = Path(relative_path).parts
    if len(parts) != 2 or not _FOLDER.fullmatch(parts[0]):
        return None
    match = _CLIP.fullmatch(parts[1])
    if match is None:
        return None
    track_id = int(match.group(1))
    # On the layout exactly when it is where audio_path() puts the track (right folder).
    return track_id if audio_path(".", track_id).parts[-2:] == parts else None
