"""Tests of the FMA metadata loaders and writers on small FMA-shaped files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audio_features.fma_schema import FEATURES_HEADER_NAMES, TRACKS_COLUMNS, feature_columns
from audio_features.metadata import (
    CATALOGUE_FIELDS,
    GenreHierarchyError,
    MetadataFileError,
    RowProblem,
    UnknownGenreError,
    catalogue_records,
    load_features,
    load_genres,
    load_tracks,
    write_genres_csv,
    write_tracks_csv,
)

# One real-looking row (FMA's track 2), as tracks.csv spells it.
BASE_ROW: dict[tuple[str, str], str] = {
    ("album", "comments"): "0", ("album", "date_created"): "2008-11-26 01:44:45",
    ("album", "date_released"): "2009-01-05 00:00:00", ("album", "engineer"): "",
    ("album", "favorites"): "4", ("album", "id"): "1", ("album", "information"): "<p></p>",
    ("album", "listens"): "6073", ("album", "producer"): "", ("album", "tags"): "[]",
    ("album", "title"): "AWOL - A Way Of Life", ("album", "tracks"): "7",
    ("album", "type"): "Album",
    ("artist", "active_year_begin"): "2006-01-01 00:00:00", ("artist", "active_year_end"): "",
    ("artist", "associated_labels"): "",
    ("artist", "bio"): "<p>A Way Of Life, A Collective of Hip-Hop from the UK</p>",
    ("artist", "comments"): "0", ("artist", "date_created"): "2008-11-26 01:42:32",
    ("artist", "favorites"): "9", ("artist", "id"): "1", ("artist", "latitude"): "51.89524841",
    ("artist", "location"): "Reading", ("artist", "longitude"): "-0.1426579",
    ("artist", "members"): "Sajje Morocco,Brownbum,ZawidaBroadcaster", ("artist", "name"): "AWOL",
    ("artist", "related_projects"): "", ("artist", "tags"): "['awol', 'hip-hop']",
    ("artist", "website"): "http://www.AzillionRecords.blogspot.com",
    ("artist", "wikipedia_page"): "",
    ("set", "split"): "training", ("set", "subset"): "small",
    ("track", "bit_rate"): "256000", ("track", "comments"): "0", ("track", "composer"): "",
    ("track", "date_created"): "2008-11-26 01:48:12",
    ("track", "date_recorded"): "2008-11-26 00:00:00", ("track", "duration"): "168",
    ("track", "favorites"): "2", ("track", "genre_top"): "Hip-Hop", ("track", "genres"): "[21]",
    ("track", "genres_all"): "[21]", ("track", "information"): "", ("track", "interest"): "4656",
    ("track", "language_code"): "en",
    ("track", "license"): "Attribution-NonCommercial-ShareAlike 3.0 International",
    ("track", "listens"): "1293", ("track", "lyricist"): "", ("track", "number"): "3",
    ("track", "publisher"): "", ("track", "tags"): "[]", ("track", "title"): "Food",
}


def _row(track_id: object, **changes: str) -> list[str]:
    """A tracks.csv record; ``changes`` keys are ``group__column``."""
    row = dict(BASE_ROW)
    for key, value in changes.items():
        group, column = key.split("__")
        assert (group, column) in row, key
        row[(group, column)] = value
    return [str(track_id), *(row[column] for column in TRACKS_COLUMNS)]


GOOD_ROWS = [
    # The bio spans two lines: line numbers below must count physical lines.
    _row(2, artist__bio="<p>A Way Of Life,\nA Collective of Hip-Hop from the UK</p>"),
    _row(3, track__title="Electric Ave", track__duration="237", track__listens="514"),
    _row(5, track__title="This World", track__tags="['hip hop', \"rock 'n' roll\"]"),
    _row(10, artist__name="Kurt Vile", track__title="Freeway", track__genre_top="Pop",
         track__genres="[10]", track__genres_all="[10]", artist__latitude="",
         artist__longitude="", album__title=""),
    _row(20, track__title="Spiritual Level", set__subset="medium", track__genre_top="",
         track__genres="[76, 25]", track__genres_all="[10, 12, 25, 76]",
         track__date_recorded=""),
    _row(140, track__title="Queen Of The Wires", set__subset="large", set__split="test",
         track__genre_top="Folk", track__genres="[17]", track__genres_all="[17]"),
]
BAD_ROWS = [  # (row, expected line, reason)
    (_row("abc"), 11, "non-integer track_id 'abc'"),
    (_row(3), 12, "duplicate track_id 3 (first on line 6)"),
    (_row(141)[:-1], 13, "wrong column count: 52 fields, expected 53"),
    (_row(142, track__genres="[21,"), 14, "track.genres: unparsable list literal '[21,'"),
    (_row(143, set__subset="huge"), 15,
     "set.subset: unknown subset 'huge' (expected small, medium, large)"),
    (_row(144, set__split=""), 16, "set.split: missing split"),
    (_row(145, track__listens="many"), 17, "track.listens: not an integer: 'many'"),
    (_row(146, track__date_created="yesterday"), 18,
     "track.date_created: not a date: 'yesterday'"),
    (_row(147, track__genres="['21']"), 19,
     "track.genres: list items are not all int: \"['21']\""),
]


def _tracks_csv(rows: list[list[str]]) -> str:
    """tracks.csv text in FMA's shape: group line, column line, ``track_id,,,...`` line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["", *(group for group, _ in TRACKS_COLUMNS)])
    writer.writerow(["", *(column for _, column in TRACKS_COLUMNS)])
    writer.writerow(["track_id", *([""] * len(TRACKS_COLUMNS))])
    writer.writerows(rows)
    return buffer.getvalue()


