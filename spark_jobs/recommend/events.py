"""Listening events for training: read from MongoDB or a file, and the identity of an event set.

MongoDB's events reach Spark in bounded chunks (``events_from_mongo``): the cursor is read
``chunk_size`` documents at a time, each chunk becomes one Parquet file in a staging
folder, and Spark reads the folder. The driver holds one chunk at a time, however many
events there are (``stage_events`` reports the chunks); the staging folder is deleted
when the caller is done with the DataFrame. Under compose the folder is in the state
volume every Spark worker mounts.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pymongo.database import Database
from pyspark.sql import DataFrame, SparkSession, functions as F
from pyspark.sql.types import StructType

from fma_platform.contracts import Collection
from fma_platform.events import SPARK_SCHEMA_DDL, spark_schema
from fma_platform.files import remove_folder
from fma_platform.mongo import batches
from spark_jobs.recommend.errors import InteractionsError

log = logging.getLogger(__name__)

USER_ID = "user_id"
TRACK_ID = "track_id"
EVENT_TIME = "client_ts"
LISTENED = "listened_s"
DURATION = "track_duration_s"
EVENT_COLUMNS = ("event_id", USER_ID, TRACK_ID, "type", "position_s", LISTENED, DURATION, EVENT_TIME)
# Events per staged chunk: ~20 MB of Python objects on the driver at a time.
EVENT_CHUNK_SIZE = 20_000
# The chunks' Arrow schema, as Spark reads it (microsecond UTC timestamps: Spark cannot
# read Parquet's nanosecond ones).
ARROW_EVENT_SCHEMA = pa.schema([
    ("event_id", pa.string()), (USER_ID, pa.string()), (TRACK_ID, pa.int64()), ("type", pa.string()),
    ("position_s", pa.float64()), (LISTENED, pa.float64()), (DURATION, pa.float64()),
    (EVENT_TIME, pa.timestamp("us", tz="UTC")),
])


def event_schema() -> StructType:
    """The contract's Spark schema restricted to ``EVENT_COLUMNS`` (in that order)."""
    fields = {field.name: field for field in spark_schema().fields}
    return StructType([fields[name] for name in EVENT_COLUMNS])


def events_frame(documents: Iterable[dict]) -> pd.DataFrame:
    """``listening_events`` documents (``_id`` = event id) as a frame of ``EVENT_COLUMNS``."""
    frame = pd.DataFrame(list(documents)).rename(columns={"_id": "event_id"})
    frame = frame.reindex(columns=list(EVENT_COLUMNS))
    frame[EVENT_TIME] = pd.to_datetime(frame[EVENT_TIME], utc=True)
    frame[TRACK_ID] = frame[TRACK_ID].astype("int64")
    frame[DURATION] = frame[DURATION].astype("float64")
    return frame


def event_chunks(db: Database, *, chunk_size: int = EVENT_CHUNK_SIZE) -> Iterator[pd.DataFrame]:
    """``listening_events`` of ``db`` as frames of at most ``chunk_size`` events, read lazily
    from one cursor (only the fields training uses)."""
    if chunk_size < 1:
        raise InteractionsError(f"chunk_size must be >= 1, got {chunk_size}")
    projection = {"_id": 1, **{name: 1 for name in EVENT_COLUMNS if name != "event_id"}}
    cursor = db[Collection.LISTENING_EVENTS].find({}, projection, batch_size=min(chunk_size, 10_000))
    for documents in batches(cursor, chunk_size):
        yield events_frame(documents)


@dataclass(frozen=True)
class StagedEvents:
    """Events written to a staging folder: where, how many, and in how many chunks."""

    folder: Path
    events: int
    chunks: int
    largest_chunk: int


