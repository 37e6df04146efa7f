"""``python -m audio_features``: the argument contract and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from audio_features import cli
from audio_features.fma_schema import audio_path
from tests.audio_features.test_features import write_clip


def run_module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audio_features", *args],
                          capture_output=True, text=True, timeout=120)


def write_tracks_csv(path: Path, durations: dict[int, float]) -> Path:
    columns = pd.MultiIndex.from_tuples([("track", "duration"), ("set", "subset")])
    frame = pd.DataFrame([[d, "small"] for d in durations.values()], index=pd.Index(list(durations), name="track_id"), columns=columns)
    frame.to_csv(path)
    return path


def test_help_lists_the_extract_command_only():
    result = run_module("--help")
    assert result.returncode == 0
    assert "extract" in result.stdout
    assert "sample" not in result.stdout  # the synthetic sample is ``python -m fma_sample``
    assert run_module("sample", "--out", "x").returncode == 2


def test_unreadable_metadata_exits_2_with_one_line_reason(tmp_path):
    result = run_module("extract", "--audio-dir", str(tmp_path), "--tracks", str(tmp_path / "nope.csv"),
                        "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "tracks metadata" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_arguments_exit_non_zero(tmp_path):
    assert run_module("extract", "--audio-dir", str(tmp_path)).returncode == 2
    assert run_module("extract", "--audio-dir", str(tmp_path), "--tracks", "t.csv", "--out", "o",
                      "--workers", "0").returncode == 2


@pytest.mark.slow
def test_extract_finishes_with_exit_0_despite_failures(tmp_path, capsys):
    audio = tmp_path / "audio"
    write_clip(audio_path(audio, 2), "music", seconds=4.0)
    tracks = write_tracks_csv(tmp_path / "tracks.csv", {2: 4.0, 3: 30.0, 4: 30.0})
    out = tmp_path / "out"
    code = cli.main(["extract", "--audio-dir", str(audio), "--tracks", str(tracks), "--out", str(out),
                     "--workers", "1", "--track-ids", "2", "3"])
    assert code == 0
    assert "1 tracks extracted, 1 failed" in capsys.readouterr().out
    features = pd.read_csv(out / "features.csv", index_col=0, header=[0, 1, 2])
    assert features.index.tolist() == [2] and features.shape[1] == 518
    assert pd.read_csv(out / "failures.csv").to_dict("records") == [{"track_id": 3, "reason": "missing_file"}]

