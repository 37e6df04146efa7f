"""The catalog step: FMA track metadata into MongoDB ``tracks``, upserted by ``track_id``.

SecantusDB (the embedded MongoDB) has no text indexes, so search runs on a
``search_terms`` array (lower-cased words of title, artist, album and genre) with a
multikey index; the same query works on real MongoDB and also matches word prefixes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.database import Database

from audio_features.fma_schema import audio_path
from audio_features.metadata import RowProblem, catalog_records, load_genres, load_tracks
from fma_platform.contracts import Collection
from pipeline.datasets import Dataset

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class CatalogTable:
    """Catalog documents of a dataset and the metadata rows that could not be read."""

    documents: list[dict]
    problems: list[RowProblem]

    @property
    def track_ids(self) -> list[int]:
        return [doc["track_id"] for doc in self.documents]


def search_terms(*texts: str | None) -> list[str]:
    """Distinct lower-cased words of ``texts``, in first-seen order."""
    words: dict[str, None] = {}
    for text in texts:
        for word in _WORD.findall((text or "").lower()):
            words.setdefault(word, None)
    return list(words)


def read_catalog(dataset: Dataset) -> CatalogTable:
    """Catalog documents for every readable track of ``dataset`` (malformed rows reported)."""
    table = load_tracks(dataset.tracks_csv, subset=dataset.subset)
    genres = load_genres(dataset.genres_csv)
    documents = []
    for record in catalog_records(table.tracks, genres):
        record["audio_path"] = str(audio_path(dataset.audio_dir, record["track_id"]))
        record["dataset"] = dataset.name
        record["synthetic"] = dataset.synthetic
        record["search_terms"] = search_terms(
            record["title"], record["artist_name"], record["album_title"], record["top_genre_title"]
        )
        documents.append(record)
    return CatalogTable(documents=documents, problems=table.problems)


def ensure_catalog_indexes(db: Database) -> None:
    """Indexes the player and the pipeline query by (idempotent)."""
    tracks = db[Collection.TRACKS]
    tracks.create_index([("track_id", ASCENDING)], unique=True, name="track_id_unique")
    tracks.create_index([("search_terms", ASCENDING)], name="search_terms")
    tracks.create_index([("top_genre_id", ASCENDING)], name="top_genre")
    tracks.create_index([("genre_ids", ASCENDING)], name="genres")
    tracks.create_index([("listens", DESCENDING)], name="popularity")


def upsert_catalog(db: Database, documents: list[dict], *, batch_size: int = 1000) -> dict[str, int]:
    """Replace-or-insert every document by ``track_id``; a re-run changes nothing."""
    ensure_catalog_indexes(db)
    counts = {"upserted": 0, "modified": 0, "matched": 0}
    for start in range(0, len(documents), batch_size):
        batch = documents[start:start + batch_size]
        result = db[Collection.TRACKS].bulk_write(
            [ReplaceOne({"track_id": doc["track_id"]}, doc, upsert=True) for doc in batch], ordered=False
        )
        counts["upserted"] += result.upserted_count
        counts["modified"] += result.modified_count
        counts["matched"] += result.matched_count
    return counts


def search_tracks(db: Database, query: str, *, limit: int = 20, genre_id: int | None = None) -> list[dict]:
    """Tracks whose words start with every word of ``query`` (most listened first)."""
    words = search_terms(query)
    conditions: list[dict] = [{"search_terms": {"$regex": f"^{re.escape(word)}"}} for word in words]
    if genre_id is not None:
        conditions.append({"top_genre_id": genre_id})
    selector = {"$and": conditions} if conditions else {}
    cursor = db[Collection.TRACKS].find(selector, {"_id": 0, "search_terms": 0})
    return list(cursor.sort([("listens", DESCENDING), ("track_id", ASCENDING)]).limit(limit))
