"""Tests of the written sample folder: FMA's formats, planted faults, determinism, reuse."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audio_features.fma_schema import SPLITS, TOP_LEVEL_GENRES, TRACKS_COLUMNS, TRACKS_LIST_COLUMNS, audio_path
from audio_features.metadata import catalogue_records, load_genres, load_tracks, write_tracks_csv
from fma_platform.errors import PlatformError
from fma_sample.errors import SampleError
from fma_sample.sample import PLANTED_KINDS, clip_bytes, generate_sample, plan_sample, reusable_files
from fma_sample.tracks import SYNTHETIC_MARK, genre_ancestors

N_TRACKS = 12  # 12 genres, 8 ordinary clips + 4 planted: ~5 s to generate
SEED = 3


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """One generated sample shared by the fast tests."""
    return generate_sample(tmp_path_factory.mktemp("sample"), n_tracks=N_TRACKS, seed=SEED, progress=False)


@pytest.fixture(scope="module")
def tracks(sample) -> pd.DataFrame:
    """tracks.csv read the way FMA's documentation reads it."""
    return pd.read_csv(sample.tracks_csv, index_col=0, header=[0, 1])


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _ordinary_clips(sample, tracks) -> list[Path]:
    planted = {p.track_id for p in sample.planted}
    return [audio_path(sample.audio_dir, tid) for tid in tracks.index if tid not in planted]


# --------------------------------------------------------------------------- metadata format


def test_tracks_csv_has_fma_three_line_header_and_52_columns(sample, tracks):
    lines = sample.tracks_csv.read_text().splitlines()
    assert lines[0].startswith(",album,album")
    assert lines[1].startswith(",comments,date_created")
    assert lines[2] == "track_id" + "," * 52
    assert list(tracks.columns) == list(TRACKS_COLUMNS)
    assert tracks.index.name == "track_id"
    assert len(tracks) == N_TRACKS


def test_track_ids_are_sparse_like_fma(tracks):
    ids = tracks.index.to_numpy()
    assert ids[0] == 2
    assert np.all(np.diff(ids) > 0)
    assert ids[-1] > len(ids) + 1  # gaps, not 0..N-1


def test_list_columns_are_python_literals_and_genres_all_has_ancestors(tracks):
    for column in TRACKS_LIST_COLUMNS:
        assert all(isinstance(ast.literal_eval(v), list) for v in tracks[column])
    title_to_id = {title: gid for gid, title in TOP_LEVEL_GENRES.items()}
    for _, row in tracks.iterrows():
        genres = ast.literal_eval(row[("track", "genres")])
        genres_all = ast.literal_eval(row[("track", "genres_all")])
        expected = {a for g in genres for a in genre_ancestors(g)}
        assert set(genres_all) == expected
        assert title_to_id[row[("track", "genre_top")]] in genres_all


def test_columns_hold_realistic_values(tracks):
    track = tracks["track"]
    assert set(track["duration"]) == {30}
    assert set(track["bit_rate"]) <= {320_000, 256_000, 192_000, 128_000}
    assert track["license"].str.contains("Attribution|CC0").all()
    assert pd.to_datetime(track["date_created"], format="%Y-%m-%d %H:%M:%S").notna().all()
    assert set(tracks[("set", "subset")]) == {"small"}
    assert set(tracks[("set", "split")]) <= set(SPLITS)
    assert tracks[("album", "id")].notna().all() and tracks[("artist", "name")].notna().all()


def test_every_row_is_labelled_synthetic(sample, tracks):
    assert tracks[("track", "information")].str.contains(SYNTHETIC_MARK, regex=False).all()
    assert tracks[("album", "information")].str.contains(SYNTHETIC_MARK, regex=False).all()
    readme = (sample.out_dir / "SYNTHETIC.md").read_text()
    assert "SYNTHETIC DATA" in readme and f"seed: {SEED}" in readme
    manifest = json.loads(sample.manifest_path.read_text())
    assert manifest["synthetic"] is True
    assert manifest["parameters"]["n_tracks"] == N_TRACKS and manifest["parameters"]["seed"] == SEED


def test_at_least_eight_genres_present(sample, tracks):
    assert tracks[("track", "genre_top")].nunique() >= 8
    assert len(sample.genres) == tracks[("track", "genre_top")].nunique()


def test_genres_csv_hierarchy_matches_tracks(sample, tracks):
    genres = pd.read_csv(sample.genres_csv, index_col=0)
    assert list(genres.columns) == ["#tracks", "parent", "title", "top_level"]
    top = genres[genres["parent"] == 0]
    assert dict(zip(top.index, top["title"])) == TOP_LEVEL_GENRES
    assert (top["top_level"] == top.index).all()
    for genre_id, row in genres[genres["parent"] != 0].iterrows():
        assert row["parent"] in genres.index
        assert row["top_level"] == genres.at[row["parent"], "top_level"]
    counts = pd.Series(
        [g for v in tracks[("track", "genres_all")] for g in ast.literal_eval(v)]
    ).value_counts()
    assert (genres["#tracks"] == counts.reindex(genres.index, fill_value=0)).all()


def test_the_data_layer_loads_the_sample_like_real_fma(sample):
    """The sample's tables pass the same strict loaders as FMA's own files, row for row."""
    loaded = load_tracks(sample.tracks_csv)
    assert loaded.problems == [] and len(loaded.tracks) == N_TRACKS
    genres = load_genres(sample.genres_csv)
    assert genres.top_levels() == TOP_LEVEL_GENRES
    records = catalogue_records(loaded.tracks, genres)
    assert [r["top_genre_title"] for r in records] == loaded.tracks[("track", "genre_top")].astype(str).tolist()