@pytest.fixture()
def tracks_csv(tmp_path) -> Path:
    path = tmp_path / "tracks.csv"
    path.write_text(_tracks_csv(GOOD_ROWS), encoding="utf-8")
    return path


@pytest.fixture()
def messy_tracks_csv(tmp_path) -> Path:
    path = tmp_path / "tracks.csv"
    path.write_text(_tracks_csv(GOOD_ROWS + [row for row, _, _ in BAD_ROWS]), encoding="utf-8")
    return path


GENRES_CSV = """\
genre_id,#tracks,parent,title,top_level
1,8693,38,Avant-Garde,38
10,13845,0,Pop,10
12,32923,0,Rock,12
17,12706,0,Folk,17
21,8389,0,Hip-Hop,21
25,9261,12,Punk,12
38,38154,0,Experimental,38
76,1,10,Experimental Pop,10
85,1,25,"Garage, Punk",12
"""


@pytest.fixture()
def genres_csv(tmp_path) -> Path:
    path = tmp_path / "genres.csv"
    path.write_text(GENRES_CSV, encoding="utf-8")
    return path


# tracks.csv ------------------------------------------------------------------------------


def test_load_tracks_types_columns_as_fma(tracks_csv):
    table = load_tracks(tracks_csv)
    tracks = table.tracks

    assert table.problems == []
    assert list(tracks.index) == [2, 3, 5, 10, 20, 140]
    assert tracks.index.name == "track_id"
    assert [tuple(c) for c in tracks.columns] == list(TRACKS_COLUMNS)
    assert tracks.at[20, ("track", "genres")] == [76, 25]
    assert tracks.at[20, ("track", "genres_all")] == [10, 12, 25, 76]
    assert tracks.at[5, ("track", "tags")] == ["hip hop", "rock 'n' roll"]
    assert tracks.at[2, ("artist", "tags")] == ["awol", "hip-hop"]
    assert tracks.at[2, ("artist", "bio")] == (
        "<p>A Way Of Life,\nA Collective of Hip-Hop from the UK</p>")
    assert tracks.at[3, ("track", "duration")] == 237
    assert tracks.at[2, ("track", "date_created")] == pd.Timestamp("2008-11-26 01:48:12")
    assert pd.isna(tracks.at[20, ("track", "date_recorded")])
    assert pd.isna(tracks.at[10, ("artist", "latitude")])
    assert tracks.at[2, ("artist", "latitude")] == pytest.approx(51.89524841)
    assert tracks[("set", "subset")].cat.ordered
    assert list(tracks[("set", "subset")].cat.categories) == ["small", "medium", "large"]


