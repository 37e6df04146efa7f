"""One micro-batch on the executors: the per-listener work partitioned by listener.

``FMA_STREAM_EXECUTION=executors`` (the default is ``driver``: see the settings). The
``foreachBatch`` handler on the driver only coordinates: it makes sure the ranking models are broadcast
(``models.ModelBroadcast``), runs ONE Spark job over the batch DataFrame, merges the small
per-partition summaries it returns, applies the batch's trending increments and writes the
batch's metrics document. The job has two stages:

1. ``decode_partition`` (one task per Kafka read task of the source): decode every record
   with the event contract (dead letters written from the executor, keyed by their
   topic/partition/offset), store the valid events once by ``_id = event_id`` with the
   batch's key, and emit one row per valid event (with ``first_stored``: this batch stored
   it first) plus one statistics row;
2. ``repartition(n, user_id)`` then ``rank_partition``: each partition holds whole listeners;
   it reads its listeners' recent histories (which include this batch: every task of
   stage 1 finished before the shuffle is read), ranks them against the broadcast
   catalogue and ALS factors, upserts their ``realtime_recommendations`` (by ``user_id``)
   and returns one summary row: counts, latencies, step timings, its part of the
   trending increments and its newest window's listeners.

The direct path (``read_decode_rank``), taken whenever the Python source's offset log gives
the batch's offset ranges (every batch but the first after a start; the native source and
the first batch take the two stages below): ONE stage whose tasks each read whole Kafka
partitions themselves (``group_ranges``: one task up to ``SINGLE_TASK_RECORDS`` records,
else up to one per core) with a consumer cached per partition in the Python worker, then
decode, store and rank in the same task. The producer keys events by ``user_id``, so a
Kafka partition holds whole listeners and no shuffle is needed; a listener whose records
were keyed otherwise and landed in two tasks is ranked once more on the driver after the
job (``rerank_split_listeners``). Measured on the busy 2-core machine, at 100 events/s it
cut a batch from ~7 s to ~3 s against the two-stage plan: no Python source worker per
task, no Arrow round trip of the records, no shuffle stage.

A small batch (at most ``SINGLE_TASK_RECORDS`` records by the offsets Spark logged for it,
which the Python source reads in one task) skips the shuffle: one task decodes, stores and
ranks (``decode_and_rank``), since one partition already holds every listener of the batch.
At 100 events/s most batches are such, and a stage less is latency saved.

Why not ``transformWithStateInPandas`` (Spark 4): it calls the processor once per listener
(pandas conversion per key, costly with thousands of listeners per batch), needs the RocksDB
state store, and would keep histories in the checkpoint instead of ``listening_events``,
which other writers fill too and which outlives a checkpoint. A grouped pass per partition
over MongoDB histories keeps the data model and the idempotent writes unchanged.

Exactly-once effects are those of the driver path (package docstring): events and dead
letters are inserted once by natural ids, recommendations are upserts by listener computed
from the stored history, trending increments are merged on the driver into one increment
per document and applied once per batch key, and a replayed batch (same offsets, same
records) repeats all of it harmlessly. A task retried by Spark repeats its idempotent writes.
"""

from __future__ import annotations

import importlib
import logging
import pickle
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

import pandas as pd

from fma_platform.contracts import Collection
from fma_platform.settings import Settings
from fma_platform.stream_status import BatchMetrics, batch_metrics_id, latency_summary
from spark_jobs.streaming import taste
from spark_jobs.streaming.records import KafkaRecord, classify_records, mentioned_track_ids, next_offsets
from spark_jobs.streaming.sink import Trigger, apply_trending_parts, make_sink, merge_increments, write_batch_metrics
from spark_jobs.streaming.trending import trending_increments, window_start

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Stage 1's rows: one per valid event, and one statistics row per task (user_id null).
EVENT_SCHEMA = (
    "user_id string, event_id string, track_id long, type string, listened_s double, track_duration_s double, "
    "client_us long, kafka_ts double, kafka_partition int, kafka_offset long, genre_id long, genre_title string, "
    "first_stored boolean, stats binary"
)
SUMMARY_SCHEMA = "summary binary"
SINGLE_TASK_RECORDS = 200  # job.EXECUTOR_RECORDS_PER_TASK: the Python source reads this many in one task
EVENT_COLUMNS = [field.split(" ")[0] for field in EVENT_SCHEMA.split(", ")]


