"""The platform's default dataset: a small, clearly synthetic sample shaped exactly like FMA.

Why: the real FMA archives cannot be downloaded here, yet every layer (feature
extraction, loaders, the listener simulator, the recommender) must run on FMA's formats.
:func:`generate_sample` writes, deterministically for a seed::

    out_dir/fma_metadata/tracks.csv   52 columns, FMA's 3-line two-level header
    out_dir/fma_metadata/genres.csv   16 real top-level genres + real sub-genres
    out_dir/fma_audio/NNN/NNNNNN.mp3  30 s, 44.1 kHz mono MP3 synthesised per genre
    out_dir/manifest.json             parameters, per-file checksums, planted broken files
    out_dir/SYNTHETIC.md              plain statement that all of it is synthetic

Real FMA contains broken audio; the sample plants the same kinds (see :data:`PLANTED_KINDS`)
so that quarantine paths get exercised. Popularity counts follow long-tailed (lognormal)
distributions like FMA's, but are made up: no real listener is behind them.
Re-running with the same parameters skips clips whose checksum matches the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from audio_features.fma_schema import (
    FMA_CLIP_SECONDS,
    GENRES_COLUMNS,
    TOP_LEVEL_GENRES,
    TRACKS_COLUMNS,
    audio_path,
)
from audio_features.synth import SAMPLE_RATE, synthesize_clip
from fma_platform.files import write_bytes_atomic, write_text_atomic

log = logging.getLogger(__name__)

GENERATOR_VERSION = "1.0.0"
SYNTHETIC_MARK = "[synthetic]"
MANIFEST_NAME = "manifest.json"
METADATA_DIR = "fma_metadata"
AUDIO_DIR = "fma_audio"
SHORT_CLIP_SECONDS = 1.5
TRUNCATE_FRACTION = 0.4

# Kinds of broken audio real FMA contains, one planted track each.
PLANTED_KINDS: dict[str, str] = {
    "no_audio": "header-only MP3: a 10-byte ID3 tag and no audio frames",
    "truncated": "MP3 cut mid-frame at ~40% of its bytes; its header still claims 30 s",
    "short": f"valid MP3 of {SHORT_CLIP_SECONDS} s while tracks.csv says 30 s",
    "missing": "listed in tracks.csv but no audio file exists",
}

# Real FMA sub-genres (genre_id -> (parent, title)), a few per top-level genre.
SUB_GENRES: dict[int, tuple[int, str]] = {
    102: (2, "Middle East"), 1032: (102, "Turkish"), 86: (2, "Indian"), 92: (2, "African"),
    567: (3, "Gospel"),
    179: (4, "Big Band/Swing"), 906: (4, "Modern Jazz"), 74: (4, "Free-Jazz"),
    442: (5, "Chamber Music"), 444: (5, "Symphony"), 659: (5, "Contemporary Classical"),
    63: (9, "Bluegrass"), 137: (9, "Americana"), 651: (9, "Country & Western"),
    362: (10, "Synth Pop"), 76: (10, "Experimental Pop"),
    66: (12, "Indie-Rock"), 25: (12, "Punk"), 31: (12, "Metal"), 58: (12, "Psych-Rock"),
    311: (13, "Lounge"), 810: (13, "Nu-Jazz"),
    19: (14, "Funk"), 11: (14, "Disco"),
    181: (15, "Techno"), 182: (15, "House"), 296: (15, "Dance"),
    103: (17, "Singer-Songwriter"), 33: (17, "Psych-Folk"), 180: (17, "British Folk"),
    378: (20, "Spoken Word"), 188: (20, "Poetry"), 65: (20, "Radio"),
    811: (21, "Hip-Hop Beats"), 539: (21, "Rap"), 100: (21, "Alternative Hip-Hop"),
    32: (38, "Noise"), 47: (38, "Drone"), 250: (38, "Improv"),
    18: (1235, "Soundtrack"), 107: (1235, "Ambient"), 267: (1235, "New Age"),
}
# Bit rate -> libsndfile constant-bit-rate compression level that produces it.
BIT_RATES: dict[int, float] = {320_000: 0.0, 256_000: 0.2, 192_000: 0.4, 128_000: 0.65}
BIT_RATE_WEIGHTS = (0.5, 0.25, 0.17, 0.08)
LICENSES: tuple[str, ...] = (
    "Attribution-NonCommercial-ShareAlike 3.0 International",
    "Attribution-Noncommercial-No Derivative Works 3.0 United States",
    "Attribution-NonCommercial-NoDerivatives (aka Music Sharing) 3.0 International",
    "Attribution-NonCommercial 3.0 International",
    "Attribution 4.0 International",
    "Attribution-ShareAlike 4.0 International",
    "Creative Commons Attribution-NonCommercial-NoDerivatives 4.0",
    "CC0 1.0 Universal",
)
LICENSE_WEIGHTS = (0.3, 0.2, 0.15, 0.1, 0.1, 0.07, 0.05, 0.03)
_WORDS_A = ("Amber", "Velvet", "Hollow", "Copper", "Silent", "Paper", "Neon", "Lunar", "Rust", "Glass",
            "Quiet", "Static", "Wandering", "Cobalt", "Salt", "Orchard", "Frost", "Harbor", "Dusty", "Electric")
_WORDS_B = ("Lanterns", "Comets", "Rivers", "Machines", "Pines", "Echoes", "Foxes", "Satellites", "Bells",
            "Tides", "Signals", "Meadows", "Owls", "Engines", "Choir", "Harvest", "Gardens", "Mirrors")
_TITLE_WORDS = ("Morning", "Drift", "Signal", "Night", "Road", "Window", "Glow", "River", "Static", "Ember",
                "Circles", "Weather", "Shadow", "Harbor", "Pulse", "Letter", "Bloom", "Distance", "Paper", "Sky")


class SampleError(ValueError):
    """Raised for parameters that cannot produce a sample dataset."""


@dataclass(frozen=True)
class PlantedFile:
    """A deliberately broken audio file, as real FMA has them."""

    track_id: int
    kind: str
    path: Path
    description: str


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`generate_sample` wrote and where."""

    out_dir: Path
    tracks_csv: Path
    genres_csv: Path
    audio_dir: Path
    manifest_path: Path
    n_tracks: int
    seed: int
    genres: tuple[str, ...]
    planted: tuple[PlantedFile, ...]
    clips_written: int
    clips_skipped: int


