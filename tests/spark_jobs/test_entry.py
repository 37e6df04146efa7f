"""The exit contract every spark-submit entry file shares (``spark_jobs.entry``)."""

from __future__ import annotations

import json

import pytest

from fma_platform.errors import PlatformError, ReasonedError
from spark_jobs.entry import run_job


def test_summary_line_and_exit_0(capsys):
    assert run_job(lambda: {"tracks": 3}) == 0
    assert json.loads(capsys.readouterr().out) == {"tracks": 3}
    assert run_job(lambda: {"tracks": 3}, summarise=lambda s: f"{s['tracks']} tracks") == 0
    assert capsys.readouterr().out.strip() == "3 tracks"


@pytest.mark.parametrize(("error", "expected"), [
    (ReasonedError("too_few_tracks", "2 usable tracks"), {"error": "too_few_tracks", "detail": "2 usable tracks"}),
    (PlatformError("champion unreadable"), {"error": "PlatformError", "detail": "champion unreadable"}),
])
def test_refusals_exit_2_with_one_json_line(capsys, error, expected):
    def work():
        raise error

    assert run_job(work) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and json.loads(captured.err) == expected


def test_bugs_keep_their_traceback():
    def work():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_job(work)
