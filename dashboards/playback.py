"""Player reports and listener actions, checked, into Kafka; what was refused, counted for analysts.

``send_reports`` hands each new entry of the audio component's log to the session's
``ReportGuard`` (``dashboards.report_guard``) and queues only the accepted events on the
shared producer (which never blocks). The listener sees nothing of a refusal; analysts see
the counts: ``record_rejections`` adds the guard's counts to ``rejected_reports``, one
document per hour, session and reason (``_id`` = ``<hour>/<session_id>/<reason>``: hour,
session_id, user_id, reason, count, last_at), which ``rejected_report_counts`` sums up.
Per hour and session keeps it small (a session that is refused nothing writes nothing)
while still naming who sent what.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timezone

from pymongo import UpdateOne
from pymongo.database import Database
from pymongo.errors import PyMongoError

from dashboards.player_state import PlayerQueue
from dashboards.report_guard import TERMINAL_TYPES, Accepted, ReportGuard
from fma_platform.contracts import Collection
from fma_platform.events import EventType, ListeningEvent
from fma_platform.mongo import ensure_retention
from fma_platform.producer import EventProducer
from fma_platform.settings import get_settings

log = logging.getLogger(__name__)

REJECTED_REPORTS = Collection.REJECTED_REPORTS


def emit(producer: EventProducer, event: ListeningEvent) -> None:
    """Queue ``event`` for Kafka; returns at once (the producer buffers while Kafka is down)."""
    producer.send(event)


def send_reports(guard: ReportGuard, queue: PlayerQueue, report_log: object, producer: EventProducer, *,
                 now: float) -> bool:
    """Send the events of the log's new, accepted reports; True when one ended the current play."""
    ended = False
    for report in queue.unseen_reports(report_log):
        verdict = guard.check(report, play=queue.play, now=now)
        if isinstance(verdict, Accepted):
            emit(producer, verdict.event)
            ended = ended or verdict.event.type in TERMINAL_TYPES
    return ended


def send_action(guard: ReportGuard, queue: PlayerQueue, kind: EventType, producer: EventProducer, *,
                now: float) -> bool:
    """Send a like or dislike of the playing track; False when the guard refused it."""
    verdict = guard.check_action(kind, play=queue.play, now=now)
    if isinstance(verdict, Accepted):
        emit(producer, verdict.event)
        return True
    return False


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def record_rejections(db: Database, guard: ReportGuard, *, now: float) -> Counter:
    """Add the guard's rejections since the last call to ``rejected_reports``; returns them.

    When MongoDB fails the counts go back to the guard (stored on a later call) and the
    error is logged: the listener's page goes on.
    """
    counts = guard.take_unrecorded()
    if not counts:
        return counts
    at = datetime.fromtimestamp(now, timezone.utc)
    hour = _hour(at)
    writes = [
        UpdateOne({"_id": f"{hour:%Y-%m-%dT%H}/{guard.session_id}/{reason}"},
                  {"$inc": {"count": count}, "$set": {"last_at": at},
                   "$setOnInsert": {"hour": hour, "session_id": guard.session_id, "user_id": guard.user_id,
                                    "reason": reason}},
                  upsert=True)
        for reason, count in sorted(counts.items())
    ]
    try:
        ensure_rejected_reports_retention(db)
        db[REJECTED_REPORTS].bulk_write(writes, ordered=False)
    except PyMongoError as exc:
        guard.unrecorded.update(counts)
        log.warning("%d rejected player reports not stored yet: %s", sum(counts.values()), type(exc).__name__)
        return Counter()
    return counts


def ensure_rejected_reports_retention(db: Database) -> None:
    """The TTL index of ``rejected_reports``: ``FMA_RETENTION_REJECTED_REPORTS_DAYS`` after a
    document's last count (checked whenever counts are stored: a page run with refusals)."""
    ensure_retention(db[REJECTED_REPORTS], "last_at", get_settings().retention_rejected_reports_days)


def rejected_report_counts(db: Database, *, since: datetime) -> dict[str, int]:
    """Rejected player reports per reason, of every session, from the hour of ``since`` on."""
    rows = db[REJECTED_REPORTS].aggregate([
        {"$match": {"hour": {"$gte": _hour(since)}}},
        {"$group": {"_id": "$reason", "count": {"$sum": "$count"}}},
    ])
    return {row["_id"]: int(row["count"]) for row in rows}
