"""How many tracks one extraction task (one mapped ``extract_chunk`` of ``fma_etl``) gets.

A chunk pays a fixed cost whatever its size (Airflow starting the task; the extractor's
interpreter, imports, worker warm-up and metadata read), then ``per_track_s / workers``
per track. Small chunks spend their time on that fixed cost; many chunks run into
Airflow's ``[core] max_map_length`` (1,024 by default), past which the mapped task does
not expand and the run fails. ``choose_chunk_size`` takes the smallest chunk that keeps
the fixed cost to at most ``max_fixed_share`` of the chunk's time and the chunk count
within ``max_map_length``: the smallest, because a chunk is the unit of retry and of
resume, and a failed task redoes its whole chunk.

The defaults are measured on this project's reference machine (2 cores, shared):

- ``EXTRACT_FIXED_COST_S``: one ``python -m audio_features extract`` run on one clip,
  warm JIT cache, minus the clip's own time (``benchmarks/bench_extractor.py --fixed-cost``).
- ``AIRFLOW_TASK_OVERHEAD_S``: what one more mapped task instance adds to a run
  (``benchmarks/bench_dag_extraction.py --airflow-overhead``).
- ``TRACK_SECONDS``: extraction of one 30 s clip on one core, warm; real recorded music
  (issue 12's corpus: 150 ms) is slower than the synthetic sample, so it is the default.

README "Measured" has the runs behind each number.
"""

from __future__ import annotations

import math

EXTRACT_FIXED_COST_S = 5.0
AIRFLOW_TASK_OVERHEAD_S = 3.0
CHUNK_FIXED_COST_S = EXTRACT_FIXED_COST_S + AIRFLOW_TASK_OVERHEAD_S
TRACK_SECONDS = 0.15
AIRFLOW_MAX_MAP_LENGTH = 1024  # Airflow's default [core] max_map_length
MAX_FIXED_SHARE = 0.10
# execution_timeout of an extraction task: this many times its expected time (a shared,
# loaded machine runs 3-4x slower than an idle one; the README's runs saw load 7 on 2
# cores), and never under CHUNK_TIMEOUT_FLOOR_S (a cold JIT cache alone costs ~1 min,
# and each hung track up to the extractor's 120 s track timeout).
CHUNK_TIMEOUT_SLOWDOWN = 5.0
CHUNK_TIMEOUT_FLOOR_S = 900.0


def choose_chunk_size(
    n_tracks: int,
    *,
    workers: int,
    fixed_cost_s: float = CHUNK_FIXED_COST_S,
    per_track_s: float = TRACK_SECONDS,
    max_map_length: int = AIRFLOW_MAX_MAP_LENGTH,
    max_fixed_share: float = MAX_FIXED_SHARE,
) -> int:
    """Tracks per chunk for ``n_tracks`` extracted by tasks of ``workers`` processes each.

    The smallest size whose fixed cost is at most ``max_fixed_share`` of the chunk's time
    and whose chunk count is at most ``max_map_length``; never more than ``n_tracks`` (a
    dataset too small to amortise the fixed cost is one chunk). Returns 1 for no tracks.
    """
    _check(workers=workers, fixed_cost_s=fixed_cost_s, per_track_s=per_track_s)
    if n_tracks < 0 or max_map_length < 1 or not 0 < max_fixed_share < 1:
        raise ValueError(
            f"need n_tracks >= 0, max_map_length >= 1 and 0 < max_fixed_share < 1; got {n_tracks}, "
            f"{max_map_length}, {max_fixed_share}"
        )
    if n_tracks == 0:
        return 1
    # fixed / (fixed + size * per_track / workers) <= share  <=>  size >= this:
    by_share = fixed_cost_s * (1 - max_fixed_share) / max_fixed_share * workers / per_track_s
    by_count = n_tracks / max_map_length
    return min(n_tracks, max(1, _ceil(by_share), _ceil(by_count)))


def chunk_seconds(chunk_size: int, *, workers: int, fixed_cost_s: float = CHUNK_FIXED_COST_S,
                  per_track_s: float = TRACK_SECONDS) -> float:
    """Expected wall time of one extraction task of ``chunk_size`` tracks."""
    _check(workers=workers, fixed_cost_s=fixed_cost_s, per_track_s=per_track_s)
    return fixed_cost_s + chunk_size * per_track_s / workers


def fixed_share(chunk_size: int, *, workers: int, fixed_cost_s: float = CHUNK_FIXED_COST_S,
                per_track_s: float = TRACK_SECONDS) -> float:
    """The part of a task's time that is fixed cost."""
    total = chunk_seconds(chunk_size, workers=workers, fixed_cost_s=fixed_cost_s, per_track_s=per_track_s)
    return fixed_cost_s / total if total > 0 else 0.0


def chunk_timeout_s(chunk_size: int, *, workers: int, fixed_cost_s: float = CHUNK_FIXED_COST_S,
                    per_track_s: float = TRACK_SECONDS, slowdown: float = CHUNK_TIMEOUT_SLOWDOWN,
                    floor_s: float = CHUNK_TIMEOUT_FLOOR_S) -> float:
    """``execution_timeout`` (seconds) for an extraction task of ``chunk_size`` tracks."""
    expected = chunk_seconds(chunk_size, workers=workers, fixed_cost_s=fixed_cost_s, per_track_s=per_track_s)
    return max(floor_s, slowdown * expected)


def _check(*, workers: int, fixed_cost_s: float, per_track_s: float) -> None:
    if workers < 1 or fixed_cost_s < 0 or not per_track_s > 0:
        raise ValueError(
            f"need workers >= 1, fixed_cost_s >= 0 and per_track_s > 0; got {workers}, {fixed_cost_s}, "
            f"{per_track_s}"
        )


def _ceil(value: float) -> int:
    """``ceil`` that ignores float noise (``960.0000000001`` is 960)."""
    return math.ceil(value - 1e-9)
