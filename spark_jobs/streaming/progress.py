"""The query's progress in ``stream_metrics``: the heartbeat, and the lag of each finished batch.

Spark reports a progress per micro-batch (``query.recentProgress``) with the source's end
offsets and the latest offsets available; their difference is the lag per partition.
The ``Supervisor`` turns it into the heartbeat (``fma_platform.stream_status.Heartbeat``)
and adds it to the batch documents the handler wrote.
"""

from __future__ import annotations

import json
import time

from pymongo.database import Database

from fma_platform.stream_status import STATUS_STOPPED, Heartbeat, running_heartbeat
from spark_jobs.streaming.sink import write_batch_progress, write_heartbeat, write_stopped


def progress_lag(progress) -> tuple[dict[str, int], dict[str, int]]:
    """``({partition: end offset}, {partition: records behind})`` of a query progress."""
    if not progress.sources:
        return {}, {}
    source = progress.sources[0]
    end = _offsets(source.endOffset)
    latest = _offsets(source.latestOffset) or end
    lag = {partition: max(int(latest.get(partition, position)) - int(position), 0)
           for partition, position in end.items()}
    return end, lag


def _offsets(value) -> dict[str, int]:
    if value is None:
        return {}
    parsed = json.loads(value) if isinstance(value, str) else value
    if isinstance(parsed, dict) and parsed and all(isinstance(v, dict) for v in parsed.values()):
        parsed = next(iter(parsed.values()))  # the native source nests offsets by topic
    return {str(k): int(v) for k, v in (parsed or {}).items()}


class Supervisor:
    """Keeps the heartbeat of ``query`` and the lag of its finished batches in ``stream_metrics``.

    Batch documents are keyed by ``query.id``: the id Spark keeps in the checkpoint, which
    the batch handler reads there too.
    """

    def __init__(self, db: Database, query, *, query_name: str) -> None:
        self.db = db
        self.query = query
        self.query_name = query_name
        self.started_at = time.time()
        self.last_batch_id = -1

    def record_progress(self, *, error: str | None = None) -> Heartbeat:
        """Write the lag of the batches finished since the last call, and the heartbeat (returned)."""
        end, lag = {}, {}
        last_batch = None
        progress = {}
        for report in self.query.recentProgress:
            end, lag = progress_lag(report)
            last_batch = report.batchId
            # Not numInputRows: Spark counts 0 rows for a batch read by the DriverBatchReader.
            if report.batchId > self.last_batch_id:
                progress[report.batchId] = {"end_offsets": end, "lag": lag,
                                            "spark_duration_ms": dict(report.durationMs or {})}
            self.last_batch_id = max(self.last_batch_id, report.batchId)
        write_batch_progress(self.db, str(self.query.id), progress)
        active = self.query.isActive
        heartbeat = running_heartbeat(
            query_name=self.query_name, query_id=str(self.query.id), run_id=str(self.query.runId),
            is_active=active and error is None, status=self.query.status.get("message") if active else STATUS_STOPPED,
            error=error, last_batch_id=last_batch, end_offsets=end, lag=lag, started_at_epoch=self.started_at,
        )
        write_heartbeat(self.db, heartbeat)
        return heartbeat

    def mark_stopped(self, error: str | None) -> None:
        """Record in the heartbeat that the query is no longer running (without asking Spark)."""
        write_stopped(self.db, query_name=self.query_name, error=error)
