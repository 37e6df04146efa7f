"""Build the recorded-music corpus: real, freely licensed music from Debian, in FMA's layout.

Why: until issue 12 the suite had only seen the synthetic sample, and real recordings broke
what synthesised clips never did (a tonnetz maximum of exactly 1.0, 48 kHz MP3s, clips far
shorter than 30 s). :func:`ensure_recorded_corpus` gives a folder the platform reads as it
reads FMA::

    out_dir/fma_metadata/tracks.csv   FMA's 52 columns; artist = package, genre = package (SOURCES)
    out_dir/fma_metadata/genres.csv   as the synthetic sample writes it
    out_dir/fma_audio/NNN/NNNNNN.mp3  30 s from the middle of each track (the whole track when
                                      shorter), at the source's own sample rate, stereo, CBR MP3
    out_dir/licenses/PKG.copyright    each package's Debian copyright file (the licence text)
    out_dir/manifest.json             package versions, each clip's origin and checksum, planted files
    out_dir/RECORDED.md               the same in plain words
    out_dir/recipe.json               what the corpus was built from; a different recipe rebuilds it

How: ``apt-get download`` and ``dpkg -x`` into a temporary folder (nothing is installed),
cut with soundfile, MP3 by libsndfile's LAME encoder (:func:`fma_sample.sample.encode_mp3`);
the tables go through the same writers as the synthetic sample's. Like real FMA (and the
synthetic sample), the corpus holds broken files on purpose (:data:`PLANTED_KINDS`), each
with the reason the extractor must give. A build runs under a file lock in a temporary
folder that is renamed into place only when complete, so concurrent or killed builds never
leave half a corpus; it is rebuilt only when the recipe (:data:`RECIPE_VERSION`,
:data:`SOURCES`) changed or a listed file is gone.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from audio_features.features import (
    REASON_EMPTY_FILE,
    REASON_MISSING_FILE,
    REASON_NOT_AUDIO,
    REASON_SILENT,
    REASON_TOO_SHORT,
    REASON_TRUNCATED,
)
from audio_features.fma_schema import FMA_CLIP_SECONDS, TOP_LEVEL_GENRES, audio_path
from audio_features.metadata import write_genres_csv, write_tracks_csv
from fma_platform.files import exclusive_lock, write_text_atomic
from fma_platform.settings import get_settings
from fma_sample.errors import SampleError
from fma_sample.sample import (
    AUDIO_DIR,
    COMPRESSION_LEVELS,
    GENRES_CSV,
    MANIFEST_NAME,
    METADATA_DIR,
    TRACKS_CSV,
    TRUNCATE_FRACTION,
    PlantedFile,
    encode_mp3,
)
from fma_sample.tracks import build_genres, tracks_frame

log = logging.getLogger(__name__)

# Part of the recipe: a new version rebuilds every user's corpus.
RECIPE_VERSION = "1"
RECIPE_NAME = "recipe.json"
LICENSES_DIR = "licenses"
TOO_SHORT_SECONDS = 0.5  # under the extractor's 1 s minimum
NOT_AUDIO_BYTES = 64 * 1024
SEED = 12  # of the planted random bytes
# FMA-like sparse ids spread over several NNN folders: 2, 39, 76, ...
TRACK_ID_START, TRACK_ID_STEP = 2, 37
APT_LISTS_DIR = Path("/var/lib/apt/lists")
APT_TIMEOUT_SECONDS = 1800
DEFAULT_WORKERS = 2


class RecordedCorpusError(SampleError):
    """The recorded corpus cannot be built: a package cannot be fetched, unpacked or used."""


@dataclass(frozen=True)
class Source:
    """A Debian package of freely licensed music and the FMA top-level genre standing for it.

    The genre is a label for the source (so "same genre" means "same package"), not a
    judgement of the music: similar-track tests score neighbours from the same package.
    """

    package: str
    genre_id: int
    suffix: str  # the package's music files end so


SOURCES: tuple[Source, ...] = (
    Source("warzone2100-music", 1235, ".opus"),  # Instrumental; 30 Opus tracks, 48 kHz
    Source("extremetuxracer-data", 15, ".ogg"),  # Electronic; 10 Ogg Vorbis tracks
    Source("xmoto-data", 12, ".ogg"),  # Rock; 7 Ogg Vorbis tracks
    Source("lincity-ng-data", 13, ".ogg"),  # Easy Listening; 3 Ogg Vorbis tracks
)


@dataclass(frozen=True)
class PlantedKind:
    """A kind of broken file real FMA has, and the extractor's reason for refusing it."""

    description: str
    expected_reason: str


