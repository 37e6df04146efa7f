"""The recorded-music corpus: cutting, FMA's layout and tables, planted files, reuse, atomic builds.

Most tests build a small corpus from two made-up "packages" of Ogg Vorbis files (the
``fetch`` argument stands in for apt, which the ``recorded_music`` tests at the end use for
real through the session's ``recorded_corpus`` fixture).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_features.extract import expected_clip_seconds
from audio_features.features import UnusableClipError, extract_features
from audio_features.fma_schema import FMA_CLIP_SECONDS, TOP_LEVEL_GENRES, TRACKS_COLUMNS, audio_path
from audio_features.layout import scan_audio_dir
from audio_features.metadata import catalogue_records, load_genres, load_tracks, write_tracks_csv
from fma_platform.errors import PlatformError
from fma_sample import cli
from fma_sample import recorded as R
from pipeline.catalogue import read_catalogue
from pipeline.datasets import Dataset

FAKE_SOURCES = (R.Source("alpha-music", 15, ".ogg"), R.Source("beta-music", 12, ".ogg"))
# package -> (file in the package, seconds, sample rate, channels)
FAKE_TRACKS = {
    "alpha-music": [("usr/share/games/alpha/music/long_one.ogg", 40.0, 8000, 1),
                    ("usr/share/games/alpha/music/middle.ogg", 36.0, 8000, 1),
                    ("usr/share/games/alpha/music/jingle.ogg", 5.0, 8000, 1)],
    "beta-music": [("usr/share/beta/Musics/first_track.ogg", 45.0, 11025, 2),
                   ("usr/share/beta/Musics/second.ogg", 32.0, 11025, 2),
                   ("usr/share/beta/Musics/sting.ogg", 3.0, 11025, 2)],
}
FAKE_VERSIONS = {"alpha-music": "1.2-3", "beta-music": "0.9+dfsg-1"}
COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: {package}

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: debian/*
Copyright: 2021 Debian
License: CC0-1.0

License: GPL-2+
 This program is free software.
"""