@pytest.mark.parametrize(("subset", "expected"), [
    ("small", [2, 3, 5, 10]),
    ("medium", [2, 3, 5, 10, 20]),
    ("large", [2, 3, 5, 10, 20, 140]),
    (None, [2, 3, 5, 10, 20, 140]),
])
def test_subsets_nest_like_fma(tracks_csv, subset, expected):
    assert list(load_tracks(tracks_csv, subset=subset).tracks.index) == expected


def test_split_filter(tracks_csv):
    assert list(load_tracks(tracks_csv, split="test").tracks.index) == [140]
    assert list(load_tracks(tracks_csv, subset="small", split="training").tracks.index) == [
        2, 3, 5, 10]
    with pytest.raises(ValueError, match="unknown subset 'tiny'"):
        load_tracks(tracks_csv, subset="tiny")


def test_malformed_rows_are_reported_with_line_and_reason(messy_tracks_csv):
    table = load_tracks(messy_tracks_csv)

    assert list(table.tracks.index) == [2, 3, 5, 10, 20, 140]
    assert [(p.line, p.reason) for p in table.problems] == [
        (line, reason) for _, line, reason in BAD_ROWS]
    assert table.problems[0].track_id is None
    assert table.problems[1].track_id == 3
    assert str(table.problems[6]) == "line 17 (track 145): track.listens: not an integer: 'many'"
    # The first track 3 is kept, not the duplicate.
    assert table.tracks.at[3, ("track", "title")] == "Electric Ave"


def test_problems_are_reported_whatever_the_filter(messy_tracks_csv):
    table = load_tracks(messy_tracks_csv, subset="small")
    assert len(table.tracks) == 4
    assert len(table.problems) == len(BAD_ROWS)


def test_row_with_several_bad_cells_is_reported_once_per_cell(tmp_path):
    path = tmp_path / "tracks.csv"
    path.write_text(_tracks_csv([_row(7, track__listens="x", set__split="train")]))

    table = load_tracks(path)

    assert table.tracks.empty
    assert table.problems == [
        RowProblem(4, 7, "set.split: unknown split 'train' (expected training, validation, test)"),
        RowProblem(4, 7, "track.listens: not an integer: 'x'"),
    ]


def test_unreadable_tracks_files_raise_one_line_errors(tmp_path):
    with pytest.raises(MetadataFileError, match="no such file"):
        load_tracks(tmp_path / "absent.csv")

    no_index_line = tmp_path / "two_headers.csv"
    no_index_line.write_text("\n".join(_tracks_csv(GOOD_ROWS).split("\n")[:2] + ["2,0"]))
    with pytest.raises(MetadataFileError, match="line 3 is not the 'track_id,,,...' header"):
        load_tracks(no_index_line)

    lines = _tracks_csv(GOOD_ROWS[:1]).split("\n")
    lines[1] = lines[1].removesuffix(",title") + ",name_of_track"  # track.title is last
    renamed = tmp_path / "renamed.csv"
    renamed.write_text("\n".join(lines))
    with pytest.raises(MetadataFileError, match="missing columns: track.title") as err:
        load_tracks(renamed)
    assert "\n" not in str(err.value)


def test_write_tracks_reproduces_the_fma_file_byte_for_byte(tracks_csv, tmp_path):
    written = write_tracks_csv(load_tracks(tracks_csv).tracks, tmp_path / "written.csv")
    assert written.read_bytes() == tracks_csv.read_bytes()