PLANTED_KINDS: dict[str, PlantedKind] = {
    "missing": PlantedKind("listed in tracks.csv but no audio file exists", REASON_MISSING_FILE),
    "empty": PlantedKind("a zero-byte file", REASON_EMPTY_FILE),
    "not_audio": PlantedKind(f"{NOT_AUDIO_BYTES // 1024} KiB of random bytes named .mp3", REASON_NOT_AUDIO),
    "truncated": PlantedKind("a real 30 s clip's MP3 cut mid-frame at ~40% of its bytes", REASON_TRUNCATED),
    "silent": PlantedKind("30 s of digital silence, a valid MP3", REASON_SILENT),
    "too_short": PlantedKind(f"a valid MP3 of {TOO_SHORT_SECONDS} s of real music while tracks.csv gives "
                             "the whole track's duration", REASON_TOO_SHORT),
}


@dataclass(frozen=True)
class UnpackedPackage:
    """A Debian package unpacked with ``dpkg -x`` (nothing installed)."""

    package: str
    version: str
    root: Path


@dataclass(frozen=True)
class SourceTrack:
    """One music file of an unpacked package."""

    package: str
    path: Path
    relative: str  # path inside the package
    seconds: float
    sample_rate: int
    channels: int

    @property
    def title(self) -> str:
        return self.path.stem.replace("_", " ")


@dataclass(frozen=True)
class CutJob:
    """One output file: which part of which source, how it is encoded or broken; picklable."""

    track_id: int
    kind: str  # "clip" or a key of PLANTED_KINDS
    source: str  # the source file
    start_seconds: float
    seconds: float  # of audio to take (the whole track when it is shorter than a clip)
    bit_rate: int
    path: str


@dataclass(frozen=True)
class RecordedCorpus:
    """Where the corpus is and what is in it (``manifest`` is manifest.json's content)."""

    out_dir: Path
    manifest: dict
    built: bool  # False: found complete and reused

    @property
    def tracks_csv(self) -> Path:
        return self.out_dir / METADATA_DIR / TRACKS_CSV

    @property
    def genres_csv(self) -> Path:
        return self.out_dir / METADATA_DIR / GENRES_CSV

    @property
    def metadata_dir(self) -> Path:
        return self.out_dir / METADATA_DIR

    @property
    def audio_dir(self) -> Path:
        return self.out_dir / AUDIO_DIR

    @property
    def clip_ids(self) -> list[int]:
        """Tracks whose file is a real clip of music."""
        return sorted(int(t) for t, f in self.manifest["files"].items() if f["kind"] == "clip")

    @property
    def planted(self) -> tuple[PlantedFile, ...]:
        return tuple(PlantedFile(track_id=p["track_id"], kind=p["kind"], path=self.out_dir / p["path"],
                                 description=p["description"]) for p in self.manifest["planted"])

    @property
    def expected_failures(self) -> dict[int, str]:
        """track_id -> the reason the extractor must give for each planted file."""
        return {p["track_id"]: p["expected_reason"] for p in self.manifest["planted"]}


Fetch = Callable[[Sequence[str], Path], list[UnpackedPackage]]


# --------------------------------------------------------------------------- entrypoint