@dataclass(frozen=True)
class ExecutorBatch:
    """What every task of one batch needs (pickled into the tasks; the models travel as a broadcast)."""

    settings: Settings
    db_name: str
    sink: str  # ``stream_sink``: mongo or count
    models: Any  # the broadcast variable of ``models.RankingModels``
    config: Any  # batch.StreamConfig
    batch_key: str
    stored_at: datetime
    history_half_lives: int


def _sink(job: ExecutorBatch):
    from fma_platform.mongo import mongo_client  # one cached client per worker process

    db = mongo_client(job.settings)[job.db_name] if job.sink == "mongo" else None
    return make_sink(job.sink, db)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(micros))


# --- stage 1: decode and store, on the executor that read the records ------------------------------
def decode_partition(frames, *, job: ExecutorBatch):
    """mapInPandas function of stage 1 (module doc): Kafka rows in, event rows and one statistics row out."""
    started = time.monotonic()
    records = [
        KafkaRecord(None if value is None else bytes(value), topic, int(partition), int(offset),
                    datetime.fromtimestamp(ts, tz=timezone.utc))
        for frame in frames
        for value, topic, partition, offset, ts in zip(frame["value"], frame["topic"], frame["partition"],
                                                       frame["offset"], frame["ts"])
    ]
    yield decode_records(records, job=job, started=started, steps={})


def decode_records(records: list[KafkaRecord], *, job: ExecutorBatch, started: float,
                   steps: dict[str, float]) -> pd.DataFrame:
    """Decode, dead-letter and store ``records``: one row per valid event and one statistics row
    (``steps``: timings taken before ``started``, reported with the task's own)."""
    models = job.models.value
    catalogue = models.catalogue
    sink = _sink(job)
    genres = dict(catalogue.genres)
    known = catalogue.known_ids
    missing = sorted(t for t in mentioned_track_ids(records) if t not in known)
    new_tracks = _tracks_added_since(sink, missing)  # tracks added after the broadcast
    if new_tracks:
        known = known | new_tracks.keys()
        genres.update({t: g for t, g in new_tracks.items() if g is not None})
    classified = classify_records(records, known_track_ids=known, received_at=job.stored_at)
    decoded = time.monotonic()
    dead_letters = sink.dead_letters(classified.dead_letters)
    stored = sink.events(classified.valid, batch_key=job.batch_key, stored_at=job.stored_at)
    first = {item.event.event_id: item for item in stored}
    finished = time.monotonic()
    rows = []
    for item in classified.valid:
        event, record = item.event, item.record
        genre = genres.get(event.track_id)
        rows.append((event.user_id, event.event_id, event.track_id, event.type.value, float(event.listened_s),
                     None if event.track_duration_s is None else float(event.track_duration_s),
                     _micros(event.client_ts), record.timestamp.timestamp(), record.partition, record.offset,
                     None if genre is None else int(genre[0]), None if genre is None else genre[1],
                     first.get(event.event_id) is item, None))
    stats = {"input_rows": len(records), "valid_events": len(classified.valid), "dead_letters": dead_letters,
             "offsets": next_offsets(records), "new_tracks": len(new_tracks),
             "steps": {**steps, "decode": decoded - started, "store_events": finished - decoded}}
    rows.append((None,) * (len(EVENT_COLUMNS) - 1) + (pickle.dumps(stats),))
    return _event_frame(rows)


def _event_frame(rows: list[tuple]) -> pd.DataFrame:
    """Stage 1's rows with nullable column types (the statistics row is null but for ``stats``)."""
    columns = list(zip(*rows))
    types = dict(field.split(" ") for field in EVENT_SCHEMA.split(", "))
    pandas_types = {"long": "Int64", "int": "Int32", "double": "float64", "boolean": "boolean"}
    return pd.DataFrame({name: pd.array(values, dtype=pandas_types.get(types[name], object))
                         for name, values in zip(EVENT_COLUMNS, columns)})