def test_too_few_tracks_is_rejected(tmp_path):
    with pytest.raises(SampleError, match="n_tracks must be at least 5, got 3") as caught:
        generate_sample(tmp_path, n_tracks=3, progress=False)
    assert isinstance(caught.value, PlatformError)


# --------------------------------------------------------------------------- audio files


def test_ordinary_clips_decode_to_30_seconds_at_44k(sample, tracks):
    clips = _ordinary_clips(sample, tracks)
    assert len(clips) == N_TRACKS - len(PLANTED_KINDS)
    for path in clips:
        audio, sr = sf.read(path)
        assert sr == 44_100
        assert abs(len(audio) / sr - 30.0) < 0.05
        assert 0.01 < np.sqrt(np.mean(audio**2)) and np.abs(audio).max() <= 1.0


def test_planted_files_are_broken_as_described(sample, tracks):
    planted = {p.kind: p for p in sample.planted}
    assert set(planted) == set(PLANTED_KINDS)
    assert all(p.track_id in tracks.index for p in planted.values())
    assert tracks.at[planted["short"].track_id, ("track", "duration")] == 30

    assert planted["no_audio"].path.stat().st_size <= 10
    with pytest.raises(sf.LibsndfileError):
        sf.read(planted["no_audio"].path)

    truncated = planted["truncated"].path
    audio, sr = sf.read(truncated)
    assert len(audio) / sr < 20.0  # the header still claims 30 s
    assert truncated.stat().st_size < 0.5 * 30 * tracks.at[planted["truncated"].track_id, ("track", "bit_rate")] / 8

    audio, sr = sf.read(planted["short"].path)
    assert abs(len(audio) / sr - 1.5) < 0.05

    assert not planted["missing"].path.exists()
    manifest = json.loads(sample.manifest_path.read_text())
    assert {(p["track_id"], p["kind"]) for p in manifest["planted"]} == {(p.track_id, p.kind) for p in planted.values()}


# --------------------------------------------------------------------------- determinism, idempotency


def test_metadata_is_deterministic_for_a_seed(sample, tmp_path):
    first = plan_sample(sample.audio_dir, n_tracks=N_TRACKS, seed=SEED)
    again = plan_sample(sample.audio_dir, n_tracks=N_TRACKS, seed=SEED)
    other = plan_sample(sample.audio_dir, n_tracks=N_TRACKS, seed=SEED + 1)
    assert first.tracks.to_csv() == again.tracks.to_csv() != other.tracks.to_csv()
    assert write_tracks_csv(first.tracks, tmp_path / "tracks.csv").read_bytes() == sample.tracks_csv.read_bytes()
    assert first.genres.to_csv(index=False) == sample.genres_csv.read_text()


def test_clip_bytes_are_deterministic(sample):
    jobs = [j for j in plan_sample(sample.audio_dir, n_tracks=N_TRACKS, seed=SEED).jobs if j.kind == "clip"][:2]
    for job in jobs:
        data, _ = clip_bytes(job)
        assert hashlib.sha1(data).hexdigest() == _sha1(Path(job.path))


def test_rerun_reuses_clips_and_repairs_a_damaged_one(sample):
    clips = sorted(sample.audio_dir.rglob("*.mp3"))
    before = {p: _sha1(p) for p in clips}
    rerun = generate_sample(sample.out_dir, n_tracks=N_TRACKS, seed=SEED, progress=False)
    assert (rerun.clips_written, rerun.clips_skipped) == (0, N_TRACKS)

    damaged = next(p for p in clips if p.stat().st_size > 1000)
    damaged.write_bytes(damaged.read_bytes()[:500])
    repaired = generate_sample(sample.out_dir, n_tracks=N_TRACKS, seed=SEED, progress=False)
    assert repaired.clips_written == 1
    assert {p: _sha1(p) for p in clips} == before


def test_changed_parameters_invalidate_previous_clips(sample):
    manifest = json.loads(sample.manifest_path.read_text())
    assert reusable_files(manifest, manifest["parameters"])
    assert reusable_files(manifest, {**manifest["parameters"], "seed": SEED + 1}) == {}


# --------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_full_regeneration_is_byte_identical_and_parallel_safe(sample, tmp_path):
    again = generate_sample(tmp_path / "again", n_tracks=N_TRACKS, seed=SEED, workers=2, progress=False)
    first = sorted(p.relative_to(sample.out_dir) for p in sample.out_dir.rglob("*") if p.is_file())
    second = sorted(p.relative_to(again.out_dir) for p in again.out_dir.rglob("*") if p.is_file())
    assert first == second
    for rel in first:
        assert (sample.out_dir / rel).read_bytes() == (again.out_dir / rel).read_bytes(), rel


@pytest.mark.slow
def test_other_parameters_regenerate_and_drop_stale_clips(sample, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(sample.out_dir, copy)
    smaller = generate_sample(copy, n_tracks=6, seed=SEED + 1, progress=False)
    assert smaller.clips_written == 6
    expected = {audio_path(smaller.audio_dir, j.track_id)
                for j in plan_sample(smaller.audio_dir, n_tracks=6, seed=SEED + 1).jobs if j.kind != "missing"}
    assert set(smaller.audio_dir.rglob("*.mp3")) == expected