def write_fake_package(package: str, root: Path) -> R.UnpackedPackage:
    """An unpacked package: music files that ramp in loudness (t / duration), a copyright file."""
    for index, (relative, seconds, sr, channels) in enumerate(FAKE_TRACKS[package]):
        t = np.arange(int(seconds * sr)) / sr
        tone = 0.1 * np.sin(2 * np.pi * (220 + 55 * index) * t) * (0.2 + t / seconds)
        audio = np.repeat(tone[:, None], channels, axis=1) if channels > 1 else tone
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, audio, sr, format="OGG", subtype="VORBIS")
    (root / "usr/share/games/readme.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "usr/share/games/readme.txt").write_text("not music")
    doc = root / "usr/share/doc" / package
    doc.mkdir(parents=True, exist_ok=True)
    (doc / "copyright").write_text(COPYRIGHT.format(package=package))
    return R.UnpackedPackage(package=package, version=FAKE_VERSIONS[package], root=root)


def fake_fetch(packages, work_dir):
    """Stands in for apt: the made-up packages, unpacked; logs each call beside the corpus."""
    log = os.environ.get("FAKE_FETCH_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(float(os.environ.get("FAKE_FETCH_SLEEP", "0")))
    return [write_fake_package(p, work_dir / "root" / p) for p in packages]


def build_fake(out_dir: Path, *, sources=FAKE_SOURCES, fetch=fake_fetch) -> R.RecordedCorpus:
    return R.ensure_recorded_corpus(out_dir, workers=1, progress=False, sources=sources, fetch=fetch)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> R.RecordedCorpus:
    return build_fake(tmp_path_factory.mktemp("recorded") / "corpus")


@pytest.fixture(scope="module")
def tracks(corpus):
    table = load_tracks(corpus.tracks_csv)
    assert table.problems == []
    return table.tracks


def _clip(corpus, index: int) -> dict:
    return corpus.manifest["files"][str(corpus.clip_ids[index])]


# --------------------------------------------------------------------------- cutting


def test_a_clip_is_the_middle_30_s_or_the_whole_shorter_track():
    assert R.clip_window(100.0) == (35.0, FMA_CLIP_SECONDS)
    assert R.clip_window(30.0) == (0.0, 30.0)
    assert R.clip_window(6.3) == (0.0, 6.3)


def test_an_excerpt_starts_where_asked_at_the_files_own_rate(tmp_path):
    ramp = np.linspace(0.0, 1.0, 10 * 16000, endpoint=False)  # value = time / 10 s
    path = tmp_path / "ramp.flac"
    sf.write(path, np.stack([ramp, -ramp], axis=1), 16000, subtype="PCM_24")
    audio, sr = R.read_excerpt(path, start_seconds=4.0, seconds=2.5)
    assert sr == 16000 and audio.shape == (40000, 2)
    assert audio[0, 0] == pytest.approx(0.4, abs=1e-4) and audio[-1, 0] == pytest.approx(0.65, abs=1e-3)
    assert audio[0, 1] == pytest.approx(-0.4, abs=1e-4)
    tail, _ = R.read_excerpt(path, start_seconds=9.0, seconds=5.0)  # past the end: what there is
    assert tail.shape == (16000, 2)


def test_clips_are_cut_from_the_middle_at_their_sources_rate(corpus):
    by_source = {f["source_file"]: f for f in corpus.manifest["files"].values() if f["kind"] == "clip"}
    long_one = by_source["usr/share/games/alpha/music/long_one.ogg"]
    assert long_one["start_seconds"] == 5.0 and long_one["clip_seconds"] == pytest.approx(30.0, abs=0.01)
    assert long_one["sample_rate"] == 8000 and long_one["channels"] == 1
    jingle = by_source["usr/share/games/alpha/music/jingle.ogg"]
    assert jingle["start_seconds"] == 0.0 and jingle["clip_seconds"] == pytest.approx(5.0, abs=0.01)
    first = by_source["usr/share/beta/Musics/first_track.ogg"]
    assert first["sample_rate"] == 11025 and first["channels"] == 2
    audio, sr = sf.read(corpus.out_dir / first["path"])
    # The source gets louder with time (0.2 + t/45): the middle 30 s start at 7.5 s.
    level = np.abs(audio[: 30 * sr, 0]).reshape(30, sr).max(axis=1)  # per-second peaks
    assert level[0] == pytest.approx(0.1 * (0.2 + 8.5 / 45), rel=0.05)
    assert level[-1] == pytest.approx(0.1 * (0.2 + 37.5 / 45), rel=0.05)


# --------------------------------------------------------------------------- layout, tables


def test_files_sit_on_fmas_layout_and_tracks_csv_lists_them_all(corpus, tracks):
    report = scan_audio_dir(corpus.audio_dir, tracks.index)
    assert report.unlisted == {} and report.misplaced == [] and report.other_files == []
    missing = [p.track_id for p in corpus.planted if p.kind == "missing"]
    assert report.missing == missing
    assert len(tracks) == 6 + len(R.PLANTED_KINDS)
    assert tracks.index[0] == R.TRACK_ID_START and (np.diff(tracks.index) == R.TRACK_ID_STEP).all()
    for track_id, record in corpus.manifest["files"].items():
        assert corpus.out_dir / record["path"] == audio_path(corpus.audio_dir, int(track_id))


def test_tracks_csv_is_fmas_two_level_table_written_by_the_samples_writer(corpus, tracks, tmp_path):
    lines = corpus.tracks_csv.read_text().splitlines()
    assert lines[0].startswith(",album,album") and lines[2] == "track_id" + "," * 52
    assert list(tracks.columns) == list(TRACKS_COLUMNS)
    again = write_tracks_csv(tracks, tmp_path / "tracks.csv")
    assert again.read_text() == corpus.tracks_csv.read_text()  # load(write(x)) == x


def test_genre_artist_album_and_license_name_the_source_package(corpus, tracks):
    for source in FAKE_SOURCES:
        rows = tracks[tracks[("artist", "name")] == source.package]
        assert len(rows) >= 3
        assert set(rows[("track", "genre_top")].astype(str)) == {TOP_LEVEL_GENRES[source.genre_id]}
        assert set(rows[("album", "title")]) == {source.package}
        assert set(rows[("track", "license")].astype(str)) == {
            f"GPL-2+ (Debian package {source.package} {FAKE_VERSIONS[source.package]}; "
            f"licenses/{source.package}.copyright)"}
        copied = corpus.out_dir / "licenses" / f"{source.package}.copyright"
        assert copied.read_text() == COPYRIGHT.format(package=source.package)
    titles = set(tracks[("track", "title")])
    assert {"long one", "first track", "sting"} <= titles


def test_durations_are_the_whole_tracks_real_length(corpus, tracks):
    for track_id, record in corpus.manifest["files"].items():
        assert tracks.at[int(track_id), ("track", "duration")] == round(record["source_seconds"])
    assert sorted(tracks[("track", "duration")].unique()) == [3, 5, 32, 36, 40, 45]


def test_catalogue_reads_the_corpus_like_real_fma(corpus, tracks):
    genres = load_genres(corpus.genres_csv)
    records = catalogue_records(tracks, genres)
    assert {r["top_genre_id"] for r in records} == {15, 12}
    dataset = Dataset("local", corpus.metadata_dir, corpus.audio_dir, synthetic=False)
    catalogue = read_catalogue(dataset)
    assert catalogue.problems == [] and len(catalogue.documents) == len(tracks)
    assert {d["artist_name"] for d in catalogue.documents} == {"alpha-music", "beta-music"}
    assert all(d["synthetic"] is False for d in catalogue.documents)


def test_manifest_says_real_not_synthetic_with_versions_and_checksums(corpus):
    manifest = corpus.manifest
    assert manifest["synthetic"] is False and manifest["recorded"] is True
    assert {p: s["version"] for p, s in manifest["sources"].items()} == FAKE_VERSIONS
    assert {p: s["clips"] for p, s in manifest["sources"].items()} == {"alpha-music": 3, "beta-music": 3}
    for record in manifest["files"].values():
        path = corpus.out_dir / record["path"]
        if record["kind"] != "missing":
            assert hashlib.sha1(path.read_bytes()).hexdigest() == record["sha1"]
            assert record["package_version"] == FAKE_VERSIONS[record["source_package"]]
    assert json.loads((corpus.out_dir / R.RECIPE_NAME).read_text()) == R.corpus_recipe(FAKE_SOURCES)
    assert "not the Free Music Archive" in (corpus.out_dir / "RECORDED.md").read_text()


def test_the_license_of_the_files_star_paragraph_is_read():
    assert R.debian_license(COPYRIGHT.format(package="x")) == "GPL-2+"
    assert R.debian_license("Files: src/*\nLicense: MIT\n") is None
    assert R.debian_license("not a machine-readable copyright file") is None


# --------------------------------------------------------------------------- planted files


def test_each_planted_file_is_broken_as_described_and_fails_extraction_with_its_reason(corpus, tracks):
    planted = {p.kind: p for p in corpus.planted}
    assert set(planted) == set(R.PLANTED_KINDS)
    assert corpus.expected_failures == {p.track_id: R.PLANTED_KINDS[p.kind].expected_reason
                                        for p in planted.values()}
    assert not planted["missing"].path.exists()
    assert planted["empty"].path.stat().st_size == 0
    assert planted["not_audio"].path.stat().st_size == R.NOT_AUDIO_BYTES
    assert sf.read(planted["silent"].path)[0].max() == 0.0
    audio, sr = sf.read(planted["too_short"].path)
    assert R.TOO_SHORT_SECONDS <= len(audio) / sr < 1.0  # low rates decode with up to a frame of padding
    audio, sr = sf.read(planted["truncated"].path)
    assert len(audio) / sr < 0.5 * 30
    durations = {int(t): float(d) for t, d in tracks[("track", "duration")].items()}
    for plant in planted.values():
        assert str(tracks.at[plant.track_id, ("track", "title")]).endswith(f"(planted: {plant.kind})")
        with pytest.raises(UnusableClipError) as caught:
            extract_features(plant.path, expected_seconds=expected_clip_seconds(durations, plant.track_id))
        assert caught.value.reason == R.PLANTED_KINDS[plant.kind].expected_reason, plant.kind


# --------------------------------------------------------------------------- reuse, rebuilds


def test_a_complete_corpus_is_reused_without_fetching(corpus):
    def refuse(packages, work_dir):
        raise AssertionError("fetched although the corpus is complete")

    mtime = corpus.tracks_csv.stat().st_mtime_ns
    again = build_fake(corpus.out_dir, fetch=refuse)
    assert again.built is False and again.manifest == corpus.manifest
    assert corpus.tracks_csv.stat().st_mtime_ns == mtime


def test_a_new_recipe_or_a_lost_file_rebuilds(tmp_path):
    first = build_fake(tmp_path / "corpus")
    assert first.built
    changed = (R.Source("alpha-music", 38, ".ogg"), FAKE_SOURCES[1])  # alpha relabelled Experimental
    rebuilt = build_fake(tmp_path / "corpus", sources=changed)
    assert rebuilt.built and rebuilt.manifest["sources"]["alpha-music"]["genre_title"] == "Experimental"
    clip = rebuilt.out_dir / _clip(rebuilt, 0)["path"]
    clip.unlink()
    repaired = build_fake(tmp_path / "corpus", sources=changed)
    assert repaired.built and clip.is_file()
    missing = next(p for p in repaired.planted if p.kind == "missing").path
    missing.write_bytes(b"someone put a file where none must be")
    assert build_fake(tmp_path / "corpus", sources=changed).built and not missing.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".corpus.lock", "corpus"]


# --------------------------------------------------------------------------- atomic builds


def test_a_failed_build_keeps_the_previous_corpus_and_leaves_nothing_behind(tmp_path):
    good = build_fake(tmp_path / "corpus")

    def broken_fetch(packages, work_dir):
        unpacked = fake_fetch(packages, work_dir)
        shutil.rmtree(unpacked[1].root / "usr/share/doc")  # no licence: refused
        return unpacked

    with pytest.raises(R.RecordedCorpusError, match="beta-music has no copyright file") as caught:
        build_fake(tmp_path / "corpus", sources=(R.Source("alpha-music", 38, ".ogg"), FAKE_SOURCES[1]),
                   fetch=broken_fetch)
    assert isinstance(caught.value, PlatformError)
    assert R.load_corpus(tmp_path / "corpus", built=False).manifest == good.manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == [".corpus.lock", "corpus"]


def test_a_package_without_music_is_named(tmp_path):
    with pytest.raises(R.RecordedCorpusError, match=r"beta-music 0\.9\+dfsg-1 holds no \.opus files"):
        build_fake(tmp_path / "corpus", sources=(FAKE_SOURCES[0], R.Source("beta-music", 12, ".opus")))
    assert not (tmp_path / "corpus").exists()


def _build_in_child(out_dir: str) -> None:
    build_fake(Path(out_dir))


def test_concurrent_builds_fetch_once_and_agree(tmp_path, monkeypatch):
    log = tmp_path / "fetches.log"
    monkeypatch.setenv("FAKE_FETCH_LOG", str(log))
    monkeypatch.setenv("FAKE_FETCH_SLEEP", "1.0")
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_build_in_child, args=(str(tmp_path / "corpus"),)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=240)
    assert [child.exitcode for child in children] == [0, 0]
    assert len(log.read_text().splitlines()) == 1  # the second waited for the lock, then reused
    assert R.corpus_is_complete(tmp_path / "corpus", R.corpus_recipe(FAKE_SOURCES))