def _tracks_added_since(sink, track_ids: list[int]) -> dict[int, tuple[int, str] | None]:
    """Those of ``track_ids`` that ``tracks`` holds now, with their top genre (or None)."""
    if not track_ids or sink.kind != "mongo":
        return {}
    found = sink.db[Collection.TRACKS].find({"track_id": {"$in": track_ids}},
                                            {"_id": 0, "track_id": 1, "top_genre_id": 1, "top_genre_title": 1})
    return {int(t["track_id"]): None if t.get("top_genre_id") is None else
            (int(t["top_genre_id"]), t.get("top_genre_title") or str(t["top_genre_id"])) for t in found}


# --- stage 2: whole listeners per partition ---------------------------------------------------------
def rank_partition(frames, *, job: ExecutorBatch, task_started: float | None = None):
    """mapInPandas function of stage 2 (module doc): one partition's listeners in, one summary row out
    (``task_started``: the epoch its task began, for the task's span in the summary)."""
    from spark_jobs.streaming.batch import recommend_for  # the driver path's function, unchanged

    started = time.monotonic()
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return
    frame = pd.concat(frames, ignore_index=True)
    is_stats = frame["user_id"].isna()
    summary: dict[str, Any] = {"stats": [pickle.loads(blob) for blob in frame.loc[is_stats, "stats"]]}
    events = frame.loc[~is_stats].sort_values(["client_us", "kafka_partition", "kafka_offset"], kind="stable")
    steps = {}
    summary["steps"] = steps
    if events.empty:
        summary.update(users=0, new_events=0, latencies=[], increments=[], newest=None, newest_users=[], triggers={},
                       span=(task_started, time.time()))
        yield pd.DataFrame({"summary": [pickle.dumps(summary)]})
        return
    models = job.models.value
    config = job.config
    sink = _sink(job)
    latest = events.groupby("user_id", sort=True).tail(1)  # sorted by time: each listener's newest event
    triggers = {user: Trigger(event_id, _moment(micros))
                for user, event_id, micros in zip(latest["user_id"], latest["event_id"], latest["client_us"])}
    reach = timedelta(seconds=job.history_half_lives * config.half_life_s)
    since = {user: trigger.client_ts - reach for user, trigger in triggers.items()}
    batch_history = None if sink.reads_histories else _batch_histories(events)
    histories = sink.histories(list(triggers), limit=config.recent_events, since=since, batch_history=batch_history)
    read = time.monotonic()
    steps["read_histories"] = read - started
    ranked = {user: recommend_for(user, histories.get(user, taste.empty_history()), models.catalogue, models.als,
                                  config) for user in triggers}
    ranked_at = time.monotonic()
    steps["rank"] = ranked_at - read
    users = sink.recommendations(ranked, triggers, model_version=models.version,
                                 updated_at=datetime.now(timezone.utc))
    written_at = time.time()
    steps["write_recommendations"] = time.monotonic() - ranked_at
    # Copies of one event read by two tasks may both have been stored "by this batch": the
    # first in record order is the one (as on the driver path). Copies share a listener, so
    # they are all in this partition.
    first = (events.loc[events["first_stored"].astype(bool)].sort_values(["kafka_partition", "kafka_offset"])
             .drop_duplicates("event_id"))
    newest, newest_users, increments = None, [], []
    if not first.empty:
        times = [_moment(us) for us in first["client_us"]]
        genres = {int(t): (int(g), title) for t, g, title in zip(first["track_id"], first["genre_id"],
                                                                first["genre_title"]) if pd.notna(g)}
        increments = trending_increments(
            pd.DataFrame({"track_id": first["track_id"].to_numpy(), "type": first["type"].to_numpy(),
                          "client_ts": times}), genres, window=config.window)
        starts = [window_start(moment, window=config.window) for moment in times]
        newest = max(starts)
        newest_users = sorted({user for user, start in zip(first["user_id"], starts) if start == newest})
    summary.update(users=users, new_events=len(first), latencies=(written_at - events["kafka_ts"].to_numpy()).tolist(),
                   increments=increments, newest=newest, newest_users=newest_users, triggers=triggers,
                   span=(task_started, time.time()))
    yield pd.DataFrame({"summary": [pickle.dumps(summary)]})


