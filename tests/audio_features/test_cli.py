"""``python -m audio_features``: the argument contract and exit codes."""

from __future__ import annotations

import math
import os
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
    write_clip(audio_path(audio, 4), "music", seconds=8.0)
    tracks = write_tracks_csv(tmp_path / "tracks.csv", {2: 4.0, 3: 30.0, 4: 8.0, 5: 30.0})
    out = tmp_path / "out"
    code = cli.main(["extract", "--audio-dir", str(audio), "--tracks", str(tracks), "--out", str(out),
                     "--workers", "1", "--track-ids", "2", "3", "4", "--max-seconds", "6"])
    assert code == 0
    assert "1 tracks extracted, 2 failed" in capsys.readouterr().out
    features = pd.read_csv(out / "features.csv", index_col=0, header=[0, 1, 2])
    assert features.index.tolist() == [2] and features.shape[1] == 518
    failures = pd.read_csv(out / "failures.csv").set_index("track_id")
    assert failures.reason.to_dict() == {3: "missing_file", 4: "too_long"}
    assert failures.detail[3].endswith(str(audio_path(audio, 3)))
    assert "limit 6 s" in failures.detail[4]


def test_limit_flags_default_to_the_named_constants_and_refuse_nonsense(tmp_path):
    from audio_features import extract as X

    base = ["extract", "--audio-dir", str(tmp_path), "--tracks", "t.csv", "--out", "o"]
    args = cli.build_parser().parse_args(base)
    assert (args.track_timeout, args.max_file_mb * 2**20, args.max_seconds) == (
        X.TRACK_TIMEOUT_SECONDS, X.MAX_FILE_BYTES, X.MAX_DECODED_SECONDS)
    for flag, value in (("--track-timeout", "0"), ("--max-file-mb", "-1"), ("--max-seconds", "nan"),
                        ("--max-seconds", "inf"), ("--track-timeout", "soon")):
        assert run_module(*base, flag, value).returncode == 2


def test_numba_cache_defaults_to_the_per_user_folder_unless_set(tmp_path, monkeypatch):
    from fma_platform.settings import Settings

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("FMA_CACHE_DIR", str(tmp_path / "user-cache"))
    assert cli.use_platform_numba_cache() == tmp_path / "user-cache" / "numba" == Settings().numba_cache_dir
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert cli.use_platform_numba_cache() == tmp_path / "mine"


def test_a_misspelt_setting_exits_2_before_any_work(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "audio_features", "extract", "--audio-dir", str(tmp_path), "--tracks", "t.csv",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "FMA_CACHE_DIRR": "x", "NUMBA_CACHE_DIR": ""},
    )
    assert result.returncode == 2
    assert "FMA_CACHE_DIRR" in result.stderr and result.stderr.count("\n") == 1


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_track_durations_read_from_fma_and_plain_two_line_headers(tmp_path):
    fma = write_tracks_csv(tmp_path / "fma.csv", {2: 30.0, 5: float("nan"), 140: 12.5})
    durations = cli.read_track_durations(fma)
    assert sorted(durations) == [2, 5, 140]
    assert durations[2] == 30.0 and durations[140] == 12.5 and math.isnan(durations[5])
    no_names_row = _write_lines(tmp_path / "plain.csv", [",track,set", ",duration,subset", "7,29.9,small"])
    assert cli.read_track_durations(no_names_row) == {7: 29.9}
    no_duration = _write_lines(tmp_path / "nodur.csv", [",set", ",subset", "track_id,", "7,small"])
    assert math.isnan(cli.read_track_durations(no_duration)[7])


def test_track_durations_refuse_bad_ids_and_headerless_files(tmp_path):
    bad_ids = _write_lines(tmp_path / "bad.csv", [",track", ",duration", "track_id,", "7,30", "x7,30"])
    with pytest.raises(cli.CannotRun, match="non-integer track ids"):
        cli.read_track_durations(bad_ids)
    with pytest.raises(cli.CannotRun, match="cannot read tracks metadata"):
        cli.read_track_durations(_write_lines(tmp_path / "one.csv", [",track"]))
