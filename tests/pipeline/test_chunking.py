"""Chunk size from the dataset: fixed cost a small share of each task, chunk count within
Airflow's max_map_length, no short leftover chunk."""

from __future__ import annotations

import math

import pytest

from pipeline import chunking as C

FMA_LARGE_TRACKS = 106_574


def smallest_size(n_tracks: int, **costs) -> int:
    """The smallest chunk with fixed cost <= 10 % and <= 1,024 chunks, found by search."""
    workers = costs.pop("workers")
    size = math.ceil(n_tracks / C.AIRFLOW_MAX_MAP_LENGTH) or 1
    while C.fixed_share(size, workers=workers, **costs) > C.MAX_FIXED_SHARE + 1e-12:
        size += 1
    return size


def chunk_sizes(n_tracks: int, size: int) -> list[int]:
    """The sizes ``audio_features.extract.plan_chunks`` cuts ``n_tracks`` into."""
    return [min(size, n_tracks - start) for start in range(0, n_tracks, size)]


@pytest.mark.parametrize("workers", [1, 2, 16])
def test_fma_large_fits_airflow_and_keeps_fixed_cost_near_ten_percent(workers):
    smallest = smallest_size(FMA_LARGE_TRACKS, workers=workers)
    size = C.choose_chunk_size(FMA_LARGE_TRACKS, workers=workers)
    sizes = chunk_sizes(FMA_LARGE_TRACKS, size)
    assert len(sizes) <= C.AIRFLOW_MAX_MAP_LENGTH
    assert len(sizes) == FMA_LARGE_TRACKS // smallest  # as many chunks as fit, no more
    # every chunk but the last at least the smallest size; the last short by < 1 % of it
    assert min(sizes[:-1], default=size) >= smallest
    assert sizes[-1] >= smallest - len(sizes)


def test_the_default_figures_for_fma_large_on_two_workers():
    # 13 s fixed per task (10 s extractor + 3 s Airflow), 150 ms/track: >= 1,560 tracks
    assert smallest_size(FMA_LARGE_TRACKS, workers=2) == 1560
    size = C.choose_chunk_size(FMA_LARGE_TRACKS, workers=2)
    assert (size, math.ceil(FMA_LARGE_TRACKS / size)) == (1568, 68)
    assert C.chunk_seconds(size, workers=2) == pytest.approx(13 + 1568 * 0.15 / 2)


def test_the_issue_numbers_give_65_chunks_instead_of_2132():
    # 10.6 s fixed + 3 s task overhead, 150 ms/track, 2 workers (issue 12's measurements):
    # size >= 13.6 * 0.9 / 0.1 * 2 / 0.15 = 1632 tracks
    kwargs = {"workers": 2, "fixed_cost_s": 13.6, "per_track_s": 0.15}
    assert smallest_size(FMA_LARGE_TRACKS, **dict(kwargs)) == 1632
    size = C.choose_chunk_size(FMA_LARGE_TRACKS, **kwargs)
    assert math.ceil(FMA_LARGE_TRACKS / size) == FMA_LARGE_TRACKS // 1632 == 65
    assert C.fixed_share(size, **kwargs) < 0.10


def test_a_negligible_fixed_cost_is_bounded_by_the_chunk_count():
    size = C.choose_chunk_size(FMA_LARGE_TRACKS, workers=2, fixed_cost_s=0.0)
    # at least ceil(106,574 / 1,024) = 105 tracks; spread over 106,574 // 105 = 1,014 chunks
    assert size == math.ceil(FMA_LARGE_TRACKS / 1014) == 106
    assert math.ceil(FMA_LARGE_TRACKS / size) <= 1024


def test_a_short_leftover_is_folded_into_the_chunks():
    kwargs = {"workers": 2, "fixed_cost_s": 8.0, "per_track_s": 0.15}  # minimum 960
    assert smallest_size(1008, **dict(kwargs)) == 960
    assert C.choose_chunk_size(1008, **kwargs) == 1008  # one chunk, not 960 + 48
    assert chunk_sizes(2000, C.choose_chunk_size(2000, **kwargs)) == [1000, 1000]


def test_a_120_track_sample_is_one_chunk():
    assert C.choose_chunk_size(120, workers=2) == 120
    # 1 s fixed, 1 s/track, one worker: >= 9 tracks; 120 spread over 13 chunks of <= 10
    size = C.choose_chunk_size(120, workers=1, fixed_cost_s=1.0, per_track_s=1.0)
    assert size == 10 and min(chunk_sizes(120, size)) >= 9


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
    assert C.chunk_timeout_s(size, workers=2) >= 10 * expected  # a track 10x slower still fits
    assert C.chunk_timeout_s(1, workers=2) == C.CHUNK_TIMEOUT_FLOOR_S
    assert C.chunk_timeout_s(100_000, workers=1) == pytest.approx(10 * (C.CHUNK_FIXED_COST_S + 100_000 * 0.15))


def test_the_warm_extraction_server_gives_smaller_chunks_for_fma_large():
    plain = C.chunk_fixed_cost_s(extractor_server=False)
    served = C.chunk_fixed_cost_s(extractor_server=True)
    assert (plain, served) == (13.0, 5.5)  # 10 s or 2.5 s extractor start + 3 s Airflow task
    size = C.choose_chunk_size(FMA_LARGE_TRACKS, workers=2, fixed_cost_s=served)
    # >= 5.5 * 0.9 / 0.1 * 2 / 0.15 = 660 tracks: 161 chunks, each a smaller unit of retry
    assert smallest_size(FMA_LARGE_TRACKS, workers=2, fixed_cost_s=served) == 660
    assert math.ceil(FMA_LARGE_TRACKS / size) == FMA_LARGE_TRACKS // 660 == 161
    assert C.fixed_share(size, workers=2, fixed_cost_s=served) <= 0.10
