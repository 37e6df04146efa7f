"""``python -m audio_features extract``: FMA's features for the tracks of a tracks.csv.

Exit codes: 0 when the command finished (extraction may have recorded failures in
``failures.csv``); 2 when it could not run (bad arguments, unreadable metadata, workers
that cannot start), with a one-line reason on stderr.

A run's fixed cost (what it pays whatever its number of tracks) is kept small, since the
ETL runs this command once per chunk: this module imports nothing heavy at the top;
numba's JIT cache defaults to the per-user ``Settings().numba_cache_dir`` (set before
numba is imported), so only the first run on a machine compiles; and the extraction
workers are started before the metadata is read, so their warm-up (librosa's imports and
JIT cache) overlaps this process's own (pandas, tracks.csv). That warm-up alone is ~4 s:
with ``--server`` (or the ``extractor_server`` setting) the run happens in the warm
extraction server instead (``audio_features.server``; ``python -m audio_features serve``),
which pays it once per machine, and this process is only its client.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from audio_features.errors import AudioFeaturesError

EXIT_OK = 0
EXIT_CANNOT_RUN = 2
TRACK_DURATION_COLUMN = ("track", "duration")


class CannotRun(AudioFeaturesError):
    """The command cannot start; its message is the one-line reason for stderr."""


def build_parser() -> argparse.ArgumentParser:
    from audio_features.extract import MAX_DECODED_SECONDS, MAX_FILE_BYTES, TRACK_TIMEOUT_SECONDS

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
    extract.add_argument("--track-timeout", type=_positive_float, default=TRACK_TIMEOUT_SECONDS, metavar="SECONDS",
                         help=f"wall-clock limit per track; past it the track fails as 'timeout' and its "
                              f"worker is replaced (default {TRACK_TIMEOUT_SECONDS:g})")
    extract.add_argument("--max-file-mb", type=_positive_float, default=MAX_FILE_BYTES / 2**20, metavar="MB",
                         help=f"larger files fail as 'file_too_large' unread (default {MAX_FILE_BYTES / 2**20:g})")
    extract.add_argument("--max-seconds", type=_positive_float, default=MAX_DECODED_SECONDS, metavar="SECONDS",
                         help=f"clips decoding to more fail as 'too_long' (default {MAX_DECODED_SECONDS:g})")
    extract.add_argument("--server", action=argparse.BooleanOptionalAction, default=None,
                         help="run in the warm extraction server, starting it if needed (default: the "
                              "extractor_server setting, FMA_EXTRACTOR_SERVER)")
    extract.set_defaults(run=run_extract)

    serve = commands.add_parser("serve", help="the warm extraction server (extract --server starts it)")
    serve.add_argument("--socket", type=Path, help="Unix socket to listen on (default: this checkout's, "
                                                   "under the per-user cache folder)")
    serve.add_argument("--idle-timeout", type=_positive_float, metavar="SECONDS",
                       help="stop after this long without a run (default: the extractor_server_idle_s setting)")
    serve.set_defaults(run=run_serve)
    return parser


def run_extract(args: argparse.Namespace) -> int:
    from audio_features.extract import ExtractionLimits, ExtractorPool, extract_tracks

    if not args.audio_dir.is_dir():
        raise CannotRun(f"audio dir not found: {args.audio_dir}")
    if not args.tracks.is_file():
        raise CannotRun(f"cannot read tracks metadata {args.tracks}: no such file")
    limits = ExtractionLimits(track_timeout_s=args.track_timeout, max_file_bytes=int(args.max_file_mb * 2**20),
                              max_seconds=args.max_seconds)
    with ExtractorPool(args.workers, limits=limits) as pool:  # warms up while the metadata is read
        track_durations = read_track_durations(args.tracks)
        track_ids = args.track_ids if args.track_ids else sorted(track_durations)
        results = extract_tracks(
            track_ids, audio_dir=args.audio_dir, out_dir=args.out, chunk_size=args.chunk_size,
            track_durations=track_durations, pool=pool,
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
    """``{track_id: track.duration}`` (NaN when absent) from FMA's tracks.csv.

    Reads only the id and duration columns: fma_large's tracks.csv has 106,574 rows of
    52 columns (free text included), and every chunk of an ETL run reads it.
    """
    import csv

    import pandas as pd

    try:
        with open(tracks_csv, newline="", encoding="utf-8") as file:
            rows = csv.reader(file)
            header = list(zip(next(rows), next(rows)))
            names_row = next(rows, [])  # pandas' index-name line: "track_id,,,..."
    except (OSError, UnicodeDecodeError, csv.Error, StopIteration) as exc:
        raise CannotRun(f"cannot read tracks metadata {tracks_csv}: {exc or 'no two-line header'}") from exc
    has_names_row = bool(names_row) and not any(names_row[1:])
    columns = [0, header.index(TRACK_DURATION_COLUMN)] if TRACK_DURATION_COLUMN in header else [0]
    try:
        table = pd.read_csv(tracks_csv, header=None, skiprows=3 if has_names_row else 2, usecols=columns,
                            dtype={0: str}, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise CannotRun(f"cannot read tracks metadata {tracks_csv}: {exc}") from exc
    ids = pd.to_numeric(table[0], errors="coerce")
    if ids.isna().any() or (ids != ids.round()).any():
        raise CannotRun(f"tracks metadata {tracks_csv} has non-integer track ids")
    if len(columns) == 2:
        durations = pd.to_numeric(table[columns[1]], errors="coerce").to_numpy(dtype=float)
    else:
        durations = [float("nan")] * len(ids)
    return dict(zip(ids.astype("int64").tolist(), map(float, durations)))


def run_serve(args: argparse.Namespace) -> int:
    from audio_features.server import serve

    settings = _settings()
    sock = args.socket or _server_socket(settings)
    serve(sock, idle_s=args.idle_timeout or settings.extractor_server_idle_s)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        use_platform_numba_cache()
        if args.command == "extract" and _wants_server(args):
            from audio_features.extract import WARM_UP_TIMEOUT_SECONDS
            from audio_features.server import run_through_server, socket_path

            settings = _settings()
            sock = socket_path(settings.cache_dir)
            if sock is None:
                print(f"warning: the extraction server's socket path under {settings.cache_dir} is too long "
                      f"for a Unix socket; extracting without it", file=sys.stderr)
            else:
                code = run_through_server(argv, sock=sock, idle_s=settings.extractor_server_idle_s,
                                          start_timeout_s=WARM_UP_TIMEOUT_SECONDS)
                if code is not None:
                    return code
        return args.run(args)
    except AudioFeaturesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN


def _wants_server(args: argparse.Namespace) -> bool:
    return args.server if args.server is not None else _settings().extractor_server


def _server_socket(settings) -> Path:
    from audio_features.server import socket_path

    sock = socket_path(settings.cache_dir)
    if sock is None:
        raise CannotRun(f"the extraction server's socket path under {settings.cache_dir} is too long for a "
                        f"Unix socket; set FMA_CACHE_DIR to a shorter folder or pass --socket")
    return sock


def _settings():
    from fma_platform.settings import Settings, SettingsError

    try:
        return Settings()
    except SettingsError as exc:
        raise CannotRun(str(exc).splitlines()[0]) from exc


def use_platform_numba_cache() -> Path:
    """Point numba (in this process and the workers) at the per-user JIT cache unless
    ``NUMBA_CACHE_DIR`` is set; bad ``FMA_*`` settings are a reason not to run."""
    from audio_features.extract import default_numba_cache_dir
    from fma_platform.settings import SettingsError

    try:
        return default_numba_cache_dir()
    except SettingsError as exc:
        raise CannotRun(str(exc).splitlines()[0]) from exc


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value
