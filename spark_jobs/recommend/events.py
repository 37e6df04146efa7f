"""Listening events for training: read from MongoDB or a file, and the identity of an event set."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
from pymongo.database import Database
from pyspark.sql import DataFrame, SparkSession, functions as F
from pyspark.sql.types import StructType

from fma_platform.contracts import Collection
from fma_platform.events import SPARK_SCHEMA_DDL, spark_schema
from spark_jobs.recommend.errors import InteractionsError

USER_ID = "user_id"
TRACK_ID = "track_id"
EVENT_TIME = "client_ts"
LISTENED = "listened_s"
DURATION = "track_duration_s"
EVENT_COLUMNS = ("event_id", USER_ID, TRACK_ID, "type", "position_s", LISTENED, DURATION, EVENT_TIME)


def event_schema() -> StructType:
    """The contract's Spark schema restricted to ``EVENT_COLUMNS`` (in that order)."""
    fields = {field.name: field for field in spark_schema().fields}
    return StructType([fields[name] for name in EVENT_COLUMNS])


def read_events_from_mongo(spark: SparkSession, db: Database) -> DataFrame:
    """``listening_events`` of ``db`` as a Spark DataFrame with ``EVENT_COLUMNS``."""
    projection = {"_id": 1, **{name: 1 for name in EVENT_COLUMNS if name != "event_id"}}
    documents = list(db[Collection.LISTENING_EVENTS].find({}, projection))
    if not documents:
        raise InteractionsError(f"{db.name}.{Collection.LISTENING_EVENTS} has no events")
    frame = pd.DataFrame(documents).rename(columns={"_id": "event_id"})
    frame = frame.reindex(columns=list(EVENT_COLUMNS))
    frame[EVENT_TIME] = pd.to_datetime(frame[EVENT_TIME], utc=True)
    frame[TRACK_ID] = frame[TRACK_ID].astype("int64")
    frame[DURATION] = frame[DURATION].astype("float64")
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