def decode_and_rank(frames, *, job: ExecutorBatch):
    """Both stages in one task: a small batch read by one task holds all its listeners."""
    yield from rank_partition(decode_partition(frames, job=job), job=job)


# --- one stage: each task reads whole Kafka partitions itself ---------------------------------------
def read_decode_rank(frames, *, job: ExecutorBatch, source, groups: list[list]):
    """mapInPandas function of the direct path (module doc): the ids of ``groups`` in, one
    summary row out per group; the task reads the group's Kafka offset ranges itself (one
    cached consumer per partition and worker process), then decodes, stores and ranks."""
    from spark_jobs.streaming.kafka_source import read_offset_range

    for frame in frames:
        for index in frame["id"]:
            task_started, started = time.time(), time.monotonic()
            records = [KafkaRecord(None if value is None else bytes(value), topic, int(partition), int(offset),
                                   timestamp)
                       for offset_range in groups[int(index)]
                       for _, value, topic, partition, offset, timestamp, _ in read_offset_range(source, offset_range)]
            read = time.monotonic()
            events = decode_records(records, job=job, started=read, steps={"read_kafka": read - started})
            yield from rank_partition(iter([events]), job=job, task_started=task_started)


def group_ranges(ranges: list, *, tasks: int, single_task_records: int | None = None) -> list[list]:
    """Whole Kafka partitions' ranges in at most ``tasks`` groups of about equal records (one
    group for a batch of at most ``single_task_records``): a listener's events share a
    partition (the producer keys them by ``user_id``), so a group holds whole listeners."""
    ranges = [r for r in ranges if r.size > 0]
    if not ranges:
        return []
    single_task_records = SINGLE_TASK_RECORDS if single_task_records is None else single_task_records
    count = 1 if sum(r.size for r in ranges) <= single_task_records else max(1, min(tasks, len(ranges)))
    groups: list[list] = [[] for _ in range(count)]
    loads = [0] * count
    for offset_range in sorted(ranges, key=lambda r: -r.size):
        lightest = loads.index(min(loads))
        groups[lightest].append(offset_range)
        loads[lightest] += offset_range.size
    return [sorted(group, key=lambda r: r.partition) for group in groups]


def logged_ranges(stream, batch_id: int) -> list | None:
    """The Kafka offset ranges of batch ``batch_id`` by the Python source's offset log; None when
    not known (no checkpoint or reader, the first batch, the native source's log)."""
    from spark_jobs.streaming.kafka_source import logged_batch_offsets, offset_ranges

    reader = stream.batch_reader
    if reader is None or stream.checkpoint is None or batch_id < 1:
        return None
    end = logged_batch_offsets(stream.checkpoint, batch_id)
    start = logged_batch_offsets(stream.checkpoint, batch_id - 1)
    if end is None or start is None:
        return None
    return offset_ranges(reader.options.topic, start, end)


