"""Loaders and writers for FMA's metadata files: ``tracks.csv``, ``genres.csv``, ``features.csv``.

The loaders read the real ``fma_metadata`` files and the synthetic sample (``fma_sample``)
alike; :func:`catalogue_records` flattens loaded tracks into the platform's catalogue records. ``tracks.csv``
is read record by record so that every malformed row is reported with its file line number
and a reason (a :class:`RowProblem`) instead of being dropped silently or failing the load.
A file that cannot be read as FMA metadata at all (missing, wrong header) raises
:class:`MetadataFileError`, whose message is one line.

The writers produce files shaped like FMA's (pandas' layout: three header lines for
``tracks.csv``, list columns as Python literals), so ``load(write(x))`` gives ``x`` back;
the synthetic sample writes its tables through them.
"""

from __future__ import annotations

import ast
import csv
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from audio_features.errors import AudioFeaturesError
from audio_features.fma_schema import (
    FEATURES_HEADER_NAMES,
    GENRES_COLUMNS,
    SPLITS,
    SUBSETS,
    TRACKS_COLUMNS,
    TRACKS_LIST_COLUMNS,
    feature_columns,
)

Column = tuple[str, str]

# Column types of tracks.csv, as FMA's ``utils.load`` gives them (integers are nullable here).
TRACKS_INT_COLUMNS: tuple[Column, ...] = (
    ("album", "comments"), ("album", "favorites"), ("album", "id"), ("album", "listens"),
    ("album", "tracks"),
    ("artist", "comments"), ("artist", "favorites"), ("artist", "id"),
    ("track", "bit_rate"), ("track", "comments"), ("track", "duration"),
    ("track", "favorites"), ("track", "interest"), ("track", "listens"), ("track", "number"),
)
TRACKS_FLOAT_COLUMNS: tuple[Column, ...] = (("artist", "latitude"), ("artist", "longitude"))
TRACKS_DATE_COLUMNS: tuple[Column, ...] = (
    ("album", "date_created"), ("album", "date_released"),
    ("artist", "active_year_begin"), ("artist", "active_year_end"), ("artist", "date_created"),
    ("track", "date_created"), ("track", "date_recorded"),
)
TRACKS_CATEGORY_COLUMNS: tuple[Column, ...] = (
    ("album", "type"), ("track", "genre_top"), ("track", "license"),
)
# List columns whose items are genre ids (the other list columns hold tag strings).
GENRE_LIST_COLUMNS: tuple[Column, ...] = (("track", "genres"), ("track", "genres_all"))
SUBSET_COLUMN: Column = ("set", "subset")
SPLIT_COLUMN: Column = ("set", "split")

TRACKS_INDEX_NAME = "track_id"
TRACKS_HEADER_LINES = 3  # group line, column line, "track_id,,,..." line
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"  # how FMA writes every date column
SUBSET_DTYPE = pd.CategoricalDtype(list(SUBSETS), ordered=True)
SPLIT_DTYPE = pd.CategoricalDtype(list(SPLITS))

# FMA artist bios can exceed the csv module's default field limit of 128 KiB.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024
_TRACK_ID = re.compile(r"[0-9]+")

# Keys of one catalogue record (see :func:`catalogue_records`).
CATALOGUE_FIELDS: tuple[str, ...] = (
    "track_id", "title", "artist_name", "album_title", "genre_ids", "top_genre_id",
    "top_genre_title", "duration", "license", "listens", "favorites", "interest",
    "subset", "split",
)


class MetadataError(AudioFeaturesError):
    """A metadata file or genre table the loaders cannot use."""


