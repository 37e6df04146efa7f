"""``python -m audio_features extract``: FMA's features for the tracks of a tracks.csv.

Exit codes: 0 when the command finished (extraction may have recorded failures in
``failures.csv``); 2 when it could not run (bad arguments, unreadable metadata), with
a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from audio_features.errors import AudioFeaturesError

EXIT_OK = 0
EXIT_CANNOT_RUN = 2


class CannotRun(AudioFeaturesError):
    """The command cannot start; its message is the one-line reason for stderr."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audio_features",
        description="FMA-compatible audio features for the music recommendation platform.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    extract = commands.add_parser("extract", help="compute FMA's 518 features for many tracks")
    extract.add_argument("--audio-dir", type=Path, required=True, help="FMA audio folder (000/000002.mp3)")
    extract.add_argument("--tracks", type=Path, required=True, help="FMA tracks.csv (two-level header)")
    extract.add_argument("--out", type=Path, required=True, help="output folder (resumable)")
    extract.add_argument("--workers", type=_positive_int, default=1, help="worker processes (default 1)")
    extract.add_argument("--chunk-size", type=_positive_int, default=500, help="tracks per chunk (default 500)")
    extract.add_argument("--track-ids", type=int, nargs="+", metavar="ID", help="only these tracks (default: all)")
    extract.set_defaults(run=run_extract)
    return parser


def run_extract(args: argparse.Namespace) -> int:
    from audio_features.extract import extract_tracks

    if not args.audio_dir.is_dir():
        raise CannotRun(f"audio dir not found: {args.audio_dir}")
    track_durations = read_track_durations(args.tracks)
    track_ids = args.track_ids if args.track_ids else sorted(track_durations)
    results = extract_tracks(
        track_ids, audio_dir=args.audio_dir, out_dir=args.out, workers=args.workers,
        chunk_size=args.chunk_size, track_durations=track_durations,
    )
    n_ok = sum(r.n_extracted for r in results)
    n_failed = sum(r.n_failed for r in results)
    n_skipped = sum(r.skipped for r in results)
    print(
        f"{n_ok} tracks extracted, {n_failed} failed, {n_skipped} chunks already done; "
        f"see {args.out}",
    )
    return EXIT_OK


def read_track_durations(tracks_csv: Path) -> dict[int, float]:
    """``{track_id: track.duration}`` (NaN when absent) from FMA's tracks.csv."""
    import pandas as pd

    try:
        tracks = pd.read_csv(tracks_csv, index_col=0, header=[0, 1])
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise CannotRun(f"cannot read tracks metadata {tracks_csv}: {exc}") from exc
    try:
        ids = tracks.index.astype("int64")
    except (TypeError, ValueError) as exc:
        raise CannotRun(f"tracks metadata {tracks_csv} has non-integer track ids") from exc
    if ("track", "duration") in tracks.columns:
        durations = pd.to_numeric(tracks["track", "duration"], errors="coerce").to_numpy()
    else:
        durations = [float("nan")] * len(ids)
    return dict(zip(ids.tolist(), map(float, durations)))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CannotRun as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
