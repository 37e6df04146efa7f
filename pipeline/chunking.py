"""How many tracks one extraction task (one mapped ``extract_chunk`` of ``fma_etl``) gets.

A chunk pays a fixed cost whatever its size (Airflow starting the task; the extractor's
interpreter, imports, worker warm-up and metadata read), then ``per_track_s / workers``
per track. Small chunks spend their time on that fixed cost; many chunks run into
Airflow's ``[core] max_map_length`` (1,024 by default), past which the mapped task does
not expand and the run fails. ``choose_chunk_size`` finds the smallest chunk that keeps
the fixed cost to at most ``max_fixed_share`` of the chunk's time and the chunk count
within ``max_map_length``, then spreads the tracks over as many chunks of at least that
size as fit, so no short leftover chunk pays a whole fixed cost for a few
tracks (1,008 tracks at a minimum of 960 are one chunk of 1,008, not 960 + 48). Chunks
stay as small as that allows because a chunk is the unit of retry and of resume.

The defaults, and where they were measured (2-core shared machine; README "Measured"):

- ``EXTRACT_FIXED_COST_S``: one extraction task's own fixed cost, 2 workers, warm JIT
  cache: 8.4-12.1 s per chunk (``benchmarks/bench_dag_extraction.py``, load average 1-4;
  a chunk's wall time minus its tracks' time / workers).
- ``EXTRACT_FIXED_COST_SERVER_S``: the same through the warm extraction server (on by
  default): median 2.4 s (1.4-3.2 s) at load average 14. A task's time limit keeps the plain
  cost (the run that starts the server pays it).
- ``AIRFLOW_TASK_OVERHEAD_S``: one more task instance: 0.16 s in ``airflow dags test``,
  1.9 s to parse ``dags/fma_etl.py`` in a task process, + 1 s scheduling (assumed)
  (``bench_dag_extraction.py --airflow-overhead``).
- ``TRACK_SECONDS``: one 30 s clip on one core, warm: 150 ms on real recorded music on an
  idle core (issue 12's corpus, one worker); 270-300 ms/core with 2 workers on the 2-core
  machine under load. The idle figure is the default: a loaded machine slows the fixed
  cost as much as the tracks, so the share holds, and erring fast gives bigger chunks.
"""

from __future__ import annotations

import math

EXTRACT_FIXED_COST_S = 10.0
# The same through the warm extraction server (``audio_features.server``, on by default):
# 1.4-3.2 s, median 2.4 s at load average 14 (``bench_extractor.py --fixed-cost``).
EXTRACT_FIXED_COST_SERVER_S = 2.5
AIRFLOW_TASK_OVERHEAD_S = 3.0
CHUNK_FIXED_COST_S = EXTRACT_FIXED_COST_S + AIRFLOW_TASK_OVERHEAD_S
TRACK_SECONDS = 0.15
AIRFLOW_MAX_MAP_LENGTH = 1024  # Airflow's default [core] max_map_length
MAX_FIXED_SHARE = 0.10
# execution_timeout of an extraction task: this many times its expected time (at load
# average 17 on this 2-core machine a track took 1.8 s against 0.15-0.3 s: 6-12x), and
# never under CHUNK_TIMEOUT_FLOOR_S (a cold JIT cache alone costs 30-90 s, and each hung
# track up to the extractor's 120 s track timeout).
CHUNK_TIMEOUT_SLOWDOWN = 10.0
CHUNK_TIMEOUT_FLOOR_S = 900.0


def chunk_fixed_cost_s(*, extractor_server: bool) -> float:
    """One extraction task's fixed cost: Airflow's task overhead plus the extractor's start."""
    extract = EXTRACT_FIXED_COST_SERVER_S if extractor_server else EXTRACT_FIXED_COST_S
    return extract + AIRFLOW_TASK_OVERHEAD_S


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

    The smallest admissible chunk keeps the fixed cost to at most ``max_fixed_share`` of
    its time and the chunk count within ``max_map_length``; the tracks are spread evenly
    over as many chunks of at least that size as fit (module docstring). A dataset too
    small to amortise the fixed cost is one chunk. Returns 1 for no tracks.
    """
    _check(workers=workers, fixed_cost_s=fixed_cost_s, per_track_s=per_track_s)
    if n_tracks < 0 or max_map_length < 1 or not 0 < max_fixed_share < 1:
        raise ValueError(
            f"need n_tracks >= 0, max_map_length >= 1 and 0 < max_fixed_share < 1; got {n_tracks}, "
            f"{max_map_length}, {max_fixed_share}"
        )
    # fixed / (fixed + size * per_track / workers) <= share  <=>  size >= by_share
    by_share = fixed_cost_s * (1 - max_fixed_share) / max_fixed_share * workers / per_track_s
    smallest = max(1, _ceil(by_share), _ceil(n_tracks / max_map_length))
    if n_tracks == 0:
        return 1
    if smallest >= n_tracks:
        return n_tracks
    return math.ceil(n_tracks / (n_tracks // smallest))


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