def ensure_recorded_corpus(out_dir: Path | str | None = None, *, workers: int = DEFAULT_WORKERS,
                           progress: bool = True, sources: Sequence[Source] = SOURCES,
                           fetch: Fetch | None = None) -> RecordedCorpus:
    """The recorded corpus at ``out_dir``, built first when missing, stale or incomplete.

    Parameters
    ----------
    out_dir : Path, str or None
        Corpus folder; None: ``Settings.recorded_corpus_dir`` (per user, never committed).
    workers : int
        Processes cutting and encoding clips.
    progress : bool
        Show a tqdm bar over the clips.
    sources : sequence of Source
        Packages to take music from (part of the recipe).
    fetch : callable or None
        ``fetch(packages, work_dir) -> [UnpackedPackage]``; None: :func:`fetch_packages`
        (``apt-get download`` + ``dpkg -x``).

    Raises
    ------
    RecordedCorpusError
        A package cannot be downloaded (named, with apt's reason) or holds no music.
    """
    out_dir = Path(out_dir) if out_dir is not None else get_settings().recorded_corpus_dir
    recipe = corpus_recipe(sources)
    if corpus_is_complete(out_dir, recipe):
        return load_corpus(out_dir, built=False)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = out_dir.parent / f".{out_dir.name}.lock"
    with exclusive_lock(lock, waiting="waiting for another build of the recorded corpus"):
        if corpus_is_complete(out_dir, recipe):  # built by another process while we waited
            return load_corpus(out_dir, built=False)
        remove_leftover_builds(out_dir)
        build_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build-", dir=out_dir.parent))
        build_dir.chmod(0o755)  # mkdtemp makes it private; the corpus is ordinary data
        try:
            fetch = fetch or functools.partial(fetch_packages, progress=progress)
            build_corpus(build_dir, sources=sources, fetch=fetch, workers=workers, progress=progress)
            replace_folder(build_dir, out_dir)
        finally:
            if build_dir.exists():  # the build failed: drop what it wrote
                shutil.rmtree(build_dir)
    return load_corpus(out_dir, built=True)


def corpus_recipe(sources: Sequence[Source]) -> dict:
    """Everything that decides the corpus's content; stored as recipe.json."""
    return {"recipe_version": RECIPE_VERSION, "sources": [asdict(s) for s in sources],
            "clip_seconds": FMA_CLIP_SECONDS, "planted": sorted(PLANTED_KINDS)}


def load_corpus(out_dir: Path, *, built: bool) -> RecordedCorpus:
    return RecordedCorpus(out_dir=out_dir, manifest=json.loads((out_dir / MANIFEST_NAME).read_text()), built=built)


def corpus_is_complete(out_dir: Path, recipe: dict) -> bool:
    """True when ``out_dir`` was built from ``recipe`` and every file it lists is there, whole."""
    try:
        stamp = json.loads((out_dir / RECIPE_NAME).read_text())
        manifest = json.loads((out_dir / MANIFEST_NAME).read_text())
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as exc:
        log.warning("rebuilding the recorded corpus in %s: %s", out_dir, exc)
        return False
    if stamp != recipe:
        log.info("rebuilding the recorded corpus in %s: its recipe changed", out_dir)
        return False
    expected = {METADATA_DIR + "/" + TRACKS_CSV: None, METADATA_DIR + "/" + GENRES_CSV: None}
    expected |= {f["path"]: f["bytes"] for f in manifest["files"].values() if f["kind"] != "missing"}
    for relative, size in expected.items():
        path = out_dir / relative
        if not path.is_file() or (size is not None and path.stat().st_size != size):
            log.info("rebuilding the recorded corpus in %s: %s is missing or changed", out_dir, relative)
            return False
    planted_missing = [f["path"] for f in manifest["files"].values() if f["kind"] == "missing"]
    if any((out_dir / relative).exists() for relative in planted_missing):
        log.info("rebuilding the recorded corpus in %s: a file planted as missing exists", out_dir)
        return False
    return True


# --------------------------------------------------------------------------- build folder, lock


def remove_leftover_builds(out_dir: Path) -> None:
    """Delete what killed builds left beside ``out_dir`` (call under the lock only)."""
    for pattern in (f".{out_dir.name}.build-*", f".{out_dir.name}.old-*"):
        for leftover in out_dir.parent.glob(pattern):
            log.info("removing an unfinished build: %s", leftover)
            shutil.rmtree(leftover)