@dataclass(frozen=True)
class ClipJob:
    """Everything needed to (re)make one audio file; picklable for worker processes."""

    track_id: int
    genre_id: int
    kind: str  # "clip" or a key of PLANTED_KINDS
    seed: int
    bit_rate: int
    path: str


@dataclass(frozen=True)
class Catalog:
    """The synthetic catalogue: FMA-format tables plus the audio each track needs."""

    tracks: pd.DataFrame
    genres: pd.DataFrame
    jobs: tuple[ClipJob, ...]


# --------------------------------------------------------------------------- catalogue


def genre_ancestors(genre_id: int) -> list[int]:
    """The genre and all its parents up to its top-level genre."""
    chain = [genre_id]
    while chain[-1] in SUB_GENRES:
        chain.append(SUB_GENRES[chain[-1]][0])
    return chain


def genre_title(genre_id: int) -> str:
    """Title of a top-level or sub-genre."""
    return TOP_LEVEL_GENRES[genre_id] if genre_id in TOP_LEVEL_GENRES else SUB_GENRES[genre_id][1]


def sub_genres_of(top_level: int) -> list[int]:
    """Sub-genre ids (any depth) whose top-level genre is ``top_level``."""
    return sorted(g for g in SUB_GENRES if genre_ancestors(g)[-1] == top_level)


