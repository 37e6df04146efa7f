"""Write the synthetic sample: a folder shaped exactly like FMA, made by a program.

Why: the real FMA archives cannot be downloaded here, yet every layer (feature
extraction, loaders, the listener simulator, the recommender) must run on FMA's formats.
:func:`generate_sample` writes, deterministically for a seed::

    out_dir/fma_metadata/tracks.csv   52 columns, FMA's 3-line two-level header
    out_dir/fma_metadata/genres.csv   16 real top-level genres + real sub-genres
    out_dir/fma_audio/NNN/NNNNNN.mp3  30 s, 44.1 kHz mono MP3 synthesised per genre
    out_dir/manifest.json             parameters, per-file checksums, planted broken files
    out_dir/SYNTHETIC.md              plain statement that all of it is synthetic

The tables come from :mod:`fma_sample.tracks` and are written by the same writers that
write real FMA metadata (:mod:`audio_features.metadata`); the clips from
:mod:`fma_sample.recipes`. Real FMA contains broken audio; the sample plants the same
kinds (see :data:`PLANTED_KINDS`) so that quarantine paths get exercised. Re-running
with the same parameters skips clips whose checksum matches the manifest.
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

from audio_features.acquire import file_sha1
from audio_features.fma_schema import FMA_CLIP_SECONDS, TOP_LEVEL_GENRES, audio_path
from audio_features.metadata import write_genres_csv, write_tracks_csv
from fma_platform.files import write_bytes_atomic, write_text_atomic
from fma_sample import GENERATOR_VERSION
from fma_sample.errors import SampleError
from fma_sample.recipes import synthesize_clip
from fma_sample.synth import SAMPLE_RATE
from fma_sample.tracks import SYNTHETIC_MARK, build_genres, build_tracks

log = logging.getLogger(__name__)

DEFAULT_TRACKS = 120
DEFAULT_SEED = 7
MANIFEST_NAME = "manifest.json"
METADATA_DIR = "fma_metadata"
AUDIO_DIR = "fma_audio"
TRACKS_CSV = "tracks.csv"
GENRES_CSV = "genres.csv"
SHORT_CLIP_SECONDS = 1.5
TRUNCATE_FRACTION = 0.4
# libsndfile's constant-bit-rate compression level that gives each bit rate tracks.csv lists.
COMPRESSION_LEVELS: dict[int, float] = {320_000: 0.0, 256_000: 0.2, 192_000: 0.4, 128_000: 0.65}

# Kinds of broken audio real FMA contains, one planted track each.
PLANTED_KINDS: dict[str, str] = {
    "no_audio": "header-only MP3: a 10-byte ID3 tag and no audio frames",
    "truncated": "MP3 cut mid-frame at ~40% of its bytes; its header still claims 30 s",
    "short": f"valid MP3 of {SHORT_CLIP_SECONDS} s while tracks.csv says 30 s",
    "missing": "listed in tracks.csv but no audio file exists",
}


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
class SamplePlan:
    """What a sample holds before anything is written: FMA's two tables and one job per clip."""

    tracks: pd.DataFrame
    genres: pd.DataFrame
    jobs: tuple[ClipJob, ...]


# --------------------------------------------------------------------------- plan


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


def plan_sample(audio_dir: Path, *, n_tracks: int, seed: int) -> SamplePlan:
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
    return SamplePlan(tracks=tracks, genres=build_genres(tracks), jobs=jobs)


# --------------------------------------------------------------------------- audio files


def encode_mp3(audio: np.ndarray, bit_rate: int, *, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Constant-bit-rate MP3 bytes (libsndfile's LAME encoder, deterministic).

    ``audio`` is mono ``(n,)`` or ``(n, channels)``; ``bit_rate`` a key of :data:`COMPRESSION_LEVELS`.
    """
    buffer = io.BytesIO()
    sf.write(buffer, audio, sample_rate, format="MP3", compression_level=COMPRESSION_LEVELS[bit_rate],
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


def _existing_sha1(path: Path) -> str | None:
    """SHA-1 of a file's bytes, or None when it does not exist."""
    return file_sha1(path) if path.exists() else None


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


def build_manifest(plan: SamplePlan, parameters: dict, records: dict[int, dict], out_dir: Path) -> dict:
    """manifest.json content: synthetic flag, parameters, genres, planted files, checksums."""
    jobs = {job.track_id: job for job in plan.jobs}
    files = {}
    for tid in sorted(records):
        rel = Path(jobs[tid].path).relative_to(out_dir).as_posix()
        files[str(tid)] = {"path": rel, "genre_id": jobs[tid].genre_id, **records[tid]}
    return {
        "synthetic": True,
        "description": "Synthetic FMA-shaped sample: made-up metadata and synthesised audio, not real FMA data.",
        "generator": "fma_sample.sample.generate_sample",
        "parameters": parameters,
        "genres": sorted(plan.tracks[("track", "genre_top")].unique().tolist()),
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
        "Regenerate: `python -m fma_sample --out DIR "
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


def generate_sample(out_dir: Path, *, n_tracks: int = DEFAULT_TRACKS, seed: int = DEFAULT_SEED, workers: int = 1,
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
    plan = plan_sample(audio_dir, n_tracks=n_tracks, seed=seed)
    parameters = sample_parameters(n_tracks, seed)
    previous = read_manifest(out_dir)
    reusable = reusable_files(previous, parameters)
    metadata_dir.mkdir(parents=True, exist_ok=True)
    audio_dir.mkdir(parents=True, exist_ok=True)
    write_tracks_csv(plan.tracks, metadata_dir / TRACKS_CSV)
    write_genres_csv(plan.genres, metadata_dir / GENRES_CSV)
    remove_stale_files(previous, out_dir, {Path(job.path).resolve() for job in plan.jobs})

    records: dict[int, dict] = {}
    todo: list[ClipJob] = []
    for job in plan.jobs:
        old = reusable.get(job.track_id)
        if old is not None and old.get("sha1") == _existing_sha1(Path(job.path)):
            records[job.track_id] = {k: v for k, v in old.items() if k not in ("path", "genre_id")}
        else:
            todo.append(job)
    with tqdm(total=len(todo), desc="synthesising clips", unit="clip", disable=not progress) as bar:
        for record in _run_jobs(todo, workers):
            records[record["track_id"]] = record
            bar.update(1)

    manifest = build_manifest(plan, parameters, records, out_dir)
    write_text_atomic(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    write_text_atomic(out_dir / "SYNTHETIC.md", synthetic_readme(manifest))
    planted = tuple(PlantedFile(track_id=item["track_id"], kind=item["kind"], path=out_dir / item["path"],
                                description=item["description"]) for item in manifest["planted"])
    log.info("sample in %s: %d clips written, %d reused", out_dir, len(todo), len(plan.jobs) - len(todo))
    return SampleSummary(
        out_dir=out_dir, tracks_csv=metadata_dir / TRACKS_CSV, genres_csv=metadata_dir / GENRES_CSV,
        audio_dir=audio_dir, manifest_path=out_dir / MANIFEST_NAME, n_tracks=n_tracks, seed=seed,
        genres=tuple(manifest["genres"]), planted=planted, clips_written=len(todo),
        clips_skipped=len(plan.jobs) - len(todo),
    )
