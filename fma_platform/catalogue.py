"""Catalogue search: how a track's text becomes ``tracks.search_terms`` and how a query matches it.

The ETL writes ``search_terms`` on every ``tracks`` document (``track_search_terms``);
the player searches them (``search_tracks``). Both sides share this module, so a word the
catalogue stores is always a word a query can find.

SecantusDB (the embedded MongoDB) has no text indexes, so search runs on the
``search_terms`` array (distinct lower-cased words of title, artist, album and top genre)
under a multikey index. A query matches a track when every query word is the start of
one of its words (``"rai so"`` finds "Rain Song"); an anchored prefix regex uses that
index on real MongoDB too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from fma_platform.contracts import Collection

SEARCH_TERMS = "search_terms"
# The track fields whose words are searchable, in the order their words are stored.
SEARCHED_FIELDS: tuple[str, ...] = ("title", "artist_name", "album_title", "top_genre_title")
# Track documents as readers show them: without MongoDB's id and the search words.
TRACK_PROJECTION = {"_id": 0, SEARCH_TERMS: 0}
# Search results and genre lists: most listened first, ties by id (a stable order).
POPULARITY_ORDER = [("listens", DESCENDING), ("track_id", ASCENDING)]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def search_terms(*texts: str | None) -> list[str]:
    """Distinct lower-cased words (letters and digits) of ``texts``, in first-seen order."""
    words: dict[str, None] = {}
    for text in texts:
        for word in _WORD.findall((text or "").lower()):
            words.setdefault(word, None)
    return list(words)


def track_search_terms(track: Mapping[str, object]) -> list[str]:
    """The ``search_terms`` of a track document (words of its ``SEARCHED_FIELDS``)."""
    return search_terms(*(None if track.get(name) is None else str(track[name]) for name in SEARCHED_FIELDS))


def ensure_catalogue_indexes(db: Database) -> None:
    """Indexes the player and the pipeline query ``tracks`` by (idempotent)."""
    tracks = db[Collection.TRACKS]
    tracks.create_index([("track_id", ASCENDING)], unique=True, name="track_id_unique")
    tracks.create_index([(SEARCH_TERMS, ASCENDING)], name=SEARCH_TERMS)
    tracks.create_index([("top_genre_id", ASCENDING)], name="top_genre")
    tracks.create_index([("genre_ids", ASCENDING)], name="genres")
    tracks.create_index([("listens", DESCENDING)], name="popularity")


def search_tracks(db: Database, query: str, *, limit: int = 20, genre_id: int | None = None) -> list[dict]:
    """Tracks with a word starting with each word of ``query`` (of ``genre_id`` if given),
    most listened first; an empty query lists the most listened tracks."""
    conditions: list[dict] = [{SEARCH_TERMS: {"$regex": f"^{re.escape(word)}"}} for word in search_terms(query)]
    if genre_id is not None:
        conditions.append({"top_genre_id": genre_id})
    selector = {"$and": conditions} if conditions else {}
    return list(db[Collection.TRACKS].find(selector, TRACK_PROJECTION).sort(POPULARITY_ORDER).limit(limit))