def replace_folder(built: Path, target: Path) -> None:
    """Put a complete build at ``target``; an older corpus is moved aside, then deleted."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
    os.rename(built, target)
    if old is not None:
        shutil.rmtree(old)


# --------------------------------------------------------------------------- Debian packages


def fetch_packages(packages: Sequence[str], work_dir: Path, *, progress: bool = True) -> list[UnpackedPackage]:
    """``apt-get download`` each package and ``dpkg -x`` it under ``work_dir`` (no install).

    apt's package lists are refreshed (``apt-get update``) at most once, and only as root,
    when they are missing or stale (a download 404s).
    """
    for tool in ("apt-get", "dpkg", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise RecordedCorpusError(f"{tool} not found: the recorded corpus is built from Debian packages "
                                      "and needs apt and dpkg (Debian or Ubuntu)")
    debs_dir = work_dir / "debs"
    debs_dir.mkdir(parents=True, exist_ok=True)
    refreshed = False
    unpacked = []
    for package in tqdm(packages, desc="fetching Debian packages", unit="package", disable=not progress):
        result = _run(["apt-get", "download", package], cwd=debs_dir, what=f"downloading {package}")
        if result.returncode != 0 and not refreshed and lists_missing_or_stale(result.stderr):
            refresh_apt_lists(package, result.stderr)
            refreshed = True
            result = _run(["apt-get", "download", package], cwd=debs_dir, what=f"downloading {package}")
        if result.returncode != 0:
            raise RecordedCorpusError(f"cannot download Debian package {package}: {_apt_reason(result.stderr)}")
        unpacked.append(unpack_deb(_downloaded_deb(debs_dir, package), work_dir / "root" / package, package))
    return unpacked


def refresh_apt_lists(package: str, download_error: str) -> None:
    """``apt-get update`` as root; anyone else is told to run it."""
    if os.geteuid() != 0:
        raise RecordedCorpusError(
            f"cannot download Debian package {package}: apt's package lists are missing or stale "
            f"({_apt_reason(download_error)}); run `sudo apt-get update` once, then retry")
    log.info("apt's package lists are missing or stale: running apt-get update")
    result = _run(["apt-get", "update"], cwd=None, what="apt-get update")
    if result.returncode != 0:
        raise RecordedCorpusError(f"cannot download Debian package {package}: apt-get update failed: "
                                  f"{_apt_reason(result.stderr)}")


def unpack_deb(deb: Path, root: Path, package: str) -> UnpackedPackage:
    """``dpkg -x`` a .deb into ``root`` and read its version."""
    root.mkdir(parents=True, exist_ok=True)
    version = _run(["dpkg-deb", "--field", str(deb), "Version"], cwd=None, what=f"reading {deb.name}")
    unpacked = _run(["dpkg", "-x", str(deb), str(root)], cwd=None, what=f"unpacking {deb.name}")
    for result in (version, unpacked):
        if result.returncode != 0:
            raise RecordedCorpusError(f"cannot unpack Debian package {package} ({deb.name}): "
                                      f"{_apt_reason(result.stderr)}")
    return UnpackedPackage(package=package, version=version.stdout.strip(), root=root)


def apt_lists_present(lists_dir: Path = APT_LISTS_DIR) -> bool:
    """True when apt has downloaded package lists (a fresh container has none)."""
    return any(lists_dir.glob("*_Packages*"))


def lists_missing_or_stale(download_error: str, lists_dir: Path = APT_LISTS_DIR) -> bool:
    """Whether a failed download calls for ``apt-get update``: no lists, or a 404 (stale lists).

    An unknown package with lists present is not: an update would not find it either.
    """
    return not apt_lists_present(lists_dir) or "404" in download_error


def _run(command: list[str], *, cwd: Path | None, what: str) -> subprocess.CompletedProcess:
    """Run a Debian tool with English messages; a hang past the timeout is an error."""
    env = {**os.environ, "LC_ALL": "C"}
    try:
        return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=APT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as exc:
        raise RecordedCorpusError(f"{what} took over {APT_TIMEOUT_SECONDS} s: gave up") from exc


def _apt_reason(stderr: str) -> str:
    """The error lines of apt/dpkg's output (``E: ...``), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("E:", "dpkg-deb: error", "dpkg: error"))]
    return "; ".join(errors or lines[-1:]) or "no message"