class MetadataFileError(MetadataError):
    """A metadata file cannot be read at all: missing, unreadable, or a wrong header."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class GenreHierarchyError(MetadataError):
    """The genre hierarchy cannot answer: a parent cycle or a parent that does not exist."""


class UnknownGenreError(GenreHierarchyError):
    """A genre id that genres.csv does not list."""


@dataclass(frozen=True)
class RowProblem:
    """One malformed row of a metadata file, kept out of the table with its reason."""

    line: int  # 1-based line of the file where the row starts
    track_id: int | None  # None when the id itself is unreadable
    reason: str

    def __str__(self) -> str:
        track = f" (track {self.track_id})" if self.track_id is not None else ""
        return f"line {self.line}{track}: {self.reason}"


@dataclass(frozen=True, eq=False)
class TracksTable:
    """The parsed tracks (index ``track_id``, 52 two-level columns) and the rows left out."""

    tracks: pd.DataFrame
    problems: list[RowProblem]


@dataclass(frozen=True)
class _Record:
    line: int
    track_id: int
    fields: list[str]


# tracks.csv ------------------------------------------------------------------------------


def load_tracks(
    path: Path | str, *, subset: str | None = None, split: str | None = None
) -> TracksTable:
    """Load FMA's ``tracks.csv``, typed as FMA's ``utils.load`` types it.

    Parameters
    ----------
    path
        The ``tracks.csv`` file.
    subset
        Keep the tracks of this FMA subset: ``"small"``, ``"medium"`` (includes small) or
        ``"large"`` (everything). None keeps every track.
    split
        Keep one split: ``"training"``, ``"validation"`` or ``"test"``.

    Returns
    -------
    TracksTable
        The tracks, and every malformed row with its line number and reason (problems are
        reported for the whole file, whatever the filters).

    Raises
    ------
    MetadataFileError
        The file is missing, is not UTF-8 CSV, or its header is not FMA's.
    """
    path = Path(path)
    _check_choice("subset", subset, SUBSETS)
    _check_choice("split", split, SPLITS)
    header, records, problems = _read_track_records(path)
    raw = _records_frame(header, records)
    lines = pd.Series([r.line for r in records], index=raw.index, dtype="int64")
    tracks, cell_problems = _convert_tracks(raw, lines)
    problems = sorted([*problems, *cell_problems], key=lambda p: (p.line, p.reason))
    return TracksTable(tracks=_select(tracks, subset=subset, split=split), problems=problems)


def _check_choice(name: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(choices)}")


def _open_text(path: Path) -> TextIO:
    if not path.is_file():
        raise MetadataFileError(path, "no such file")
    return path.open(encoding="utf-8", newline="")


def _csv_rows(reader: Iterator[list[str]], path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(first line, fields)`` per CSV record; records may span several lines."""
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise MetadataFileError(path, f"line {line}: unreadable CSV: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise MetadataFileError(path, f"line {line}: not UTF-8 text: {exc.reason}") from exc
        yield line, fields


def _read_track_records(path: Path) -> tuple[list[Column], list[_Record], list[RowProblem]]:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    records: list[_Record] = []
    problems: list[RowProblem] = []
    first_line: dict[int, int] = {}
    with _open_text(path) as handle:
        rows = _csv_rows(csv.reader(handle), path)
        header = _read_tracks_header(rows, path)
        for line, fields in rows:
            if not fields:  # a blank line is not a row
                continue
            record, problem = _check_record(line, fields, len(header) + 1, first_line)
            if problem is not None:
                problems.append(problem)
            else:
                first_line[record.track_id] = line
                records.append(record)
    return header, records, problems


def _read_tracks_header(rows: Iterator[tuple[int, list[str]]], path: Path) -> list[Column]:
    header_rows = [fields for _, fields in islice(rows, TRACKS_HEADER_LINES)]
    if len(header_rows) < TRACKS_HEADER_LINES:
        raise MetadataFileError(path, "too short for the three header lines of tracks.csv")
    groups, names, index_line = header_rows
    if index_line[:1] != [TRACKS_INDEX_NAME] or any(index_line[1:]):
        raise MetadataFileError(path, "line 3 is not the 'track_id,,,...' header line")
    if len(groups) != len(names) or len(groups) != len(index_line):
        raise MetadataFileError(path, "the three header lines differ in length")
    header = list(zip(groups[1:], names[1:]))
    _check_same_columns(path, header, TRACKS_COLUMNS)
    return header


def _check_same_columns(path: Path, found: list, expected: Iterable) -> None:
    expected = list(expected)
    found_set, expected_set = set(found), set(expected)
    missing = [c for c in expected if c not in found_set]
    unexpected = [c for c in found if c not in expected_set]
    duplicated = sorted(column for column, count in Counter(found).items() if count > 1)
    for label, columns in (("missing", missing), ("unexpected", unexpected),
                           ("duplicated", duplicated)):
        if columns:
            shown = ", ".join(".".join(c) for c in columns[:5])
            more = f" (+{len(columns) - 5} more)" if len(columns) > 5 else ""
            raise MetadataFileError(path, f"{label} columns: {shown}{more}")


def _check_record(
    line: int, fields: list[str], width: int, first_line: dict[int, int]
) -> tuple[_Record | None, RowProblem | None]:
    """Check a record's shape and id; return it or the problem that keeps it out."""
    text_id = fields[0].strip()
    track_id = int(text_id) if _TRACK_ID.fullmatch(text_id) else None
    if len(fields) != width:
        reason = f"wrong column count: {len(fields)} fields, expected {width}"
    elif track_id is None:
        reason = f"non-integer track_id {fields[0]!r}"
    elif track_id in first_line:
        reason = f"duplicate track_id {track_id} (first on line {first_line[track_id]})"
    else:
        return _Record(line, track_id, fields), None
    return None, RowProblem(line, track_id, reason)


def _records_frame(header: list[Column], records: list[_Record]) -> pd.DataFrame:
    """All cells as strings, NaN where empty, columns in FMA's order."""
    raw = pd.DataFrame(
        [r.fields[1:] for r in records],
        index=pd.Index([r.track_id for r in records], name=TRACKS_INDEX_NAME, dtype="int64"),
        columns=pd.MultiIndex.from_tuples(header),
        dtype=object,
    )
    raw = raw.mask(raw == "")
    return raw.reindex(columns=pd.MultiIndex.from_tuples(TRACKS_COLUMNS))


def _convert_tracks(
    raw: pd.DataFrame, lines: pd.Series
) -> tuple[pd.DataFrame, list[RowProblem]]:
    """Type every column; rows with an unparsable cell become problems."""
    columns: dict[Column, pd.Series] = {}
    problems: list[RowProblem] = []
    for column in TRACKS_COLUMNS:
        values, reasons = _convert_column(column, raw[column])
        columns[column] = values
        problems.extend(
            RowProblem(int(lines[tid]), int(tid), f"{'.'.join(column)}: {reason}")
            for tid, reason in reasons.items()
        )
    tracks = pd.DataFrame(columns, index=raw.index)
    bad_ids = sorted({p.track_id for p in problems})
    return tracks.drop(index=bad_ids), problems


def _convert_column(column: Column, raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """One column's typed values and, indexed by track_id, the reasons of bad cells."""
    if column in TRACKS_INT_COLUMNS:
        return _to_numbers(raw, integer=True)
    if column in TRACKS_FLOAT_COLUMNS:
        return _to_numbers(raw, integer=False)
    if column in TRACKS_DATE_COLUMNS:
        return _to_dates(raw)
    if column in TRACKS_LIST_COLUMNS:
        return _to_lists(raw, item_type=int if column in GENRE_LIST_COLUMNS else str)
    if column == SUBSET_COLUMN:
        return _to_choice(raw, SUBSET_DTYPE, label="subset")
    if column == SPLIT_COLUMN:
        return _to_choice(raw, SPLIT_DTYPE, label="split")
    if column in TRACKS_CATEGORY_COLUMNS:
        return raw.astype("category"), _no_reasons()
    return raw, _no_reasons()


def _no_reasons() -> pd.Series:
    return pd.Series([], dtype=object)


def _to_numbers(raw: pd.Series, *, integer: bool) -> tuple[pd.Series, pd.Series]:
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = raw.notna() & numbers.isna()
    if integer:
        bad |= numbers.notna() & (numbers % 1 != 0)
    kind = "an integer" if integer else "a number"
    reasons = raw[bad].map(lambda text: f"not {kind}: {text!r}")
    numbers = numbers.where(~bad)
    return (numbers.astype("Int64") if integer else numbers), reasons


def _to_dates(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    dates = pd.to_datetime(raw, format="ISO8601", errors="coerce")
    bad = raw.notna() & dates.isna()
    return dates, raw[bad].map(lambda text: f"not a date: {text!r}")


def _to_lists(raw: pd.Series, *, item_type: type) -> tuple[pd.Series, pd.Series]:
    values, reasons = [], {}
    for track_id, text in raw.items():
        value, reason = _parse_list(text, item_type=item_type)
        values.append(value)
        if reason is not None:
            reasons[track_id] = reason
    return pd.Series(values, index=raw.index, dtype=object), pd.Series(reasons, dtype=object)


def _parse_list(text: object, *, item_type: type) -> tuple[list | None, str | None]:
    """Parse one list literal such as ``[21, 811]``; an empty cell is an empty list."""
    if not isinstance(text, str):
        return [], None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None, f"unparsable list literal {text!r}"
    if not isinstance(value, list):
        return None, f"not a list literal: {text!r}"
    if not all(type(item) is item_type for item in value):
        return None, f"list items are not all {item_type.__name__}: {text!r}"
    return value, None


def _to_choice(
    raw: pd.Series, dtype: pd.CategoricalDtype, *, label: str
) -> tuple[pd.Series, pd.Series]:
    known = raw.isin(dtype.categories)
    expected = ", ".join(dtype.categories)
    reasons = raw[~known].map(
        lambda text: f"missing {label}" if pd.isna(text)
        else f"unknown {label} {text!r} (expected {expected})"
    )
    return raw.where(known).astype(dtype), reasons


def _select(tracks: pd.DataFrame, *, subset: str | None, split: str | None) -> pd.DataFrame:
    """FMA's nesting: subset ``medium`` holds small and medium tracks, ``large`` all."""
    if subset is not None:
        tracks = tracks[tracks[SUBSET_COLUMN] <= subset]
    if split is not None:
        tracks = tracks[tracks[SPLIT_COLUMN] == split]
    return tracks


def write_tracks_csv(tracks: pd.DataFrame, path: Path | str) -> Path:
    """Write tracks as FMA's ``tracks.csv``: three header lines, lists as Python literals.

    Accepts what :func:`load_tracks` returns, and looser frames (integers as floats, dates
    as ISO strings): every column is brought to FMA's type first.

    Raises
    ------
    ValueError
        Columns differ from FMA's 52, track ids are not unique integers, or a value does
        not fit its column's type.
    """
    path = Path(path)
    frame = _tracks_for_csv(tracks)
    frame.to_csv(path, date_format=DATE_FORMAT, lineterminator="\n", encoding="utf-8")
    return path


def _tracks_for_csv(tracks: pd.DataFrame) -> pd.DataFrame:
    found = {tuple(c) for c in tracks.columns}
    missing = [".".join(c) for c in TRACKS_COLUMNS if c not in found]
    unexpected = sorted(".".join(c) for c in found - set(TRACKS_COLUMNS))
    if missing or unexpected:
        raise ValueError(f"not FMA's tracks columns: missing {missing}, unexpected {unexpected}")
    index = pd.Index(tracks.index)
    if not pd.api.types.is_integer_dtype(index) or not index.is_unique:
        raise ValueError("tracks need unique integer track ids as their index")
    columns = {column: _column_for_csv(column, tracks[column]) for column in TRACKS_COLUMNS}
    frame = pd.DataFrame(columns, index=index.rename(TRACKS_INDEX_NAME))
    frame.columns = pd.MultiIndex.from_tuples(TRACKS_COLUMNS)  # unnamed levels, as FMA's
    return frame


def _column_for_csv(column: Column, values: pd.Series) -> pd.Series:
    name = ".".join(column)
    try:
        if column in TRACKS_INT_COLUMNS:
            return pd.to_numeric(values).astype("Int64")
        if column in TRACKS_FLOAT_COLUMNS:
            return pd.to_numeric(values).astype("float64")
        if column in TRACKS_DATE_COLUMNS:
            return pd.to_datetime(values, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: {exc}") from exc
    if column in TRACKS_LIST_COLUMNS:
        item_type = int if column in GENRE_LIST_COLUMNS else str
        return values.map(lambda value: _format_list(value, item_type=item_type, column=name))
    return values


def _format_list(value: object, *, item_type: type, column: str) -> str:
    """A list as FMA writes it: ``[21, 811]``, ``['rock', 'live']``; missing is ``[]``.

    Accepts lists, tuples, arrays and list literals (strings) whose items are ``item_type``.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "[]"
    if isinstance(value, str):
        parsed, reason = _parse_list(value, item_type=item_type)
        if reason is not None:
            raise ValueError(f"{column}: {reason}")
        return repr(parsed)
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise ValueError(f"{column}: expected a list, got {value!r}")
    items = [item.item() if isinstance(item, np.generic) else item for item in value]
    if not all(type(item) is item_type for item in items):
        raise ValueError(f"{column}: list items are not all {item_type.__name__}: {items!r}")
    return repr(items)


# genres.csv ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Genres:
    """FMA's genre table (index ``genre_id``) with hierarchy and title look-ups.

    ``parent`` is 0 for a top-level genre.
    """

    table: pd.DataFrame

    def title(self, genre_id: int) -> str:
        """The genre's title, e.g. ``"Hip-Hop"`` for 21."""
        return str(self.table.at[self._known(genre_id), "title"])

    def lineage(self, genre_id: int) -> list[int]:
        """The genre and its ancestors, from ``genre_id`` up to its top-level genre.

        Raises
        ------
        UnknownGenreError
            ``genre_id`` is not in the table.
        GenreHierarchyError
            An ancestor is missing from the table, or the parents form a cycle.
        """
        chain = [self._known(genre_id)]
        while (parent := int(self.table.at[chain[-1], "parent"])) != 0:
            if parent in chain:
                loop = " -> ".join(map(str, [*chain[chain.index(parent):], parent]))
                raise GenreHierarchyError(f"genre {genre_id}: parent cycle {loop}")
            if parent not in self.table.index:
                raise GenreHierarchyError(
                    f"genre {chain[-1]} has unknown parent {parent} (lineage of {genre_id})"
                )
            chain.append(parent)
        return chain

    def top_level(self, genre_id: int) -> int:
        """The top-level genre above ``genre_id`` (itself when it is top-level)."""
        return self.lineage(genre_id)[-1]

    def top_levels(self) -> dict[int, str]:
        """Top-level genre ids and titles."""
        roots = self.table[self.table["parent"] == 0]
        return {int(gid): str(title) for gid, title in roots["title"].items()}

    def _known(self, genre_id: int) -> int:
        if genre_id not in self.table.index:
            raise UnknownGenreError(f"unknown genre id {genre_id}")
        return int(genre_id)


def load_genres(path: Path | str) -> Genres:
    """Load FMA's ``genres.csv`` (``genre_id,#tracks,parent,title,top_level``).

    Raises
    ------
    MetadataFileError
        Missing file, wrong header, or a row with a wrong field count, a non-integer
        number or a duplicate genre id (with its line number).
    """
    path = Path(path)
    first_line: dict[int, int] = {}
    rows = []
    with _open_text(path) as handle:
        csv_rows = _csv_rows(csv.reader(handle), path)
        header = next((fields for _, fields in csv_rows), [])
        if tuple(header) != GENRES_COLUMNS:
            raise MetadataFileError(path, f"header is not {','.join(GENRES_COLUMNS)}")
        for line, fields in csv_rows:
            if fields:
                genre_id, row = _parse_genre_row(path, line, fields)
                if genre_id in first_line:
                    raise MetadataFileError(path, f"line {line}: duplicate genre_id {genre_id} "
                                                  f"(first on line {first_line[genre_id]})")
                first_line[genre_id] = line
                rows.append(row)
    index = pd.Index(list(first_line), name="genre_id", dtype="int64")
    table = pd.DataFrame(rows, index=index,
                         columns=list(GENRES_COLUMNS[1:]))
    return Genres(table.astype({"#tracks": "int64", "parent": "int64", "top_level": "int64"}))


def _parse_genre_row(path: Path, line: int, fields: list[str]) -> tuple[int, list]:
    if len(fields) != len(GENRES_COLUMNS):
        raise MetadataFileError(
            path, f"line {line}: {len(fields)} fields, expected {len(GENRES_COLUMNS)}")
    genre_id, n_tracks, parent, title, top_level = fields
    numbers = {"genre_id": genre_id, "#tracks": n_tracks, "parent": parent,
               "top_level": top_level}
    for name, text in numbers.items():
        if not re.fullmatch(r"-?[0-9]+", text.strip()):
            raise MetadataFileError(path, f"line {line}: {name} is not an integer: {text!r}")
    return int(genre_id), [int(n_tracks), int(parent), title, int(top_level)]


def write_genres_csv(genres: pd.DataFrame | Genres, path: Path | str) -> Path:
    """Write a genre table as FMA's ``genres.csv``.

    ``genres`` is indexed by ``genre_id`` (as :func:`load_genres` gives it) or has a
    ``genre_id`` column.
    """
    path = Path(path)
    table = genres.table if isinstance(genres, Genres) else genres
    if "genre_id" in table.columns:
        table = table.set_index("genre_id")
    missing = [c for c in GENRES_COLUMNS[1:] if c not in table.columns]
    if missing:
        raise ValueError(f"genres need the columns {missing}")
    table = table[list(GENRES_COLUMNS[1:])].astype(
        {"#tracks": "int64", "parent": "int64", "top_level": "int64"})
    table.index = pd.Index(table.index, name="genre_id").astype("int64")
    table.to_csv(path, lineterminator="\n", encoding="utf-8")
    return path


# features.csv ----------------------------------------------------------------------------


def load_features(path: Path | str) -> pd.DataFrame:
    """Load FMA's ``features.csv``: 518 float columns (feature, statistics, number).

    Raises
    ------
    MetadataFileError
        Missing or unparsable file, columns other than FMA's 518, track ids that are not
        unique integers, or a value that is not a number (named by track and column).
    """
    path = Path(path)
    if not path.is_file():
        raise MetadataFileError(path, "no such file")
    try:
        frame = pd.read_csv(path, index_col=0, header=[0, 1, 2])
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors are ValueErrors
        raise MetadataFileError(path, f"unreadable features CSV: {exc}") from exc
    expected = feature_columns()
    _check_same_columns(path, [tuple(c) for c in frame.columns], expected)
    frame = frame[expected]
    frame.columns = pd.MultiIndex.from_tuples(expected, names=FEATURES_HEADER_NAMES)
    frame.index = _feature_index(path, frame.index)
    return _numeric_features(path, frame)


def _feature_index(path: Path, index: pd.Index) -> pd.Index:
    ids = pd.to_numeric(pd.Series(index, dtype=object), errors="coerce")
    bad = ids.isna() | (ids % 1 != 0)
    if bad.any():
        raise MetadataFileError(path, f"non-integer track_id {index[bad.to_numpy()][0]!r}")
    ids = pd.Index(ids.astype("int64"), name=TRACKS_INDEX_NAME)
    if not ids.is_unique:
        raise MetadataFileError(path, f"duplicate track_id {ids[ids.duplicated()][0]}")
    return ids


def _numeric_features(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    numbers = frame.apply(pd.to_numeric, errors="coerce").astype("float64")
    bad = frame.notna() & numbers.isna()
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise MetadataFileError(
            path, f"track {frame.index[row]}, column {'/'.join(frame.columns[col])}: "
                  f"not a number: {frame.iat[row, col]!r}")
    return numbers


# Catalogue records -----------------------------------------------------------------------


def catalogue_records(tracks: pd.DataFrame, genres: Genres) -> list[dict[str, object]]:
    """Flatten tracks into plain catalogue records (keys :data:`CATALOGUE_FIELDS`).

    Values are plain Python (int, float, str, list, None: no NaN, no numpy scalars), ready
    to upsert by ``track_id``. The top-level genre is the single root of the track's
    genres (FMA's ``genre_top`` notion); None when they span several roots or none.

    Raises
    ------
    GenreHierarchyError
        A track lists a genre the genre table cannot place.
    """
    columns = {
        "title": ("track", "title"), "artist_name": ("artist", "name"),
        "album_title": ("album", "title"), "genre_ids": ("track", "genres"),
        "duration": ("track", "duration"), "license": ("track", "license"),
        "listens": ("track", "listens"), "favorites": ("track", "favorites"),
        "interest": ("track", "interest"), "subset": SUBSET_COLUMN, "split": SPLIT_COLUMN,
    }
    records = []
    for track_id, row in zip(tracks.index, tracks[list(columns.values())].itertuples(index=False)):
        record = {"track_id": int(track_id)}
        record |= {key: _plain(value) for key, value in zip(columns, row)}
        record["genre_ids"] = [int(g) for g in record["genre_ids"] or []]
        top_id = _single_root(genres, record["genre_ids"], track_id=int(track_id))
        record["top_genre_id"] = top_id
        record["top_genre_title"] = genres.title(top_id) if top_id is not None else None
        records.append({key: record[key] for key in CATALOGUE_FIELDS})
    return records


def _single_root(genres: Genres, genre_ids: list[int], *, track_id: int) -> int | None:
    try:
        roots = {genres.top_level(genre_id) for genre_id in genre_ids}
    except GenreHierarchyError as exc:
        raise type(exc)(f"track {track_id}: {exc}") from exc
    return roots.pop() if len(roots) == 1 else None


def _plain(value: object) -> object:
    """A cell as a plain Python value: None for any missing marker, no numpy scalars."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    return value