def _fma_datetime(rng: np.random.Generator, start: pd.Timestamp, days: float) -> pd.Timestamp:
    """A timestamp up to ``days`` after ``start``, to the second."""
    return (start + pd.Timedelta(seconds=int(rng.uniform(0, days * 86_400)))).floor("s")


def _format_dt(value: pd.Timestamp) -> str:
    """FMA's timestamp format, e.g. ``2008-11-26 01:44:45``."""
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _name(rng: np.random.Generator, words_a: Sequence[str], words_b: Sequence[str]) -> str:
    """A made-up two-word name."""
    return f"{words_a[int(rng.integers(len(words_a)))]} {words_b[int(rng.integers(len(words_b)))]}"


def genre_track_counts(n_tracks: int, rng: np.random.Generator) -> dict[int, int]:
    """Tracks per top-level genre, balanced like fma_small; extras go to random genres."""
    order = [int(g) for g in rng.permutation(sorted(TOP_LEVEL_GENRES))]
    base, extra = divmod(n_tracks, len(order))
    return {g: base + (1 if i < extra else 0) for i, g in enumerate(order)}


def split_sizes(n: int, rng: np.random.Generator, *, max_size: int = 5) -> list[int]:
    """Partition ``n`` tracks into groups of 1..max_size (an artist's or album's tracks)."""
    sizes: list[int] = []
    while n > 0:
        size = min(n, int(rng.integers(1, max_size + 1)))
        sizes.append(size)
        n -= size
    return sizes


def assign_splits(artist_sizes: list[int], rng: np.random.Generator) -> list[str]:
    """training/validation/test per artist (no artist in two splits), ~80/10/10 of tracks."""
    total = sum(artist_sizes)
    splits = ["training"] * len(artist_sizes)
    filled = {"test": 0, "validation": 0}
    for index in rng.permutation(len(artist_sizes)):
        for split in ("test", "validation"):
            if filled[split] + artist_sizes[index] <= max(1, round(0.1 * total)):
                splits[index] = split
                filled[split] += artist_sizes[index]
                break
    return splits


def track_genres(rng: np.random.Generator, top_level: int) -> list[int]:
    """FMA ``track.genres``: one or two genres under one top level (sometimes the top itself)."""
    subs = sub_genres_of(top_level)
    if not subs or rng.random() < 0.25:
        return [top_level]
    count = 2 if len(subs) > 1 and rng.random() < 0.3 else 1
    return sorted(int(g) for g in rng.choice(subs, size=count, replace=False))


def _popularity(rng: np.random.Generator, artist_scale: float) -> dict[str, int]:
    """Long-tailed per-track counts: lognormal listens, favourites and interest from them."""
    listens = int(np.exp(rng.normal(6.3, 1.1)) * artist_scale) + 1
    favorites = int(rng.binomial(listens, rng.uniform(0.001, 0.006)))
    interest = int(listens * rng.uniform(1.3, 3.0)) + 10 * favorites
    return {"listens": listens, "favorites": favorites, "interest": interest}


def _artist_rows(rng: np.random.Generator, artist_id: int, name: str, top_level: int) -> dict:
    """Artist columns shared by all of an artist's tracks."""
    created = _fma_datetime(rng, pd.Timestamp("2008-11-25"), 8 * 365)
    located = rng.random() < 0.6
    begin = int(rng.integers(1975, 2015))
    return {
        ("artist", "active_year_begin"): f"{begin}-01-01 00:00:00" if rng.random() < 0.3 else np.nan,
        ("artist", "active_year_end"): np.nan,
        ("artist", "associated_labels"): np.nan,
        ("artist", "bio"): f"<p>{SYNTHETIC_MARK} {name} is a made-up {TOP_LEVEL_GENRES[top_level]} "
                           f"act generated for the FMA-shaped sample.</p>",
        ("artist", "comments"): int(rng.poisson(0.5)),
        ("artist", "date_created"): _format_dt(created),
        ("artist", "id"): artist_id,
        ("artist", "latitude"): round(float(rng.uniform(-45, 60)), 6) if located else np.nan,
        ("artist", "location"): f"Synthetic City {artist_id}" if located else np.nan,
        ("artist", "longitude"): round(float(rng.uniform(-120, 150)), 6) if located else np.nan,
        ("artist", "members"): np.nan,
        ("artist", "name"): name,
        ("artist", "related_projects"): np.nan,
        ("artist", "tags"): str([TOP_LEVEL_GENRES[top_level].lower()] if rng.random() < 0.4 else []),
        ("artist", "website"): f"https://example.org/synthetic/artist/{artist_id}",
        ("artist", "wikipedia_page"): np.nan,
        "_created": created,
    }


