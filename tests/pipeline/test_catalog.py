"""The catalog step on an FMA-shaped dataset, against the real embedded MongoDB."""

from __future__ import annotations

import pandas as pd
import pytest

from audio_features.fma_schema import TRACKS_COLUMNS
from fma_platform.contracts import Collection
from pipeline.catalog import read_catalog, search_terms, search_tracks, upsert_catalog
from pipeline.datasets import Dataset


def write_small_fma(root):
    """Three tracks (one malformed) and a two-level genre tree, in FMA's formats."""
    meta = root / "fma_metadata"
    meta.mkdir(parents=True)
    pd.DataFrame(
        {"genre_id": [12, 25, 15], "#tracks": [2, 1, 1], "parent": [0, 12, 0],
         "title": ["Rock", "Punk", "Electronic"], "top_level": [12, 12, 15]}
    ).to_csv(meta / "genres.csv", index=False)
    rows = []
    for tid, title, artist, genres in [(2, "Food", "AWOL", [25]), (3, "Electric Ave", "Kurt Vile", [15]),
                                       (5, "Rain Song", "AWOL", [12])]:
        row = {col: "" for col in TRACKS_COLUMNS}
        row |= {("track", "title"): title, ("artist", "name"): artist, ("album", "title"): f"{artist} - Album",
                ("track", "genres"): str(genres), ("track", "genres_all"): str(genres), ("track", "tags"): "[]",
                ("album", "tags"): "[]", ("artist", "tags"): "[]", ("track", "duration"): 168,
                ("track", "listens"): 1000 * tid, ("track", "favorites"): tid, ("track", "interest"): 10 * tid,
                ("set", "subset"): "small", ("set", "split"): "training", ("track", "license"): "CC BY 4.0"}
        rows.append((tid, row))
    frame = pd.DataFrame([r for _, r in rows], index=pd.Index([t for t, _ in rows], name="track_id"))
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    frame.to_csv(meta / "tracks.csv")
    with open(meta / "tracks.csv", "a") as handle:  # a malformed row: not an integer id
        handle.write("abc" + "," * len(TRACKS_COLUMNS) + "\n")
    return Dataset("local", meta, root / "audio", synthetic=False)


def test_search_terms_are_lowercase_unique_words():
    assert search_terms("Rain Song", "AWOL", None, "Rock & Roll") == ["rain", "song", "awol", "rock", "roll"]


def test_catalog_upsert_is_idempotent_and_searchable(tmp_path, mongo_db):
    dataset = write_small_fma(tmp_path)
    table = read_catalog(dataset)
    assert table.track_ids == [2, 3, 5]
    assert [(p.line, p.track_id) for p in table.problems] == [(7, None)]  # 3 header lines + 3 rows
    by_id = {d["track_id"]: d for d in table.documents}
    assert by_id[2]["top_genre_title"] == "Rock"  # Punk's top level
    assert by_id[2]["audio_path"].endswith("audio/000/000002.mp3")

    first = upsert_catalog(mongo_db, table.documents)
    second = upsert_catalog(mongo_db, table.documents)
    assert first["upserted"] == 3 and second["upserted"] == 0 and second["modified"] == 0
    assert mongo_db[Collection.TRACKS].count_documents({}) == 3

    assert [t["track_id"] for t in search_tracks(mongo_db, "awol")] == [5, 2]  # most listened first
    assert [t["track_id"] for t in search_tracks(mongo_db, "rai so")] == [5]  # word prefixes
    assert [t["track_id"] for t in search_tracks(mongo_db, "awol", genre_id=12)] == [5, 2]
    assert search_tracks(mongo_db, "electronic")[0]["title"] == "Electric Ave"
    assert search_tracks(mongo_db, "zzz") == []


@pytest.mark.parametrize("kind", ["nope"])
def test_unknown_dataset_kind_is_refused(settings, kind):
    from pipeline.datasets import DatasetError, resolve_dataset

    with pytest.raises(DatasetError, match="unknown dataset 'nope'"):
        resolve_dataset(kind, settings=settings)