def _batch_histories(events: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each listener's events of the batch as a history (the counting sink reads no database)."""
    frame = pd.DataFrame({
        "user_id": events["user_id"].to_numpy(), "track_id": events["track_id"].to_numpy(),
        "type": events["type"].to_numpy(), "listened_s": events["listened_s"].to_numpy(),
        "track_duration_s": [None if pd.isna(value) else float(value) for value in events["track_duration_s"]],
        "client_ts": [_moment(us) for us in events["client_us"]],
    }).iloc[::-1]  # newest first
    return {user: group[list(taste.HISTORY_FIELDS)].reset_index(drop=True)
            for user, group in frame.groupby("user_id", sort=False)}


# --- the driver: coordinate one batch ------------------------------------------------------------------
def run_batch(stream, batch_df, batch_id: int) -> BatchMetrics:
    """Process one micro-batch on the executors (module doc); its metrics (also written)."""
    from spark_jobs.streaming.batch import HISTORY_HALF_LIVES

    started = time.monotonic()
    now = datetime.now(timezone.utc)
    variable, models = stream.broadcast(batch_df.sparkSession).current()
    prepared = time.monotonic()
    batch_key = batch_metrics_id(stream.query_id, batch_id)
    job = ExecutorBatch(settings=stream.settings, db_name=stream.db.name, sink=stream.sink.kind, models=variable,
                        config=stream.config, batch_key=batch_key, stored_at=now,
                        history_half_lives=HISTORY_HALF_LIVES)
    spark = batch_df.sparkSession
    parallelism = spark.sparkContext.defaultParallelism
    ranges = logged_ranges(stream, batch_id)
    if ranges is not None:  # the direct path: one stage, tasks read their Kafka partitions
        groups = group_ranges(ranges, tasks=parallelism)
        summaries_df = spark.range(len(groups), numPartitions=max(len(groups), 1)).mapInPandas(
            partial(read_decode_rank, job=job, source=stream.batch_reader.options, groups=groups), SUMMARY_SCHEMA)
    else:
        records = batch_df.selectExpr("value", "topic", "partition", "offset", "CAST(timestamp AS DOUBLE) AS ts")
        size = logged_batch_size(stream.checkpoint, batch_id)
        if size is not None and size <= SINGLE_TASK_RECORDS:
            summaries_df = records.mapInPandas(partial(decode_and_rank, job=job), SUMMARY_SCHEMA)
        else:
            summaries_df = (records.mapInPandas(partial(decode_partition, job=job), EVENT_SCHEMA)
                            .repartition(parallelism, "user_id")
                            .mapInPandas(partial(rank_partition, job=job), SUMMARY_SCHEMA))
    submitted = time.time()
    summaries = [pickle.loads(row.summary) for row in summaries_df.collect()]
    ran, collected = time.monotonic(), time.time()
    split_users = rerank_split_listeners(stream, summaries, models)
    reranked = time.monotonic()
    stats = [part for summary in summaries for part in summary["stats"]]
    metrics = BatchMetrics(batch_id=batch_id, input_rows=sum(s["input_rows"] for s in stats))
    metrics.valid_events = sum(s["valid_events"] for s in stats)
    metrics.new_events = sum(summary["new_events"] for summary in summaries)
    metrics.dead_letters = sum(s["dead_letters"] for s in stats)
    metrics.offsets = _merge_offsets(s["offsets"] for s in stats)
    metrics.users_updated = sum(summary["users"] for summary in summaries) - split_users
    metrics.latency_seconds = latency_summary([value for summary in summaries for value in summary["latencies"]])
    metrics.model_version = models.version
    metrics.als_error = stream.models.als_error
    if any(s["new_tracks"] for s in stats):
        stream.models.invalidate_catalogue()  # broadcast again before the next batch
    newest = max((s["newest"] for s in summaries if s["newest"] is not None), default=None)
    users = {user for s in summaries if s["newest"] == newest for user in s["newest_users"]}
    metrics.active_listeners = apply_trending_parts(
        stream.sink, merge_increments([s["increments"] for s in summaries]), newest, users,
        window=stream.config.window, batch_key=batch_key) if newest is not None else None
    finished = time.monotonic()
    task_steps: dict[str, float] = defaultdict(float)
    for part in [s["steps"] for s in stats] + [s["steps"] for s in summaries]:
        for name, seconds in part.items():
            task_steps[name] += seconds
    spans = [s["span"] for s in summaries if s.get("span") and s["span"][0] is not None]
    if spans:  # where a Spark job's time goes besides the tasks' own work (direct path)
        task_steps["job.until_first_task"] = min(start for start, _ in spans) - submitted
        task_steps["job.longest_task"] = max(end - start for start, end in spans)
        task_steps["job.after_last_task"] = collected - max(end for _, end in spans)
    metrics.step_seconds = {"models": round(prepared - started, 4), "spark_job": round(ran - prepared, 4),
                            **({"rerank_split": round(reranked - ran, 4)} if split_users else {}),
                            "trending": round(finished - reranked, 4),
                            **{name if name.startswith("job.") else f"tasks.{name}": round(seconds, 4)
                               for name, seconds in task_steps.items()}}
    metrics.processing_seconds = round(finished - started, 4)
    write_batch_metrics(stream.db, metrics, query_id=stream.query_id, query_name=stream.query_name, batch_time=now,
                        latencies=[value for summary in summaries for value in summary["latencies"]])
    return metrics


def warm_up(stream, spark) -> float:
    """Start the Python workers before the first batch: one task per core imports this module
    and the ranking, loads the broadcast models and connects the sink (the first batch would
    pay it, a minute on a busy 2-core machine). Spark reuses those workers. Seconds taken."""
    started = time.monotonic()
    variable, _ = stream.broadcast(spark).current()
    job = ExecutorBatch(settings=stream.settings, db_name=stream.db.name, sink=stream.sink.kind, models=variable,
                        config=stream.config, batch_key="warm-up", stored_at=datetime.now(timezone.utc),
                        history_half_lives=0)
    cores = spark.sparkContext.defaultParallelism
    spark.range(cores, numPartitions=cores).mapInPandas(partial(_warm_task, job=job), "ready long").collect()
    return time.monotonic() - started


def _warm_task(frames, *, job: ExecutorBatch):
    importlib.import_module("spark_jobs.streaming.batch")  # the ranking, imported once per worker
    for _ in frames:
        pass
    _sink(job)
    yield pd.DataFrame({"ready": [job.models.value.catalogue.embeddings.size]})


def rerank_split_listeners(stream, summaries: list[dict], models) -> int:
    """Rank again, on the driver, every listener that more than one task ranked, and return
    how many rankings were extra (``users_updated`` counts each listener once).

    On the direct path a task holds whole Kafka partitions, which hold whole listeners only
    while producers key events by ``user_id`` (``fma_platform.events.event_key``). A record
    keyed otherwise can put one listener in two tasks, each ranking from a history that may
    miss the other's events; every task has stored its events by now, so this ranking reads
    the whole history and its write, the last, holds. The counting sink reads no history:
    its split listeners are only logged."""
    from spark_jobs.streaming.batch import HISTORY_HALF_LIVES, recommend_for

    tasks_per_user = Counter(user for summary in summaries for user in summary.get("triggers", {}))
    split = sorted(user for user, tasks in tasks_per_user.items() if tasks > 1)
    if not split:
        return 0
    extra = sum(tasks_per_user[user] - 1 for user in split)
    triggers: dict[str, Trigger] = {}
    for summary in summaries:
        for user, trigger in summary["triggers"].items():
            if tasks_per_user[user] > 1 and (user not in triggers or trigger.client_ts >= triggers[user].client_ts):
                triggers[user] = trigger
    log.warning("%d listener(s) had events in more than one task (records not keyed by user_id)", len(split))
    if not stream.sink.reads_histories:
        return extra
    config = stream.config
    reach = timedelta(seconds=HISTORY_HALF_LIVES * config.half_life_s)
    histories = stream.sink.histories(split, limit=config.recent_events,
                                      since={user: trigger.client_ts - reach for user, trigger in triggers.items()})
    ranked = {user: recommend_for(user, histories.get(user, taste.empty_history()), models.catalogue, models.als,
                                  config) for user in split}
    stream.sink.recommendations(ranked, triggers, model_version=models.version, updated_at=datetime.now(timezone.utc))
    return extra


def logged_batch_size(checkpoint, batch_id: int) -> int | None:
    """Records of batch ``batch_id`` by the Python source's offset log; None when not known
    (no checkpoint, the first batch, the native source's log)."""
    from spark_jobs.streaming.kafka_source import logged_batch_offsets

    if checkpoint is None or batch_id < 1:
        return None
    end, start = logged_batch_offsets(checkpoint, batch_id), logged_batch_offsets(checkpoint, batch_id - 1)
    if end is None or start is None:
        return None
    return sum(position - start.get(partition, position) for partition, position in end.items())


def _merge_offsets(parts) -> dict[str, int]:
    merged: dict[str, int] = {}
    for part in parts:
        for partition, position in part.items():
            merged[partition] = max(merged.get(partition, 0), position)
    return dict(sorted(merged.items(), key=lambda item: int(item[0])))