def test_a_killed_build_leaves_no_corpus_and_the_next_build_clears_its_remains(tmp_path, monkeypatch):
    log = tmp_path / "fetches.log"
    monkeypatch.setenv("FAKE_FETCH_LOG", str(log))
    monkeypatch.setenv("FAKE_FETCH_SLEEP", "120")
    child = multiprocessing.get_context("fork").Process(target=_build_in_child, args=(str(tmp_path / "corpus"),))
    child.start()
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)  # mid-build, as a CI timeout or Ctrl-\ would
    child.join()
    assert not (tmp_path / "corpus").exists()
    assert len(list(tmp_path.glob(".corpus.build-*"))) == 1  # half a build, never under the real name
    monkeypatch.setenv("FAKE_FETCH_SLEEP", "0")
    assert build_fake(tmp_path / "corpus").built
    assert sorted(p.name for p in tmp_path.iterdir()) == [".corpus.lock", "corpus", "fetches.log"]


# --------------------------------------------------------------------------- apt, command line


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs Debian's apt-get")
def test_a_package_apt_cannot_find_is_named_with_apts_reason(tmp_path):
    if not R.apt_lists_present() and os.geteuid() == 0:
        pytest.skip("apt has no package lists: this test must not run apt-get update")
    with pytest.raises(R.RecordedCorpusError, match="cannot download Debian package no-such-music-package-x: ") \
            as caught:
        R.fetch_packages(["no-such-music-package-x"], tmp_path)
    assert "Unable to locate package" in str(caught.value) or "apt-get update" in str(caught.value)


