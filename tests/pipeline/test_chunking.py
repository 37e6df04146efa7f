"""Chunk size from the dataset: fixed cost a small share of each task, chunk count within
Airflow's max_map_length."""

from __future__ import annotations

import math

import pytest

from pipeline import chunking as C

FMA_LARGE_TRACKS = 106_574


@pytest.mark.parametrize("workers", [1, 2, 16])
def test_fma_large_fits_airflow_and_keeps_fixed_cost_under_ten_percent(workers):
    size = C.choose_chunk_size(FMA_LARGE_TRACKS, workers=workers)
    n_chunks = math.ceil(FMA_LARGE_TRACKS / size)
    assert n_chunks <= C.AIRFLOW_MAX_MAP_LENGTH
    assert C.fixed_share(size, workers=workers) <= C.MAX_FIXED_SHARE + 1e-12
    # the smallest such size: one track less breaks the share
    assert C.fixed_share(size - 1, workers=workers) > C.MAX_FIXED_SHARE


def test_fma_large_with_a_negligible_fixed_cost_is_bounded_by_the_chunk_count():
    size = C.choose_chunk_size(FMA_LARGE_TRACKS, workers=2, fixed_cost_s=0.0)
    assert size == math.ceil(FMA_LARGE_TRACKS / 1024) == 105
    assert math.ceil(FMA_LARGE_TRACKS / size) <= 1024 < math.ceil(FMA_LARGE_TRACKS / (size - 1))


def test_the_issue_numbers_give_66_chunks_instead_of_2132():
    # 10.6 s fixed + 3 s task overhead, 150 ms/track, 2 workers (issue 12's measurements):
    # size >= 13.6 * 0.9 / 0.1 * 2 / 0.15 = 1632 tracks
    size = C.choose_chunk_size(FMA_LARGE_TRACKS, workers=2, fixed_cost_s=13.6, per_track_s=0.15)
    assert size == 1632
    assert math.ceil(FMA_LARGE_TRACKS / size) == 66
    assert C.fixed_share(size, workers=2, fixed_cost_s=13.6, per_track_s=0.15) == pytest.approx(0.10)


def test_a_120_track_sample_is_one_chunk():
    assert C.choose_chunk_size(120, workers=2) == 120
    assert C.choose_chunk_size(120, workers=1, fixed_cost_s=1.0, per_track_s=1.0) == 9  # 1 s of 10 s is fixed


def test_edge_cases():
    assert C.choose_chunk_size(0, workers=2) == 1
    assert C.choose_chunk_size(1, workers=2) == 1
    assert C.choose_chunk_size(5000, workers=1, max_map_length=1) == 5000
    assert C.choose_chunk_size(10, workers=1, fixed_cost_s=0.0, per_track_s=1.0) == 1
    for bad in ({"n_tracks": -1}, {"workers": 0}, {"per_track_s": 0.0}, {"fixed_cost_s": -1.0},
                {"max_map_length": 0}, {"max_fixed_share": 0.0}, {"max_fixed_share": 1.0}):
        kwargs = {"n_tracks": 100, "workers": 1, **bad}
        with pytest.raises(ValueError):
            C.choose_chunk_size(kwargs.pop("n_tracks"), **kwargs)


def test_more_workers_need_bigger_chunks_for_the_same_share():
    sizes = [C.choose_chunk_size(FMA_LARGE_TRACKS, workers=w) for w in (1, 2, 4, 16)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_timeout_leaves_room_for_a_slow_machine_and_has_a_floor():
    size = C.choose_chunk_size(FMA_LARGE_TRACKS, workers=2)
    expected = C.chunk_seconds(size, workers=2)
    assert C.chunk_timeout_s(size, workers=2) == max(C.CHUNK_TIMEOUT_FLOOR_S, C.CHUNK_TIMEOUT_SLOWDOWN * expected)
    assert C.chunk_timeout_s(1, workers=2) == C.CHUNK_TIMEOUT_FLOOR_S
    assert C.chunk_timeout_s(100_000, workers=1) == pytest.approx(5 * (C.CHUNK_FIXED_COST_S + 100_000 * 0.15))