def _downloaded_deb(debs_dir: Path, package: str) -> Path:
    debs = sorted(debs_dir.glob(f"{package}_*.deb"))
    if len(debs) != 1:
        raise RecordedCorpusError(f"apt-get download {package} left {len(debs)} .deb files in {debs_dir}")
    return debs[0]


# --------------------------------------------------------------------------- sources, licences


def find_source_tracks(package: UnpackedPackage, source: Source) -> list[SourceTrack]:
    """The package's music files (``source.suffix``), sorted by their path in the package."""
    tracks = []
    for path in sorted(p for p in package.root.rglob(f"*{source.suffix}") if p.is_file()):
        try:
            info = sf.info(str(path))
        except (sf.SoundFileError, RuntimeError) as exc:
            raise RecordedCorpusError(f"{package.package}: cannot read {path.name}: {exc}") from exc
        tracks.append(SourceTrack(package=package.package, path=path,
                                  relative=path.relative_to(package.root).as_posix(),
                                  seconds=info.frames / info.samplerate, sample_rate=int(info.samplerate),
                                  channels=int(info.channels)))
    if not tracks:
        raise RecordedCorpusError(f"Debian package {package.package} {package.version} holds no "
                                  f"{source.suffix} files: its content changed, update fma_sample.recorded.SOURCES")
    return tracks


def copyright_file(package: UnpackedPackage) -> Path:
    """The package's Debian copyright file (its licence text)."""
    path = package.root / "usr" / "share" / "doc" / package.package / "copyright"
    if not path.is_file():
        raise RecordedCorpusError(f"Debian package {package.package} has no copyright file: its licence "
                                  "cannot be stated, so its music is not used")
    return path


def debian_license(copyright_text: str) -> str | None:
    """The ``License`` of the ``Files: *`` paragraph of a machine-readable copyright file."""
    for paragraph in re.split(r"\n[ \t]*\n", copyright_text):
        fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", paragraph, flags=re.MULTILINE))
        if "*" in fields.get("Files", "").split() and fields.get("License"):
            return fields["License"].strip()
    return None


# --------------------------------------------------------------------------- cutting


def clip_window(track_seconds: float, clip_seconds: float = FMA_CLIP_SECONDS) -> tuple[float, float]:
    """``(start, length)`` in seconds: FMA's clip from the middle, the whole track when shorter."""
    if track_seconds <= clip_seconds:
        return 0.0, track_seconds
    return (track_seconds - clip_seconds) / 2.0, clip_seconds


def read_excerpt(path: Path | str, *, start_seconds: float, seconds: float) -> tuple[np.ndarray, int]:
    """``(frames, channels)`` float32 audio from ``start_seconds``, at the file's own rate."""
    with sf.SoundFile(str(path)) as source:
        sr = source.samplerate
        source.seek(min(int(round(start_seconds * sr)), source.frames))
        audio = source.read(int(round(seconds * sr)), dtype="float32", always_2d=True)
    return audio, int(sr)


def cut_bytes(job: CutJob) -> bytes | None:
    """The file content for a job (None: a planted missing file)."""
    if job.kind == "missing":
        return None
    if job.kind == "empty":
        return b""
    if job.kind == "not_audio":
        return np.random.default_rng([SEED, job.track_id]).bytes(NOT_AUDIO_BYTES)
    audio, sr = read_excerpt(job.source, start_seconds=job.start_seconds, seconds=job.seconds)
    if job.kind == "silent":
        audio = np.zeros_like(audio)
    data = encode_mp3(audio, job.bit_rate, sample_rate=sr)
    if job.kind == "truncated":
        data = data[: int(len(data) * TRUNCATE_FRACTION) + 7]  # +7: never on a frame boundary
    return data


