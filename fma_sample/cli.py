"""``python -m fma_sample --out DIR [--tracks N] [--seed S] [--workers W]``: write a sample.

Exit codes: 0 when the sample was written (or found up to date); 2 when it could not be
(bad arguments, or parameters that cannot make a sample), with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fma_sample.errors import SampleError

EXIT_OK = 0
EXIT_CANNOT_RUN = 2


def build_parser() -> argparse.ArgumentParser:
    from fma_sample.sample import DEFAULT_SEED, DEFAULT_TRACKS

    parser = argparse.ArgumentParser(
        prog="python -m fma_sample",
        description="Write a synthetic, FMA-shaped sample dataset (made-up metadata, synthesised audio).",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (created or updated)")
    parser.add_argument("--tracks", type=_positive_int, default=DEFAULT_TRACKS,
                        help=f"number of tracks (default {DEFAULT_TRACKS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--workers", type=_positive_int, default=1, help="processes synthesising clips (default 1)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
