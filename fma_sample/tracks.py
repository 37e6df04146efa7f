"""Made-up FMA metadata for the sample: the tracks table (FMA's 52 columns) and the genre table.

Artists, albums and tracks are invented per top-level genre, balanced like fma_small;
ids are sparse and increasing like FMA's; splits are ~80/10/10 with no artist in two
splits; listens, favourites and interest are long-tailed (lognormal) like FMA's but no
real listener is behind them, and every text column carries :data:`SYNTHETIC_MARK`.
Pure functions of (number of tracks, seed); :mod:`fma_sample.sample` writes the tables
through :mod:`audio_features.metadata`'s writers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from audio_features.fma_schema import FMA_CLIP_SECONDS, GENRES_COLUMNS, TOP_LEVEL_GENRES, TRACKS_COLUMNS
from fma_sample import GENERATOR_VERSION

SYNTHETIC_MARK = "[synthetic]"

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
# Bit rates of FMA's MP3s, with how often the sample draws each.
BIT_RATE_WEIGHTS: dict[int, float] = {320_000: 0.5, 256_000: 0.25, 192_000: 0.17, 128_000: 0.08}
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
                                  f"fma_sample v{GENERATOR_VERSION}.</p>",
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
        ("track", "bit_rate"): int(rng.choice(list(BIT_RATE_WEIGHTS), p=list(BIT_RATE_WEIGHTS.values()))),
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
    return tracks_frame(rows)


def tracks_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows (``{(group, column): value}`` plus ``("track_id", "")``) -> FMA's tracks table.

    Index ``track_id``, FMA's two-level columns in FMA's order (a ``_created`` helper key is
    dropped). The recorded corpus (:mod:`fma_sample.recorded`) builds its table here too.
    """
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