def write_cut(job: CutJob) -> dict:
    """Write one job's file (a worker's unit); facts for the manifest."""
    data = cut_bytes(job)
    record = {"track_id": job.track_id, "kind": job.kind, "sha1": None, "bytes": 0}
    if data is None:
        return record
    path = Path(job.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)  # inside the build folder: the folder's rename is the atomic step
    record.update(sha1=hashlib.sha1(data).hexdigest(), bytes=len(data))
    if job.kind in ("clip", "silent", "too_short"):
        info = sf.info(str(path))
        record.update(sample_rate=int(info.samplerate), channels=int(info.channels),
                      clip_seconds=round(info.frames / info.samplerate, 3))
    return record


def _run_cuts(jobs: Sequence[CutJob], workers: int) -> Iterator[dict]:
    if workers <= 1:
        yield from map(write_cut, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(write_cut, jobs)


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class CorpusPlan:
    """One cut job per track and where each track's file comes from."""

    jobs: tuple[CutJob, ...]
    origins: dict[int, SourceTrack]


def plan_corpus(tracks_by_source: Sequence[list[SourceTrack]], audio_dir: Path) -> CorpusPlan:
    """A clip per source track, then one extra track per planted kind (sources taken in turn).

    Bit rates cycle through FMA's four; planted files come from each source's longest
    tracks not yet used, so that a truncated clip is far shorter than its catalogue says.
    """
    bit_rates = sorted(COMPRESSION_LEVELS, reverse=True)
    entries: list[tuple[str, SourceTrack]] = [("clip", t) for tracks in tracks_by_source for t in tracks]
    longest = [sorted(tracks, key=lambda t: -t.seconds) for tracks in tracks_by_source]
    for index, kind in enumerate(PLANTED_KINDS):
        source_tracks = longest[index % len(longest)]
        entries.append((kind, source_tracks[(index // len(longest)) % len(source_tracks)]))
    jobs, origins = [], {}
    for index, (kind, track) in enumerate(entries):
        track_id = TRACK_ID_START + TRACK_ID_STEP * index
        start, seconds = clip_window(track.seconds)
        if kind == "too_short":
            start, seconds = start + seconds / 2.0, TOO_SHORT_SECONDS
        jobs.append(CutJob(track_id=track_id, kind=kind, source=str(track.path), start_seconds=start,
                           seconds=seconds, bit_rate=bit_rates[index % len(bit_rates)],
                           path=str(audio_path(audio_dir, track_id))))
        origins[track_id] = track
    return CorpusPlan(jobs=tuple(jobs), origins=origins)


# --------------------------------------------------------------------------- tables


def track_row(job: CutJob, track: SourceTrack, *, source: Source, package: UnpackedPackage,
              license_text: str, number: int, album_tracks: int, source_index: int) -> dict:
    """FMA's 52 columns for one track: artist and album are the package, genre its label."""
    genre = TOP_LEVEL_GENRES[source.genre_id]
    origin = f"{track.relative} from Debian package {package.package} {package.version}"
    information = origin if job.kind == "clip" else f"planted broken file ({job.kind}) standing for {origin}"
    nothing = float("nan")
    return {
        ("track_id", ""): job.track_id,
        **{("album", c): nothing for c in ("date_created", "date_released", "engineer", "producer")},
        ("album", "comments"): 0, ("album", "favorites"): 0, ("album", "listens"): 0,
        ("album", "id"): source_index + 1, ("album", "information"): f"Debian package {package.package}",
        ("album", "tags"): "[]", ("album", "title"): package.package, ("album", "tracks"): album_tracks,
        ("album", "type"): "Album",
        **{("artist", c): nothing for c in ("active_year_begin", "active_year_end", "associated_labels",
                                            "bio", "date_created", "latitude", "location", "longitude",
                                            "members", "related_projects", "wikipedia_page")},
        ("artist", "comments"): 0, ("artist", "favorites"): 0, ("artist", "id"): source_index + 1,
        ("artist", "name"): package.package, ("artist", "tags"): "[]",
        ("artist", "website"): f"https://packages.debian.org/{package.package}",
        ("set", "split"): _split(number), ("set", "subset"): "small",
        **{("track", c): nothing for c in ("composer", "date_created", "date_recorded", "language_code",
                                           "lyricist", "publisher")},
        ("track", "bit_rate"): job.bit_rate, ("track", "comments"): 0,
        ("track", "duration"): max(1, round(track.seconds)), ("track", "favorites"): 0,
        ("track", "genre_top"): genre, ("track", "genres"): str([source.genre_id]),
        ("track", "genres_all"): str([source.genre_id]), ("track", "information"): information,
        ("track", "interest"): 0, ("track", "license"): license_text, ("track", "listens"): 0,
        ("track", "number"): number, ("track", "tags"): "[]",
        ("track", "title"): track.title if job.kind == "clip" else f"{track.title} (planted: {job.kind})",
    }


def _split(number: int) -> str:
    """~80/10/10 within each package (the package is the artist, so FMA's by-artist rule cannot hold)."""
    return {4: "validation", 9: "test"}.get((number - 1) % 10, "training")


def write_tables(plan: CorpusPlan, out_dir: Path, *, sources: Sequence[Source],
                 packages: dict[str, UnpackedPackage], licenses: dict[str, str]) -> None:
    """tracks.csv and genres.csv through the writers the synthetic sample uses."""
    by_package = {s.package: (i, s) for i, s in enumerate(sources)}
    counts = {p: sum(1 for t in plan.origins.values() if t.package == p) for p in packages}
    numbers: dict[str, int] = {}
    rows = []
    for job in plan.jobs:
        track = plan.origins[job.track_id]
        index, source = by_package[track.package]
        numbers[track.package] = numbers.get(track.package, 0) + 1
        rows.append(track_row(job, track, source=source, package=packages[track.package],
                              license_text=licenses[track.package], number=numbers[track.package],
                              album_tracks=counts[track.package], source_index=index))
    tracks = tracks_frame(rows)
    (out_dir / METADATA_DIR).mkdir(parents=True, exist_ok=True)
    write_tracks_csv(tracks, out_dir / METADATA_DIR / TRACKS_CSV)
    write_genres_csv(build_genres(tracks), out_dir / METADATA_DIR / GENRES_CSV)


# --------------------------------------------------------------------------- build


def build_corpus(out_dir: Path, *, sources: Sequence[Source] = SOURCES, fetch: Fetch = fetch_packages,
                 workers: int = DEFAULT_WORKERS, progress: bool = True) -> dict:
    """Fetch the packages and write the whole corpus into ``out_dir`` (an empty folder); the manifest."""
    work_dir = out_dir / ".packages"  # the unpacked packages (on failure the caller drops out_dir)
    unpacked = {p.package: p for p in fetch([s.package for s in sources], work_dir)}
    missing = [s.package for s in sources if s.package not in unpacked]
    if missing:
        raise RecordedCorpusError(f"packages not fetched: {', '.join(missing)}")
    tracks_by_source = [find_source_tracks(unpacked[s.package], s) for s in sources]
    plan = plan_corpus(tracks_by_source, out_dir / AUDIO_DIR)
    licenses = copy_licenses(unpacked, out_dir)
    records = {}
    with tqdm(total=len(plan.jobs), desc="cutting recorded clips", unit="clip", disable=not progress) as bar:
        for record in _run_cuts(plan.jobs, workers):
            records[record["track_id"]] = record
            bar.update(1)
    write_tables(plan, out_dir, sources=sources, packages=unpacked, licenses=licenses)
    shutil.rmtree(work_dir)
    manifest = build_manifest(plan, records, out_dir, sources=sources, packages=unpacked, licenses=licenses)
    write_text_atomic(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    write_text_atomic(out_dir / "RECORDED.md", corpus_readme(manifest))
    write_text_atomic(out_dir / RECIPE_NAME, json.dumps(corpus_recipe(sources), indent=2, sort_keys=True) + "\n")
    return manifest


def copy_licenses(packages: dict[str, UnpackedPackage], out_dir: Path) -> dict[str, str]:
    """Copy each copyright file to ``licenses/``; package -> the track.license text."""
    (out_dir / LICENSES_DIR).mkdir(parents=True, exist_ok=True)
    texts = {}
    for name, package in packages.items():
        source = copyright_file(package)
        shutil.copyfile(source, out_dir / LICENSES_DIR / f"{name}.copyright")
        license_name = debian_license(source.read_text(encoding="utf-8", errors="replace")) or "see the copyright file"
        texts[name] = f"{license_name} (Debian package {name} {package.version}; {LICENSES_DIR}/{name}.copyright)"
    return texts


def build_manifest(plan: CorpusPlan, records: dict[int, dict], out_dir: Path, *, sources: Sequence[Source],
                   packages: dict[str, UnpackedPackage], licenses: dict[str, str]) -> dict:
    """manifest.json: real (not synthetic) data, its sources and versions, every file, planted files."""
    files = {}
    for job in plan.jobs:
        track = plan.origins[job.track_id]
        files[str(job.track_id)] = {
            **records[job.track_id], "path": Path(job.path).relative_to(out_dir).as_posix(),
            "source_package": track.package, "package_version": packages[track.package].version,
            "source_file": track.relative, "source_seconds": round(track.seconds, 3),
            "source_sample_rate": track.sample_rate, "start_seconds": round(job.start_seconds, 3),
            "bit_rate": job.bit_rate,
        }
    sources_doc = {}
    for source in sources:
        package = packages[source.package]
        sources_doc[source.package] = {
            "version": package.version, "genre_id": source.genre_id,
            "genre_title": TOP_LEVEL_GENRES[source.genre_id], "license": licenses[source.package],
            "copyright_file": f"{LICENSES_DIR}/{source.package}.copyright",
            "clips": sum(1 for f in files.values() if f["kind"] == "clip" and f["source_package"] == source.package),
        }
    return {
        "synthetic": False,
        "recorded": True,
        "description": "Real recorded music (freely licensed game soundtracks from Debian packages) cut into "
                       "FMA-shaped 30 s clips; the genre of each track stands for its source package.",
        "generator": "fma_sample.recorded.ensure_recorded_corpus",
        "recipe": corpus_recipe(sources),
        "sources": sources_doc,
        "genres": sorted(TOP_LEVEL_GENRES[s.genre_id] for s in sources),
        "planted": [{"track_id": job.track_id, "kind": job.kind, "path": files[str(job.track_id)]["path"],
                     "description": PLANTED_KINDS[job.kind].description,
                     "expected_reason": PLANTED_KINDS[job.kind].expected_reason,
                     "source_package": plan.origins[job.track_id].package}
                    for job in plan.jobs if job.kind != "clip"],
        "files": files,
    }


def corpus_readme(manifest: dict) -> str:
    """RECORDED.md: what this folder is, where its music comes from, what is broken on purpose."""
    sources = "\n".join(
        f"- `{name}` {s['version']}: {s['clips']} clips, genre **{s['genre_title']}** ({s['genre_id']}), "
        f"licence {s['license']}" for name, s in manifest["sources"].items())
    planted = "\n".join(f"- `{p['path']}` (track {p['track_id']}): **{p['kind']}**, {p['description']}; "
                        f"the extractor must fail it with `{p['expected_reason']}`" for p in manifest["planted"])
    return (
        "# Recorded music: real recordings in FMA's layout (not the Free Music Archive)\n\n"
        "Freely licensed game soundtracks from Debian packages (fetched with `apt-get download`,\n"
        "unpacked with `dpkg -x`, nothing installed), cut to 30 s MP3 clips from the middle of each\n"
        "track (the whole track when it is shorter; `track.duration` is the real duration, as in FMA).\n"
        "The artist and album of a track are its package; its genre is a label for the package, not\n"
        "a judgement of the music. Each package's licence text is in `licenses/`.\n\n"
        f"## Sources\n\n{sources}\n\n"
        f"## Deliberately broken files (as real FMA has)\n\n{planted}\n\n"
        "Rebuild: `python -m fma_sample recorded --out DIR` (a cache: never commit it).\n"
    )
