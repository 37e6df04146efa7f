"""Training reads ``listening_events`` from the real MongoDB in bounded chunks: the same events
and interactions as the one-list reader it replaced, never more than one chunk on the driver."""

from __future__ import annotations

import tracemalloc

import pandas as pd
import pyarrow.parquet as pq
import pytest

from fma_platform.contracts import Collection
from simulator import synthetic_catalogue
from spark_jobs.recommend.errors import InteractionsError
from spark_jobs.recommend.events import (
    EVENT_COLUMNS,
    EVENT_TIME,
    TRACK_ID,
    data_snapshot,
    event_schema,
    events_from_mongo,
    stage_events,
)
from spark_jobs.recommend.interactions import implicit_interactions
from tests.spark_jobs.recommend.conftest import event, simulated_documents


def one_list_reader(spark, db):
    """The reader before chunking (every event in one Python list), kept as the reference."""
    projection = {"_id": 1, **{name: 1 for name in EVENT_COLUMNS if name != "event_id"}}
    documents = list(db[Collection.LISTENING_EVENTS].find({}, projection))
    frame = pd.DataFrame(documents).rename(columns={"_id": "event_id"}).reindex(columns=list(EVENT_COLUMNS))
    frame[EVENT_TIME] = pd.to_datetime(frame[EVENT_TIME], utc=True)
    frame[TRACK_ID] = frame[TRACK_ID].astype("int64")
    frame["track_duration_s"] = frame["track_duration_s"].astype("float64")
    return spark.createDataFrame(frame, schema=event_schema())


def stored(document: dict) -> dict:
    """A document as the stream stores it (``_id`` = event id, fields training does not read)."""
    return {"_id": document.pop("event_id"), **document, "session_id": "s", "source": "simulator",
            "ingest_batch": "q/0"}


def rows(frame) -> list[tuple]:
    return sorted(tuple(row) for row in frame.collect())


def test_chunked_events_and_their_interactions_equal_the_one_list_readers(spark, mongo_db, tmp_path):
    documents = simulated_documents(synthetic_catalogue(tracks=60, genres=4), listeners=25, events=2_500)
    documents += [event("edge", 7, "complete", at=1, listened=30.0, duration=None),  # no known duration
                  {k: v for k, v in event("edge", 8, "skip", at=2, listened=1.0).items() if k != "track_duration_s"}]
    mongo_db[Collection.LISTENING_EVENTS].insert_many([stored(dict(d)) for d in documents])
    reference = one_list_reader(spark, mongo_db)

    with events_from_mongo(spark, mongo_db, staging_dir=tmp_path, chunk_size=700) as chunked:
        assert len(list(tmp_path.glob("training-events-*/part-*.parquet"))) == 4  # 2,502 events / 700
        assert rows(chunked) == rows(reference)
        assert rows(implicit_interactions(chunked)) == rows(implicit_interactions(reference))
        assert data_snapshot(chunked) == data_snapshot(reference)
    assert list(tmp_path.iterdir()) == []  # the staging folder is gone after the block


def test_the_reader_never_holds_more_than_one_chunk(mongo_db, tmp_path):
    count, chunk = 12_000, 1_000
    mongo_db[Collection.LISTENING_EVENTS].insert_many(
        [stored(event(f"u{n % 40}", 1 + n % 300, "complete", at=n, listened=30.0)) for n in range(count)])

    tracemalloc.start()
    try:
        staged = stage_events(mongo_db, tmp_path / "chunked", chunk_size=chunk)
        chunked_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        stage_events(mongo_db, tmp_path / "whole", chunk_size=count)
        whole_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert (staged.events, staged.chunks, staged.largest_chunk) == (count, count // chunk, chunk)
    sizes = [pq.read_metadata(path).num_rows for path in sorted(staged.folder.glob("*.parquet"))]
    assert sizes == [chunk] * (count // chunk)
    print(f"peak Python memory staging {count} events: {chunked_peak / 2**20:.1f} MiB in chunks of {chunk}, "
          f"{whole_peak / 2**20:.1f} MiB as one chunk")
    assert chunked_peak < whole_peak / 4


def test_no_events_is_a_clear_error_and_leaves_no_staging(spark, mongo_db, tmp_path):
    with pytest.raises(InteractionsError, match="has no events"), \
            events_from_mongo(spark, mongo_db, staging_dir=tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []
