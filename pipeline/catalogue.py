"""The catalogue step: FMA track metadata into MongoDB ``tracks``, upserted by ``track_id``.

Each document carries the catalogue record of ``audio_features.metadata``, where its audio
lives, which dataset it came from, and its ``search_terms`` (``fma_platform.catalogue``:
the rule the player's search relies on).
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.database import Database

from audio_features.fma_schema import audio_path
from audio_features.metadata import RowProblem, catalogue_records, load_genres, load_tracks
from fma_platform.catalogue import SEARCH_TERMS, ensure_catalogue_indexes, track_search_terms
from fma_platform.contracts import Collection
from fma_platform.mongo import UpsertReport, upsert_by
from pipeline.datasets import Dataset

UPSERT_BATCH = 1000  # catalogue documents are small: larger batches than the 518-feature ones


@dataclass(frozen=True)
class CatalogueTable:
    """Catalogue documents of a dataset and the metadata rows that could not be read."""

    documents: list[dict]
    problems: list[RowProblem]

    @property
    def track_ids(self) -> list[int]:
        return [doc["track_id"] for doc in self.documents]


def read_catalogue(dataset: Dataset) -> CatalogueTable:
    """Catalogue documents for every readable track of ``dataset`` (malformed rows reported)."""
    table = load_tracks(dataset.tracks_csv, subset=dataset.subset)
    genres = load_genres(dataset.genres_csv)
    documents = []
    for record in catalogue_records(table.tracks, genres):
        record["audio_path"] = str(audio_path(dataset.audio_dir, record["track_id"]))
        record["dataset"] = dataset.name
        record["synthetic"] = dataset.synthetic
        record[SEARCH_TERMS] = track_search_terms(record)
        documents.append(record)
    return CatalogueTable(documents=documents, problems=table.problems)


def upsert_catalogue(db: Database, documents: list[dict]) -> UpsertReport:
    """Replace-or-insert every document by ``track_id`` (indexes first); a rerun changes nothing."""
    ensure_catalogue_indexes(db)
    return upsert_by(db[Collection.TRACKS], documents, keys=("track_id",), batch_size=UPSERT_BATCH)
