"""Per-core throughput of our extractor vs FMA's plain definition, on the same clips;
with ``--fixed-cost``, what one run of each costs whatever its number of tracks.

    .venv/bin/python benchmarks/bench_extractor.py [--clips 6] [--repeats 2] [--audio-dir DIR]
    .venv/bin/python benchmarks/bench_extractor.py --fixed-cost [--runs 3] [--workers 1] [--extractor-root DIR]

One process, one core: OMP/OPENBLAS/MKL threads are set to 1 before numpy loads
(and threadpoolctl limits BLAS), as in one extraction worker. Both implementations
are warmed on the same clip first (numba JIT, filter banks), then each clip is timed
in turn for all variants, so machine noise hits them alike. Both include decoding.

The headline ratio is for the same work: FMA's 518 features (``tempo=False``). The
extractor also estimates the tempo; that is timed separately and used for the
fma_large projections (the work a run really does). Times are the process's CPU
time (``time.process_time``): with every library held to one thread that is the core
time a worker spends, and it stays meaningful on a shared, loaded machine where wall
time does not (the load average is printed; wall-clock ratios are printed too).

``--fixed-cost`` runs ``python -m audio_features extract`` on one 30 s clip (``--workers``
processes, as an ETL chunk has), plain (``--no-server``) and through the warm extraction
server (``--server``: the first warm run starts the server, as the first chunk of a DAG run
would; later runs find it up), and a script that runs FMA's formula on the same clip, each
in a fresh interpreter, interleaved run by run, cold (an empty ``NUMBA_CACHE_DIR``) then
warm (the same folder again); each of ours is printed against the reference as a ratio. A run's fixed cost is its wall time minus the per-track time it reports
itself (the extractor's ``extract_seconds`` column, timed after the worker's warm-up; the
script runs the clip twice and times the second call, and its wall time is counted
without that second call): imports, worker start, JIT cache, reading metadata, writing
outputs. CPU seconds are every process's, workers included (through the server: the client's only). ``--extractor-root DIR`` runs
the extractor from another checkout's ``audio_features`` (e.g. ``git archive REV
audio_features | tar -x -C DIR``), for a before/after on the same machine at the same moment.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_threads] = "1"  # before numpy is imported: one core for both sides

import numpy as np  # noqa: E402


def make_clips(out_dir: Path, *, n_clips: int, seconds: float = 30.0, sr: int = 44100) -> list[Path]:
    """Realistic-ish 30 s stereo MP3s: chord progression, bass, drums, noise."""
    import soundfile as sf

    paths = []
    t = np.arange(int(seconds * sr)) / sr
    for i in range(n_clips):
        rng = np.random.default_rng(i)
        bpm = rng.uniform(80, 160)
        beat = 60.0 / bpm
        root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
        chord_index = (t // (4 * beat)).astype(int) % 4
        y = np.zeros_like(t)
        for step, ratio in enumerate((1.0, 4 / 3, 3 / 2, 9 / 8)):
            on = chord_index == step
            for interval in (1.0, 1.26, 1.5, 2.0):
                y += on * 0.08 * np.sin(2 * np.pi * root * ratio * interval * t + rng.uniform(0, 6))
        phase = np.mod(t, beat)
        y += 0.6 * np.exp(-phase * 25) * np.sin(2 * np.pi * 55 * phase)
        off = np.mod(t + beat / 2, beat)
        y += 0.25 * np.exp(-off * 35) * rng.standard_normal(t.size)
        y += 0.02 * rng.standard_normal(t.size)
        stereo = np.stack([y, np.roll(y, 60)], axis=1) / np.max(np.abs(y)) * 0.8
        path = out_dir / f"clip-{i:02d}.mp3"
        sf.write(path, stereo.astype(np.float32), sr, format="MP3")
        paths.append(path)
    return paths


def usable_clips(clips: list[Path]) -> list[Path]:
    """The clips our extractor accepts; the rejected ones (FMA-like bad audio in a
    sample directory) are listed with their reason and left out of both sides."""
    from audio_features.features import UnusableClipError, load_audio

    usable = []
    for clip in clips:
        try:
            load_audio(clip)
        except UnusableClipError as error:
            print(f"skipped {clip}: {error.reason}", file=sys.stderr)
        else:
            usable.append(clip)
    return usable


# FMA's formula on one clip, twice: librosa compiles (or loads) its JIT on the first call,
# which is fixed cost, as the extractor's warm-up is; the second call is the per-track time.
REFERENCE_SCRIPT = """
import sys, time
from audio_features.reference import reference_features
reference_features(sys.argv[1])
started = time.perf_counter()
reference_features(sys.argv[1])
print(time.perf_counter() - started)
"""


def _timed_process(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (the process and every child it waited for), stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{command[:4]} failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def fixed_cost(*, runs: int, extractor_root: Path | None, workers: int) -> None:
    """One-track runs of our CLI (plain, and through the warm server) and of FMA's formula,
    cold then warm, interleaved run by run; see the module docstring."""
    import pandas as pd

    from audio_features.fma_schema import EXTRACT_SECONDS_COLUMN, audio_path

    root = Path(__file__).resolve().parent.parent
    python_path = os.pathsep.join(str(p) for p in (extractor_root, root) if p)
    has_server = ((extractor_root or root) / "audio_features" / "server.py").exists()
    # A short private folder: the server's Unix socket path must fit in ~100 bytes.
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="afx-") as tmp:
        tmp = Path(tmp)
        clip = make_clips(tmp, n_clips=1)[0]
        audio_dir = tmp / "audio"
        audio_path(audio_dir, 2).parent.mkdir(parents=True)
        clip.rename(audio_path(audio_dir, 2))
        tracks = tmp / "tracks.csv"
        tracks.write_text(",track,set\n,duration,subset\ntrack_id,,\n2,30.0,large\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "FMA_EXTRACTOR_SERVER"))}
        env.update(PYTHONPATH=python_path, FMA_CACHE_DIR=str(tmp / "cache"), FMA_EXTRACTOR_SERVER_IDLE_S="600")
        envs = {side: {**env, "NUMBA_CACHE_DIR": str(tmp / f"numba-{side}")} for side in ("plain", "server", "ref")}
        rows = []

        def ours(side: str, state: str, run: int) -> None:
            out = tmp / f"out-{side}-{run}"
            wall, cpu, _ = _timed_process(
                [sys.executable, "-m", "audio_features", "extract", "--audio-dir", str(audio_dir), "--tracks",
                 str(tracks), "--out", str(out), "--workers", str(workers),
                 *(("--server",) if side == "server" else ("--no-server",) if has_server else ())], envs[side])
            per_track = float(pd.read_parquet(next(out.glob("chunks/*.parquet")))[EXTRACT_SECONDS_COLUMN].sum())
            rows.append(("ours " + side, state, wall, cpu, per_track))

        try:
            for run in range(runs + 2):
                # run 0: empty JIT caches (the server starts and compiles); run 1: warm caches,
                # the server starts again (the first chunk of a DAG run); then: the server is up.
                state = "cold" if run == 0 else "warm"
                ours("plain", state, run)
                wall, cpu, printed = _timed_process(
                    [sys.executable, "-c", REFERENCE_SCRIPT, str(audio_path(audio_dir, 2))], envs["ref"])
                rows.append(("reference", state, wall - float(printed.split()[-1]), cpu, float(printed.split()[-1])))
                if has_server:
                    ours("server", "cold" if run == 0 else "start" if run == 1 else "warm", run)
                    if run == 0:
                        _stop_servers(tmp / "cache")
        finally:
            _stop_servers(tmp / "cache")
    print(f"one 30 s clip per run, fresh interpreter each; extractor ({workers} workers) from {extractor_root or root}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print("cache: cold = empty NUMBA_CACHE_DIR; warm = filled by an earlier run; server 'start' = warm cache, "
          "the run starts the server; server 'warm' = the server is up. server cpu s is the client's only.")
    print(f"{'side':12s} {'cache':5s} {'wall s':>7s} {'cpu s':>7s} {'track s':>7s} {'fixed s':>7s}")
    for side, state, wall, cpu, per_track in rows:
        print(f"{side:12s} {state:5s} {wall:7.2f} {cpu:7.2f} {per_track:7.2f} {wall - per_track:7.2f}")

    def median_fixed(side: str, state: str) -> float | None:
        fixed = sorted(w - t for name, s, w, _, t in rows if name == side and s == state)
        return fixed[len(fixed) // 2] if fixed else None

    for side, state, ref_state in (("ours plain", "cold", "cold"), ("ours server", "cold", "cold"),
                                   ("ours plain", "warm", "warm"), ("ours server", "start", "warm"),
                                   ("ours server", "warm", "warm")):
        mine, ref = median_fixed(side, state), median_fixed("reference", ref_state)
        if mine is not None:
            print(f"fixed cost {side:11s} {state:5s}: {mine:6.2f} s median vs reference {ref_state} {ref:6.2f} s "
                  f"= {mine / ref:.2f}x the reference's")


def _stop_servers(cache_dir: Path) -> None:
    """Stop the extraction servers this benchmark started (their pid files), and wait."""
    import signal

    for pid_file in cache_dir.glob("extractor-server/*.pid"):
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 60
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio-dir", type=Path, help="existing clips (*.mp3, searched recursively)")
    parser.add_argument("--clips", type=int, default=6, help="clips to generate (default 6)")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes over the clips")
    parser.add_argument("--fixed-cost", action="store_true", help="time one-track runs instead (see docstring)")
    parser.add_argument("--runs", type=int, default=3, help="warm runs of --fixed-cost (default 3)")
    parser.add_argument("--extractor-root", type=Path, help="--fixed-cost: audio_features from this folder")
    parser.add_argument("--workers", type=int, default=1, help="--fixed-cost: the extractor's workers (default 1)")
    args = parser.parse_args(argv)
    if args.fixed_cost:
        fixed_cost(runs=args.runs, extractor_root=args.extractor_root, workers=args.workers)
        return 0

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    from audio_features.features import extract_features
    from audio_features.fma_schema import FMA_LARGE_TRACKS
    from audio_features.reference import reference_features

    with tempfile.TemporaryDirectory() as tmp:
        clips = sorted(args.audio_dir.rglob("*.mp3")) if args.audio_dir else make_clips(Path(tmp), n_clips=args.clips)
        clips = usable_clips(clips)
        if not clips:
            parser.error(f"no usable .mp3 clips under {args.audio_dir}")
        extract_features(clips[0])  # warm: numba JIT, filter banks
        reference_features(clips[0])
        seconds = {"ours": 0.0, "ours_tempo": 0.0, "reference": 0.0}
        wall = dict.fromkeys(seconds, 0.0)

        def timed(name, run):
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            value = run()
            seconds[name] += time.process_time() - cpu_start
            wall[name] += time.perf_counter() - wall_start
            return value

        worst = 0.0
        for _ in range(args.repeats):
            for clip in clips:
                ours = timed("ours", lambda: extract_features(clip, tempo=False).values)
                timed("ours_tempo", lambda: extract_features(clip))
                ref = timed("reference", lambda: reference_features(clip).to_numpy())
                finite = np.isfinite(ref)
                scale = np.maximum(np.abs(ref[finite]), 1e-3)
                worst = max(worst, float(np.max(np.abs(ours[finite] - ref[finite]) / scale)))
    n = len(clips) * args.repeats
    rate = {name: n / total for name, total in seconds.items()}
    print(f"clips: {len(clips)} x {args.repeats} passes, one core, CPU time, load average {os.getloadavg()[0]:.2f}")
    print(f"ours (518)       : {rate['ours']:6.2f} tracks/s/core ({seconds['ours'] / n * 1000:.0f} ms/track)")
    print(f"ours (518+tempo) : {rate['ours_tempo']:6.2f} tracks/s/core ({seconds['ours_tempo'] / n * 1000:.0f} ms/track)")
    print(f"reference (518)  : {rate['reference']:6.2f} tracks/s/core ({seconds['reference'] / n * 1000:.0f} ms/track)")
    print(f"speedup (CPU time), same work: {rate['ours'] / rate['reference']:.2f}x; with tempo: "
          f"{rate['ours_tempo'] / rate['reference']:.2f}x; worst parity error {worst:.1e} (relative, |ref| >= 1e-3)")
    print(f"speedup (wall time), same work: {wall['reference'] / wall['ours']:.2f}x; with tempo: "
          f"{wall['reference'] / wall['ours_tempo']:.2f}x")
    for cores in (2, 16):
        hours_ours = FMA_LARGE_TRACKS / (rate["ours_tempo"] * cores) / 3600
        hours_ref = FMA_LARGE_TRACKS / (rate["reference"] * cores) / 3600
        print(f"fma_large ({FMA_LARGE_TRACKS:,} clips) on {cores:2d} cores: ours with tempo {hours_ours:5.2f} h, "
              f"reference {hours_ref:5.2f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