def _album_rows(rng: np.random.Generator, album_id: int, artist_created: pd.Timestamp,
                top_level: int, n_in_sample: int) -> dict:
    """Album columns (listens and favourites are filled in once its tracks exist)."""
    created = _fma_datetime(rng, artist_created, 400)
    released = _fma_datetime(rng, created - pd.Timedelta(days=200), 200).floor("D")
    album_type = "Radio Program" if top_level == 20 and rng.random() < 0.5 else (
        "Single Tracks" if n_in_sample == 1 and rng.random() < 0.5 else "Album")
    return {
        ("album", "comments"): int(rng.poisson(0.3)),
        ("album", "date_created"): _format_dt(created),
        ("album", "date_released"): _format_dt(released) if rng.random() < 0.7 else np.nan,
        ("album", "engineer"): np.nan,
        ("album", "id"): album_id,
        ("album", "information"): f"<p>{SYNTHETIC_MARK} Generated album, audio synthesised by "
                                  f"audio_features.synth v{GENERATOR_VERSION}.</p>",
        ("album", "producer"): np.nan,
        ("album", "tags"): "[]",
        ("album", "title"): _name(rng, _TITLE_WORDS, _WORDS_B),
        ("album", "tracks"): n_in_sample + int(rng.poisson(4)),
        ("album", "type"): album_type,
        "_created": created,
    }


def _track_row(rng: np.random.Generator, top_level: int, album_created: pd.Timestamp,
               number: int, split: str, artist_scale: float) -> dict:
    """One track's own columns."""
    genres = track_genres(rng, top_level)
    genres_all = sorted({a for g in genres for a in genre_ancestors(g)})
    popularity = _popularity(rng, artist_scale)
    created = _fma_datetime(rng, album_created, 3)
    spoken = top_level == 20
    return {
        ("set", "split"): split,
        ("set", "subset"): "small",
        ("track", "bit_rate"): int(rng.choice(list(BIT_RATES), p=BIT_RATE_WEIGHTS)),
        ("track", "comments"): int(rng.poisson(0.2)),
        ("track", "composer"): np.nan,
        ("track", "date_created"): _format_dt(created),
        ("track", "date_recorded"): _format_dt(created.floor("D") - pd.Timedelta(days=int(rng.integers(30, 900))))
        if rng.random() < 0.1 else np.nan,
        ("track", "duration"): int(FMA_CLIP_SECONDS),
        ("track", "favorites"): popularity["favorites"],
        ("track", "genre_top"): TOP_LEVEL_GENRES[top_level],
        ("track", "genres"): str(genres),
        ("track", "genres_all"): str(genres_all),
        ("track", "information"): f"<p>{SYNTHETIC_MARK} synthesised {TOP_LEVEL_GENRES[top_level]} clip</p>",
        ("track", "interest"): popularity["interest"],
        ("track", "language_code"): ("en" if rng.random() < (0.9 if spoken else 0.3) else np.nan),
        ("track", "license"): str(rng.choice(LICENSES, p=LICENSE_WEIGHTS)),
        ("track", "listens"): popularity["listens"],
        ("track", "lyricist"): np.nan,
        ("track", "number"): number,
        ("track", "publisher"): np.nan,
        ("track", "tags"): str([TOP_LEVEL_GENRES[top_level].lower(), "synthetic"] if rng.random() < 0.2 else []),
        ("track", "title"): _name(rng, _TITLE_WORDS, _TITLE_WORDS),
    }