def test_load_of_written_tracks_round_trips(tracks_csv, tmp_path):
    tracks = load_tracks(tracks_csv).tracks
    again = load_tracks(write_tracks_csv(tracks, tmp_path / "again.csv"))
    assert again.problems == []
    pd.testing.assert_frame_equal(again.tracks, tracks)


def test_writer_accepts_a_loosely_typed_frame(tracks_csv, tmp_path):
    """A generator may hold ints as floats, dates as strings, lists as arrays."""
    tracks = load_tracks(tracks_csv).tracks
    loose = tracks.copy()
    loose[("track", "listens")] = loose[("track", "listens")].astype("float64")
    created = loose[("track", "date_created")]
    loose[("track", "date_created")] = created.dt.strftime("%Y-%m-%d %H:%M:%S")
    loose[("track", "genres")] = loose[("track", "genres")].map(np.array)
    loose[("track", "tags")] = loose[("track", "tags")].map(repr)  # literals, as in a CSV
    loose[("set", "subset")] = loose[("set", "subset")].astype(str)

    again = load_tracks(write_tracks_csv(loose, tmp_path / "loose.csv"))

    pd.testing.assert_frame_equal(again.tracks, tracks)


def test_writer_rejects_frames_that_are_not_fma_tracks(tracks_csv, tmp_path):
    tracks = load_tracks(tracks_csv).tracks
    with pytest.raises(ValueError, match="missing \\['track.title'\\]"):
        write_tracks_csv(tracks.drop(columns=[("track", "title")]), tmp_path / "x.csv")
    fractional = tracks.copy()
    fractional[("track", "listens")] = 1.5
    with pytest.raises(ValueError, match="track.listens"):
        write_tracks_csv(fractional, tmp_path / "x.csv")
    string_genres = tracks.copy()
    string_genres[("track", "genres")] = [["21"]] * len(tracks)
    with pytest.raises(ValueError, match="track.genres: list items are not all int"):
        write_tracks_csv(string_genres, tmp_path / "x.csv")


# genres.csv ------------------------------------------------------------------------------


def test_genres_hierarchy_gives_top_level_and_titles(genres_csv):
    genres = load_genres(genres_csv)

    assert len(genres.table) == 9
    assert genres.title(85) == "Garage, Punk"
    assert genres.lineage(85) == [85, 25, 12]
    assert genres.top_level(85) == 12
    assert genres.top_level(1) == 38
    assert genres.top_level(21) == 21
    assert genres.top_levels() == {10: "Pop", 12: "Rock", 17: "Folk", 21: "Hip-Hop",
                                   38: "Experimental"}


def test_genre_cycles_and_unknown_parents_raise_clear_errors(tmp_path):
    path = tmp_path / "genres.csv"
    path.write_text("genre_id,#tracks,parent,title,top_level\n"
                    "5,1,7,Classical,5\n7,1,9,Opera,5\n9,1,5,Lieder,5\n"
                    "30,1,999,Orphan,30\n")
    genres = load_genres(path)

    with pytest.raises(GenreHierarchyError, match="genre 5: parent cycle 5 -> 7 -> 9 -> 5"):
        genres.top_level(5)
    with pytest.raises(GenreHierarchyError, match="genre 30 has unknown parent 999"):
        genres.top_level(30)
    with pytest.raises(UnknownGenreError, match="unknown genre id 4"):
        genres.title(4)


def test_genres_round_trip_byte_for_byte(genres_csv, tmp_path):
    genres = load_genres(genres_csv)
    written = write_genres_csv(genres, tmp_path / "written.csv")
    assert written.read_bytes() == genres_csv.read_bytes()
    as_column = write_genres_csv(genres.table.reset_index(), tmp_path / "column.csv")
    assert as_column.read_bytes() == genres_csv.read_bytes()


