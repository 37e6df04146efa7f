"""The catalogue step and catalogue search on an FMA-shaped dataset, against the real embedded MongoDB."""

from __future__ import annotations

import pandas as pd
import pytest

from audio_features.fma_schema import TRACKS_COLUMNS
from fma_platform.catalogue import search_terms, search_tracks, track_search_terms
from fma_platform.contracts import Collection
from pipeline.catalogue import read_catalogue, upsert_catalogue
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
    track = {"title": "Café No. 9", "artist_name": "AWOL", "album_title": None, "top_genre_title": "Rock",
             "license": "CC BY"}  # only title, artist, album and genre are searchable
    assert track_search_terms(track) == ["café", "no", "9", "awol", "rock"]


def test_catalogue_upsert_is_idempotent_and_searchable(tmp_path, mongo_db):
    dataset = write_small_fma(tmp_path)
    table = read_catalogue(dataset)
    assert table.track_ids == [2, 3, 5]
    assert [(p.line, p.track_id) for p in table.problems] == [(7, None)]  # 3 header lines + 3 rows
    by_id = {d["track_id"]: d for d in table.documents}
    assert by_id[2]["top_genre_title"] == "Rock"  # Punk's top level
    assert by_id[2]["audio_path"].endswith("audio/000/000002.mp3")

    assert by_id[5]["search_terms"] == ["rain", "song", "awol", "album", "rock"]

    first = upsert_catalogue(mongo_db, table.documents)
    second = upsert_catalogue(mongo_db, table.documents)
    assert (first.inserted, second.inserted, second.matched, second.modified) == (3, 0, 3, 0)
    assert mongo_db[Collection.TRACKS].count_documents({}) == 3

    assert [t["track_id"] for t in search_tracks(mongo_db, "awol")] == [5, 2]  # most listened first
    assert [t["track_id"] for t in search_tracks(mongo_db, "rai so")] == [5]  # word prefixes
    assert [t["track_id"] for t in search_tracks(mongo_db, "awol", genre_id=12)] == [5, 2]
    assert search_tracks(mongo_db, "electronic")[0]["title"] == "Electric Ave"
    assert search_tracks(mongo_db, "zzz") == []
    assert [t["track_id"] for t in search_tracks(mongo_db, "", limit=2)] == [5, 3]  # no words: most listened
    assert "search_terms" not in search_tracks(mongo_db, "food")[0]


@pytest.mark.parametrize("kind", ["nope"])
def test_unknown_dataset_kind_is_refused(settings, kind):
    from pipeline.datasets import DatasetError, resolve_dataset

    with pytest.raises(DatasetError, match="unknown dataset 'nope'"):
        resolve_dataset(kind, settings=settings)