def _next_track_id(rng: np.random.Generator, previous: int) -> int:
    """Sparse, increasing ids like FMA's (deleted tracks leave gaps)."""
    if previous < 2:
        return 2  # FMA's first track id
    gap = int(rng.geometric(0.35)) if rng.random() < 0.8 else int(rng.integers(5, 120))
    return previous + gap


def build_tracks(n_tracks: int, seed: int) -> pd.DataFrame:
    """The tracks table (FMA's 52 columns, index ``track_id``), a pure function of its inputs."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xFA]))
    rows: list[dict] = []
    track_id, artist_id, album_id = 1, 0, 0
    artist_plan = [(g, size) for g, count in genre_track_counts(n_tracks, rng).items()
                   for size in split_sizes(count, rng)]
    artist_plan = [artist_plan[i] for i in rng.permutation(len(artist_plan))]
    splits = assign_splits([size for _, size in artist_plan], rng)
    for (top_level, size), split in zip(artist_plan, splits):
        artist_id += int(rng.integers(1, 40))
        artist = _artist_rows(rng, artist_id, _name(rng, _WORDS_A, _WORDS_B), top_level)
        artist_scale = float(np.exp(rng.normal(0.0, 1.2)))  # some artists are far more popular
        album_rows: list[dict] = []
        for album_size in split_sizes(size, rng, max_size=4):
            album_id += int(rng.integers(1, 30))
            album = _album_rows(rng, album_id, artist["_created"], top_level, album_size)
            album_tracks = []
            for number in range(1, album_size + 1):
                track_id = _next_track_id(rng, track_id)
                row = _track_row(rng, top_level, album["_created"], number, split, artist_scale)
                album_tracks.append({("track_id", ""): track_id, **artist, **album, **row})
            # The album also has tracks outside the sample, so it has at least their listens.
            album_listens = int(sum(t[("track", "listens")] for t in album_tracks) * rng.uniform(1.0, 3.0))
            album_favorites = int(rng.poisson(album_listens * 0.0015))
            for t in album_tracks:
                t[("album", "listens")] = album_listens
                t[("album", "favorites")] = album_favorites
            album_rows.extend(album_tracks)
        artist_favorites = int(rng.poisson(sum(t[("track", "listens")] for t in album_rows) * 0.002))
        for t in album_rows:
            t[("artist", "favorites")] = artist_favorites
        rows.extend(album_rows)
    return _tracks_frame(rows)


def _tracks_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows -> DataFrame with FMA's two-level columns in FMA's order."""
    frame = pd.DataFrame([{k: v for k, v in row.items() if k != "_created"} for row in rows])
    frame = frame.set_index(("track_id", "")).sort_index()
    frame.index.name = "track_id"
    frame = frame[list(TRACKS_COLUMNS)]
    frame.columns = pd.MultiIndex.from_tuples(TRACKS_COLUMNS)
    return frame


def build_genres(tracks: pd.DataFrame) -> pd.DataFrame:
    """genres.csv: all 16 top-level genres plus the sub-genres of genres present, with counts.

    ``#tracks`` counts tracks whose ``genres_all`` contains the genre, as in FMA.
    """
    present = {int(g) for g in tracks[("track", "genre_top")].map({v: k for k, v in TOP_LEVEL_GENRES.items()})}
    ids = sorted(set(TOP_LEVEL_GENRES) | {g for g in SUB_GENRES if genre_ancestors(g)[-1] in present})
    counts: dict[int, int] = {g: 0 for g in ids}
    for genres_all in tracks[("track", "genres_all")]:
        for g in json.loads(genres_all):
            counts[g] += 1
    return pd.DataFrame({
        "genre_id": ids,
        "#tracks": [counts[g] for g in ids],
        "parent": [SUB_GENRES[g][0] if g in SUB_GENRES else 0 for g in ids],
        "title": [genre_title(g) for g in ids],
        "top_level": [genre_ancestors(g)[-1] for g in ids],
    })[list(GENRES_COLUMNS)]