def test_apt_lists_are_refreshed_only_when_missing_or_stale(tmp_path):
    unknown = "E: Unable to locate package no-such-music-package-x"
    stale = "E: Failed to fetch http://deb.debian.org/debian/pool/main/x/x_1_all.deb  404  Not Found [IP: 1.2.3.4 80]"
    assert R.lists_missing_or_stale(unknown, tmp_path)  # a fresh container: no lists at all
    (tmp_path / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4").write_bytes(b"x")
    assert R.lists_missing_or_stale(stale, tmp_path)
    assert not R.lists_missing_or_stale(unknown, tmp_path)


def test_recorded_help_and_bad_arguments(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["recorded", "--help"])
    assert done.value.code == 0
    help_text = capsys.readouterr().out
    assert "warzone2100-music" in help_text and "--out" in help_text and "recorded_corpus_dir" in help_text
    with pytest.raises(SystemExit) as done:
        cli.main(["recorded", "--workers", "0"])
    assert done.value.code == 2 and "--workers: must be >= 1, got 0" in capsys.readouterr().err


def test_a_build_that_cannot_run_exits_2_with_one_line_reason(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get, no dpkg
    assert cli.main(["recorded", "--out", str(tmp_path / "corpus")]) == 2
    assert capsys.readouterr().err == (
        "error: apt-get not found: the recorded corpus is built from Debian packages and needs apt and dpkg "
        "(Debian or Ubuntu)\n")
    assert not (tmp_path / "corpus").exists()


# --------------------------------------------------------------------------- the real corpus


@pytest.mark.recorded_music
def test_the_real_corpus_holds_50_clips_from_four_packages(recorded_corpus):
    manifest = recorded_corpus.manifest
    assert manifest["synthetic"] is False and manifest["recorded"] is True
    assert {p: s["clips"] for p, s in manifest["sources"].items()} == {
        "warzone2100-music": 30, "extremetuxracer-data": 10, "xmoto-data": 7, "lincity-ng-data": 3}
    assert len(recorded_corpus.clip_ids) == 50
    assert sorted(recorded_corpus.expected_failures.values()) == sorted(
        k.expected_reason for k in R.PLANTED_KINDS.values())
    clips = [f for f in manifest["files"].values() if f["kind"] == "clip"]
    assert {f["sample_rate"] for f in clips} == {44100, 48000}  # not every real MP3 is 44.1 kHz
    short = [f for f in clips if f["source_seconds"] < FMA_CLIP_SECONDS]
    assert len(short) >= 3 and all(f["clip_seconds"] == pytest.approx(f["source_seconds"], abs=0.05) for f in short)


@pytest.mark.recorded_music
def test_the_real_corpus_loads_as_a_local_dataset(recorded_corpus):
    catalogue = read_catalogue(Dataset("local", recorded_corpus.metadata_dir, recorded_corpus.audio_dir,
                                       synthetic=False))
    assert catalogue.problems == [] and len(catalogue.documents) == 56
    titles = {d["top_genre_title"] for d in catalogue.documents}
    assert titles == {"Instrumental", "Electronic", "Rock", "Easy Listening"}
    short = [d for d in catalogue.documents if d["duration"] < 30]
    assert {d["artist_name"] for d in short} == {"extremetuxracer-data"}


@pytest.mark.recorded_music
def test_the_command_finds_the_real_corpus_up_to_date(recorded_corpus, capsys):
    assert cli.main(["recorded", "--out", str(recorded_corpus.out_dir)]) == 0
    out = capsys.readouterr().out
    assert f"recorded corpus in {recorded_corpus.out_dir} (up to date): 50 clips from" in out
    assert "warzone2100-music 4.3.3-3 (30)" in out and "6 planted broken files" in out