def stage_events(db: Database, folder: Path, *, chunk_size: int = EVENT_CHUNK_SIZE) -> StagedEvents:
    """Write ``listening_events`` to ``folder`` as Parquet files of at most ``chunk_size``
    events, one chunk in memory at a time; raise ``InteractionsError`` when there are none."""
    folder.mkdir(parents=True, exist_ok=False)
    events = chunks = largest = 0
    for number, frame in enumerate(event_chunks(db, chunk_size=chunk_size)):
        table = pa.Table.from_pandas(frame, schema=ARROW_EVENT_SCHEMA, preserve_index=False)
        pq.write_table(table, folder / f"part-{number:05d}.parquet")
        events, chunks, largest = events + len(frame), chunks + 1, max(largest, len(frame))
    if events == 0:
        raise InteractionsError(f"{db.name}.{Collection.LISTENING_EVENTS} has no events")
    return StagedEvents(folder=folder, events=events, chunks=chunks, largest_chunk=largest)


@contextmanager
def events_from_mongo(spark: SparkSession, db: Database, *, staging_dir: Path,
                      chunk_size: int = EVENT_CHUNK_SIZE) -> Iterator[DataFrame]:
    """``listening_events`` of ``db`` as a Spark DataFrame with ``EVENT_COLUMNS``, staged in
    chunks under ``staging_dir`` (see the module doc); the DataFrame is usable in the block."""
    folder = Path(staging_dir) / f"training-events-{uuid.uuid4().hex[:12]}"
    try:
        staged = stage_events(db, folder, chunk_size=chunk_size)
        log.info("staged %d events in %d chunks (largest %d) at %s", staged.events, staged.chunks,
                 staged.largest_chunk, folder)
        yield spark.read.schema(event_schema()).parquet(str(folder))
    finally:
        remove_staging(folder)


def remove_staging(folder: Path) -> None:
    """Delete a staging folder of events (only disk space if it cannot be removed)."""
    remove_folder(folder, what="staged events")


def events_from_documents(spark: SparkSession, documents) -> DataFrame:
    """Event documents in the wire format (``fma_platform.events.to_document``, e.g. simulated
    ones) as a DataFrame with ``EVENT_COLUMNS`` (benchmarks, tests)."""
    frame = pd.DataFrame(list(documents)).reindex(columns=list(EVENT_COLUMNS))
    if frame.empty:
        raise InteractionsError("no event documents")
    return spark.createDataFrame(frame, schema=event_schema())


def read_events_file(spark: SparkSession, path: str | Path) -> DataFrame:
    """Events from Parquet (a ``.parquet`` file or folder) or JSONL in the wire format."""
    path = Path(path)
    if not path.exists():
        raise InteractionsError(f"events path {path} does not exist")
    if path.suffix == ".parquet" or (path.is_dir() and any(path.glob("*.parquet"))):
        frame = spark.read.parquet(str(path))
    else:
        frame = spark.read.schema(SPARK_SCHEMA_DDL).option("mode", "FAILFAST").json(str(path))
    missing = [name for name in EVENT_COLUMNS if name not in frame.columns]
    if missing:
        raise InteractionsError(f"events at {path} lack columns {missing}")
    return frame.select(*EVENT_COLUMNS)


def data_snapshot(events: DataFrame) -> dict:
    """Identity of an event set: count, time range and an order-free hash of the event ids."""
    row = events.agg(
        F.count("*").alias("events"),
        F.countDistinct(USER_ID).alias("users"),
        F.countDistinct(TRACK_ID).alias("tracks"),
        F.min(EVENT_TIME).alias("first_event"),
        F.max(EVENT_TIME).alias("last_event"),
        # 48-bit prefixes of sha256(event_id), summed as decimals: no overflow, no order.
        F.sum(F.conv(F.substring(F.sha2("event_id", 256), 1, 12), 16, 10).cast("decimal(38,0)")).alias("id_sum"),
    ).first()
    if row["events"] == 0:
        raise InteractionsError("no events to train on")
    digest = hashlib.sha256(f"{row['events']}|{row['id_sum']}".encode()).hexdigest()
    return {
        "events": row["events"],
        "users": row["users"],
        "tracks": row["tracks"],
        "first_event": row["first_event"],
        "last_event": row["last_event"],
        "hash": digest[:16],
    }