def choose_planted(tracks: pd.DataFrame, seed: int) -> dict[int, str]:
    """track_id -> planted kind: one track per kind, from different genres where possible."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xBAD]))
    chosen: dict[int, str] = {}
    used_genres: set[str] = set()
    order = rng.permutation(tracks.index.to_numpy())
    for kind in PLANTED_KINDS:
        fresh = [t for t in order if t not in chosen and tracks.at[t, ("track", "genre_top")] not in used_genres]
        pick = int((fresh or [t for t in order if t not in chosen])[0])
        chosen[pick] = kind
        used_genres.add(tracks.at[pick, ("track", "genre_top")])
    return chosen


def build_catalog(audio_dir: Path, *, n_tracks: int, seed: int) -> Catalog:
    """Tables and audio jobs for a sample; deterministic for (n_tracks, seed)."""
    if n_tracks < len(PLANTED_KINDS) + 1:
        raise SampleError(f"n_tracks must be at least {len(PLANTED_KINDS) + 1}, got {n_tracks}")
    tracks = build_tracks(n_tracks, seed)
    planted = choose_planted(tracks, seed)
    title_to_id = {v: k for k, v in TOP_LEVEL_GENRES.items()}
    jobs = tuple(
        ClipJob(track_id=int(tid), genre_id=title_to_id[tracks.at[tid, ("track", "genre_top")]],
                kind=planted.get(int(tid), "clip"), seed=seed,
                bit_rate=int(tracks.at[tid, ("track", "bit_rate")]), path=str(audio_path(audio_dir, tid)))
        for tid in tracks.index
    )
    return Catalog(tracks=tracks, genres=build_genres(tracks), jobs=jobs)


# --------------------------------------------------------------------------- audio files


def encode_mp3(audio: np.ndarray, bit_rate: int) -> bytes:
    """Constant-bit-rate MP3 bytes at 44.1 kHz (libsndfile's LAME encoder, deterministic)."""
    buffer = io.BytesIO()
    sf.write(buffer, audio, SAMPLE_RATE, format="MP3", compression_level=BIT_RATES[bit_rate],
             bitrate_mode="CONSTANT")
    return buffer.getvalue()


def clip_bytes(job: ClipJob) -> tuple[bytes | None, dict]:
    """The file content for a job (None for a missing file) and facts for the manifest."""
    seconds = SHORT_CLIP_SECONDS if job.kind == "short" else FMA_CLIP_SECONDS
    if job.kind in ("missing", "no_audio"):
        return (None if job.kind == "missing" else b"ID3\x04\x00\x00\x00\x00\x00\x00"), {}
    clip = synthesize_clip(job.genre_id, seed=[job.seed, job.track_id], seconds=seconds)
    data = encode_mp3(clip.audio, job.bit_rate)
    if job.kind == "truncated":
        data = data[: int(len(data) * TRUNCATE_FRACTION) + 7]  # +7: never on a frame boundary
    facts = {"bpm": None if clip.bpm is None else round(clip.bpm, 2), "key": clip.key, "scale": clip.scale}
    return data, facts


def write_clip(job: ClipJob) -> dict:
    """Make one job's file atomically (or remove it for a planted missing file)."""
    path = Path(job.path)
    data, facts = clip_bytes(job)
    if data is None:
        path.unlink(missing_ok=True)
        return {"track_id": job.track_id, "kind": job.kind, "sha1": None, "bytes": 0, **facts}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
    return {"track_id": job.track_id, "kind": job.kind, "sha1": hashlib.sha1(data).hexdigest(),
            "bytes": len(data), **facts}


def file_sha1(path: Path) -> str | None:
    """SHA-1 of a file's bytes, or None when it does not exist."""
    return hashlib.sha1(path.read_bytes()).hexdigest() if path.exists() else None


# --------------------------------------------------------------------------- manifest, docs


def sample_parameters(n_tracks: int, seed: int) -> dict:
    """Everything that decides the sample's content; a change invalidates existing clips."""
    return {"generator_version": GENERATOR_VERSION, "n_tracks": n_tracks, "seed": seed,
            "clip_seconds": FMA_CLIP_SECONDS, "short_clip_seconds": SHORT_CLIP_SECONDS,
            "sample_rate": SAMPLE_RATE, "channels": 1, "format": "MP3 (CBR)"}


def read_manifest(out_dir: Path) -> dict | None:
    """The previous run's manifest, or None when absent or unreadable (then all is remade)."""
    path = out_dir / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        log.warning("ignoring unreadable %s (%s); regenerating every clip", path, err)
        return None


def reusable_files(previous: dict | None, parameters: dict) -> dict[int, dict]:
    """Per-track records of the previous run when it used identical parameters."""
    if previous is None or previous.get("parameters") != parameters:
        return {}
    return {int(tid): record for tid, record in previous.get("files", {}).items()}


def remove_stale_files(previous: dict | None, out_dir: Path, keep: set[Path]) -> None:
    """Delete audio files a previous run listed that the current sample does not contain."""
    if previous is None:
        return
    audio_root = (out_dir / AUDIO_DIR).resolve()
    for record in previous.get("files", {}).values():
        path = (out_dir / record["path"]).resolve()
        if path not in keep and audio_root in path.parents:
            path.unlink(missing_ok=True)


def build_manifest(catalog: Catalog, parameters: dict, records: dict[int, dict], out_dir: Path) -> dict:
    """manifest.json content: synthetic flag, parameters, genres, planted files, checksums."""
    jobs = {job.track_id: job for job in catalog.jobs}
    files = {}
    for tid in sorted(records):
        rel = Path(jobs[tid].path).relative_to(out_dir).as_posix()
        files[str(tid)] = {"path": rel, "genre_id": jobs[tid].genre_id, **records[tid]}
    return {
        "synthetic": True,
        "description": "Synthetic FMA-shaped sample: made-up metadata and synthesised audio, not real FMA data.",
        "generator": "audio_features.sample.generate_sample",
        "parameters": parameters,
        "genres": sorted(catalog.tracks[("track", "genre_top")].unique().tolist()),
        "planted": [{"track_id": tid, "kind": jobs[tid].kind, "path": files[str(tid)]["path"],
                     "description": PLANTED_KINDS[jobs[tid].kind]}
                    for tid in sorted(jobs) if jobs[tid].kind != "clip"],
        "files": files,
    }


def synthetic_readme(manifest: dict) -> str:
    """SYNTHETIC.md: what this folder is, in plain words."""
    p = manifest["parameters"]
    planted = "\n".join(f"- `{item['path']}` (track {item['track_id']}): **{item['kind']}**, {item['description']}"
                        for item in manifest["planted"])
    return (
        "# SYNTHETIC DATA: not the Free Music Archive\n\n"
        "Everything in this folder was generated by a program. The metadata (artists, albums, titles,\n"
        "dates, listens, favorites) is made up and the audio is synthesised from code; no real music,\n"
        "artist or listener is behind it. It only has the *shape* of FMA (`fma_metadata/tracks.csv`,\n"
        "`genres.csv`, `fma_audio/NNN/NNNNNN.mp3`) so the platform runs without downloading FMA.\n"
        f"Text columns carry the mark `{SYNTHETIC_MARK}`.\n\n"
        "## Creation parameters\n\n"
        f"- generator: `{manifest['generator']}` version {p['generator_version']}\n"
        f"- seed: {p['seed']}\n- n_tracks: {p['n_tracks']}\n"
        f"- clips: {p['clip_seconds']} s, {p['sample_rate']} Hz, {p['channels']} channel, {p['format']}\n"
        f"- genres used: {', '.join(manifest['genres'])}\n\n"
        "## Deliberately broken files (as real FMA has)\n\n"
        f"{planted}\n\n"
        "Regenerate: `python -m audio_features sample --out DIR "
        f"--tracks {p['n_tracks']} --seed {p['seed']}`.\n"
    )


def _run_jobs(jobs: Sequence[ClipJob], workers: int) -> Iterator[dict]:
    """Results of ``write_clip`` over jobs, in a process pool when ``workers`` > 1."""
    if workers <= 1:
        yield from map(write_clip, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(write_clip, jobs, chunksize=2)


# --------------------------------------------------------------------------- entrypoint


def generate_sample(out_dir: Path, *, n_tracks: int = 120, seed: int = 7, workers: int = 1,
                    progress: bool = True) -> SampleSummary:
    """Write the synthetic FMA-shaped sample dataset to ``out_dir`` (idempotent).

    Parameters
    ----------
    out_dir : Path
        Folder to create or update.
    n_tracks : int
        Tracks in tracks.csv (at least 5; 16 or more covers every top-level genre).
    seed : int
        Same seed and size give byte-identical files.
    workers : int
        Processes synthesising clips (1 = in this process).
    progress : bool
        Show a tqdm bar over clips.

    Returns
    -------
    SampleSummary
        Paths, genres present, planted broken files, and clips written vs reused.
    """
    out_dir = Path(out_dir)
    metadata_dir, audio_dir = out_dir / METADATA_DIR, out_dir / AUDIO_DIR
    catalog = build_catalog(audio_dir, n_tracks=n_tracks, seed=seed)
    parameters = sample_parameters(n_tracks, seed)
    previous = read_manifest(out_dir)
    reusable = reusable_files(previous, parameters)
    metadata_dir.mkdir(parents=True, exist_ok=True)
    audio_dir.mkdir(parents=True, exist_ok=True)
    catalog.tracks.to_csv(metadata_dir / "tracks.csv")
    catalog.genres.to_csv(metadata_dir / "genres.csv", index=False)
    remove_stale_files(previous, out_dir, {Path(job.path).resolve() for job in catalog.jobs})

    records: dict[int, dict] = {}
    todo: list[ClipJob] = []
    for job in catalog.jobs:
        old = reusable.get(job.track_id)
        if old is not None and old.get("sha1") == file_sha1(Path(job.path)):
            records[job.track_id] = {k: v for k, v in old.items() if k not in ("path", "genre_id")}
        else:
            todo.append(job)
    with tqdm(total=len(todo), desc="synthesising clips", unit="clip", disable=not progress) as bar:
        for record in _run_jobs(todo, workers):
            records[record["track_id"]] = record
            bar.update(1)

    manifest = build_manifest(catalog, parameters, records, out_dir)
    write_text_atomic(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    write_text_atomic(out_dir / "SYNTHETIC.md", synthetic_readme(manifest))
    planted = tuple(PlantedFile(track_id=item["track_id"], kind=item["kind"], path=out_dir / item["path"],
                                description=item["description"]) for item in manifest["planted"])
    log.info("sample in %s: %d clips written, %d reused", out_dir, len(todo), len(catalog.jobs) - len(todo))
    return SampleSummary(
        out_dir=out_dir, tracks_csv=metadata_dir / "tracks.csv", genres_csv=metadata_dir / "genres.csv",
        audio_dir=audio_dir, manifest_path=out_dir / MANIFEST_NAME, n_tracks=n_tracks, seed=seed,
        genres=tuple(manifest["genres"]), planted=planted, clips_written=len(todo),
        clips_skipped=len(catalog.jobs) - len(todo),
    )


__all__ = ["GENERATOR_VERSION", "PLANTED_KINDS", "PlantedFile", "SampleError", "SampleSummary",
           "build_catalog", "generate_sample"]
