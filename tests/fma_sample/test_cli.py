"""``python -m fma_sample``: the argument contract, exit codes and what a run leaves behind."""

from __future__ import annotations

import json
import subprocess
import sys

from fma_sample import cli


def run_module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fma_sample", *args], capture_output=True, text=True, timeout=120)


def test_help_names_the_parameters_and_defaults():
    result = run_module("--help")
    assert result.returncode == 0
    assert "--out" in result.stdout and "--tracks" in result.stdout and "default 120" in result.stdout


def test_too_few_tracks_exit_2_with_one_line_reason(tmp_path):
    result = run_module("--out", str(tmp_path / "sample"), "--tracks", "3")
    assert result.returncode == 2
    assert result.stderr == "error: n_tracks must be at least 5, got 3\n"
    assert not (tmp_path / "sample").exists()


def test_bad_arguments_exit_2():
    assert run_module("--tracks", "5").returncode == 2  # no --out
    assert run_module("--out", "x", "--workers", "0").returncode == 2


def test_a_run_writes_the_sample_and_says_what_it_did(tmp_path, capsys):
    out = tmp_path / "sample"
    assert cli.main(["--out", str(out), "--tracks", "5", "--seed", "4"]) == 0
    assert capsys.readouterr().out == (
        f"sample of 5 tracks in {out}: 5 clips written, 0 reused, 4 planted broken files\n"
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["n_tracks"] == 5 and manifest["parameters"]["seed"] == 4
    assert "python -m fma_sample --out DIR --tracks 5 --seed 4" in (out / "SYNTHETIC.md").read_text()
