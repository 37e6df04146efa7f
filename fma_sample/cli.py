"""``python -m fma_sample``: write the synthetic sample, or build the recorded-music corpus.

- ``python -m fma_sample --out DIR [--tracks N] [--seed S] [--workers W]``: the synthetic sample;
- ``python -m fma_sample recorded [--out DIR] [--workers W]``: the real-music corpus from Debian
  packages (:mod:`fma_sample.recorded`), built once and reused while its recipe holds.

Exit codes: 0 when the folder was written (or found up to date); 2 when it could not be
(bad arguments, parameters that cannot make a sample, a package that cannot be fetched),
with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from fma_sample.errors import SampleError

EXIT_OK = 0
EXIT_CANNOT_RUN = 2
RECORDED_COMMAND = "recorded"


def build_parser() -> argparse.ArgumentParser:
    from fma_sample.sample import DEFAULT_SEED, DEFAULT_TRACKS

    parser = argparse.ArgumentParser(
        prog="python -m fma_sample",
        description="Write a synthetic, FMA-shaped sample dataset (made-up metadata, synthesised audio). "
                    f"`python -m fma_sample {RECORDED_COMMAND} --help`: the real-music corpus instead.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (created or updated)")
    parser.add_argument("--tracks", type=_positive_int, default=DEFAULT_TRACKS,
                        help=f"number of tracks (default {DEFAULT_TRACKS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--workers", type=_positive_int, default=1, help="processes synthesising clips (default 1)")
    return parser


def build_recorded_parser() -> argparse.ArgumentParser:
    from fma_sample.recorded import DEFAULT_WORKERS, SOURCES

    parser = argparse.ArgumentParser(
        prog=f"python -m fma_sample {RECORDED_COMMAND}",
        description="Build (once) the corpus of real recorded music in FMA's layout from Debian packages "
                    f"({', '.join(s.package for s in SOURCES)}): apt-get download + dpkg -x, nothing installed.",
    )
    parser.add_argument("--out", type=Path, default=None,
                        help="corpus folder (default: Settings.recorded_corpus_dir, "
                             "~/.cache/fma-platform/recorded-corpus)")
    parser.add_argument("--workers", type=_positive_int, default=DEFAULT_WORKERS,
                        help=f"processes cutting and encoding clips (default {DEFAULT_WORKERS})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [RECORDED_COMMAND]:
        return run_recorded(argv[1:])
    return run_sample(argv)


def run_sample(argv: Sequence[str]) -> int:
    from fma_sample.sample import generate_sample

    args = build_parser().parse_args(argv)
    try:
        summary = generate_sample(args.out, n_tracks=args.tracks, seed=args.seed, workers=args.workers)
    except SampleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    print(f"sample of {summary.n_tracks} tracks in {summary.out_dir}: {summary.clips_written} clips written, "
          f"{summary.clips_skipped} reused, {len(summary.planted)} planted broken files")
    return EXIT_OK


def run_recorded(argv: Sequence[str]) -> int:
    from fma_sample.recorded import ensure_recorded_corpus

    args = build_recorded_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        corpus = ensure_recorded_corpus(args.out, workers=args.workers)
    except SampleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    sources = ", ".join(f"{name} {s['version']} ({s['clips']})" for name, s in corpus.manifest["sources"].items())
    state = f"built in {time.perf_counter() - started:.1f} s" if corpus.built else "up to date"
    print(f"recorded corpus in {corpus.out_dir} ({state}): {len(corpus.clip_ids)} clips from {sources}; "
          f"{len(corpus.planted)} planted broken files")
    return EXIT_OK


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