@pytest.mark.parametrize(("text", "message"), [
    ("id,#tracks,parent,title,top_level\n", "header is not genre_id,#tracks"),
    ("genre_id,#tracks,parent,title,top_level\n1,2,0,Pop,1\n1,3,0,Rock,1\n",
     "line 3: duplicate genre_id 1 \\(first on line 2\\)"),
    ("genre_id,#tracks,parent,title,top_level\n1,many,0,Pop,1\n",
     "line 2: #tracks is not an integer: 'many'"),
    ("genre_id,#tracks,parent,title,top_level\n1,2,0,Pop\n", "line 2: 4 fields, expected 5"),
])
def test_malformed_genres_files_raise(tmp_path, text, message):
    path = tmp_path / "genres.csv"
    path.write_text(text)
    with pytest.raises(MetadataFileError, match=message):
        load_genres(path)


# features.csv ----------------------------------------------------------------------------


def _features_frame(track_ids: list[int]) -> pd.DataFrame:
    columns = pd.MultiIndex.from_tuples(feature_columns(), names=FEATURES_HEADER_NAMES)
    values = np.random.default_rng(0).normal(size=(len(track_ids), len(columns)))
    return pd.DataFrame(values, index=pd.Index(track_ids, name="track_id"), columns=columns)


def test_load_features_reads_fma_layout(tmp_path):
    frame = _features_frame([2, 3, 5])
    path = tmp_path / "features.csv"
    frame.to_csv(path, float_format="%.10e")

    assert path.read_text().split("\n")[3].startswith("track_id,,")  # FMA's 4 header lines
    features = load_features(path)

    assert features.shape == (3, 518)
    assert [tuple(c) for c in features.columns] == feature_columns()
    assert list(features.index) == [2, 3, 5]
    assert features.at[3, ("mfcc", "mean", "01")] == pytest.approx(
        frame.at[3, ("mfcc", "mean", "01")], rel=1e-9)


def test_load_features_rejects_wrong_columns_and_values(tmp_path):
    frame = _features_frame([2, 3])
    path = tmp_path / "features.csv"
    frame.drop(columns=[("zcr", "std", "01")]).to_csv(path)
    with pytest.raises(MetadataFileError, match="missing columns: zcr.std.01"):
        load_features(path)

    bad = frame.astype(object)
    bad.at[3, ("mfcc", "max", "04")] = "loud"
    bad.to_csv(path)
    with pytest.raises(MetadataFileError,
                       match="track 3, column mfcc/max/04: not a number: 'loud'"):
        load_features(path)

    with pytest.raises(MetadataFileError, match="no such file"):
        load_features(tmp_path / "absent.csv")


# Catalogue records -----------------------------------------------------------------------


def test_catalogue_records_are_plain_values(tracks_csv, genres_csv):
    records = catalogue_records(load_tracks(tracks_csv).tracks, load_genres(genres_csv))

    assert [r["track_id"] for r in records] == [2, 3, 5, 10, 20, 140]
    assert records[0] == {
        "track_id": 2, "title": "Food", "artist_name": "AWOL",
        "album_title": "AWOL - A Way Of Life", "genre_ids": [21], "top_genre_id": 21,
        "top_genre_title": "Hip-Hop", "duration": 168,
        "license": "Attribution-NonCommercial-ShareAlike 3.0 International",
        "listens": 1293, "favorites": 2, "interest": 4656, "subset": "small",
        "split": "training",
    }
    assert tuple(records[0]) == CATALOGUE_FIELDS
    assert type(records[0]["listens"]) is int
    assert records[3]["album_title"] is None  # missing, not NaN
    # Genres under two roots (Pop, Rock): no single top-level genre, as FMA's genre_top.
    assert (records[4]["top_genre_id"], records[4]["top_genre_title"]) == (None, None)
    assert records[5]["top_genre_title"] == "Folk"


def test_catalogue_records_name_the_track_with_an_unknown_genre(tracks_csv, genres_csv):
    tracks = load_tracks(tracks_csv).tracks
    tracks.at[10, ("track", "genres")] = [4242]
    with pytest.raises(UnknownGenreError, match="track 10: unknown genre id 4242"):
        catalogue_records(tracks, load_genres(genres_csv))
