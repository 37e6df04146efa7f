"""Tests of the audio folder scan against the metadata's track ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from audio_features.fma_schema import audio_path
from audio_features.layout import AudioDirError, layout_track_id, scan_audio_dir


def _touch(path: Path, data: bytes = b"ID3") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture()
def audio_dir(tmp_path):
    """fma_small-like folder: tracks 2, 5, 140 on the layout, plus strays."""
    root = tmp_path / "fma_small"
    for track_id in (2, 5, 140, 99_999):
        _touch(audio_path(root, track_id))
    _touch(root / "001" / "000002.mp3")  # right name, wrong folder
    _touch(root / "000" / "2.mp3")  # not zero-padded
    _touch(root / "000005.mp3")  # not in a folder
    _touch(root / "README.txt", b"FMA")
    return root


def test_scan_reports_missing_unlisted_and_misplaced(audio_dir):
    report = scan_audio_dir(audio_dir, [2, 5, 10, 140, 666])

    assert report.present == [2, 5, 140]
    assert report.missing == [10, 666]
    assert report.unlisted == {99_999: audio_dir / "099" / "099999.mp3"}
    assert report.misplaced == sorted([
        audio_dir / "000" / "2.mp3", audio_dir / "000005.mp3", audio_dir / "001" / "000002.mp3",
    ])
    assert report.other_files == [audio_dir / "README.txt"]
    assert not report.complete


def test_scan_of_a_matching_folder_is_complete(tmp_path):
    for track_id in (2, 3, 1039):
        _touch(audio_path(tmp_path, track_id))

    report = scan_audio_dir(tmp_path, {2, 3, 1039})

    assert report.complete
    assert report.present == [2, 3, 1039]
    assert report.missing == [] and report.unlisted == {} and report.misplaced == []


def test_layout_track_id_follows_audio_path():
    assert layout_track_id("000/000002.mp3") == 2
    assert layout_track_id("133/133297.mp3") == 133_297
    assert layout_track_id("001/000002.mp3") is None
    assert layout_track_id("000/000002.MP3") is None
    assert layout_track_id("x/000/000002.mp3") is None


def test_missing_folder_and_bad_ids_raise(tmp_path):
    with pytest.raises(AudioDirError, match="no such audio folder"):
        scan_audio_dir(tmp_path / "nowhere", [2])
    with pytest.raises(ValueError, match="not an FMA track id"):
        scan_audio_dir(tmp_path, [2, -1])
