"""The listener's play queue and the delivery of the audio-player component's reports.

``PlayerQueue`` is plain data kept in the server-side session. Every track that starts
is a new ``Play`` (``dashboards.report_guard.start_play``) with an unguessable token, the
catalogue's duration and the server's start time; the guard checks reports against it.
The component reports a rolling log of ``{id, token, track_id, type, position, listened}``
that it resends whole; ``unseen_reports`` hands each entry over once (that resending is
delivery, not replay, so it is dropped silently here and never counted).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field

from dashboards.report_guard import Play, start_play

# Distinct log entries remembered per session; a log is read up to its newest this many.
# The component keeps 30; a hostile log of thousands is still handed over once each.
SEEN_REPORTS_KEPT = 10_000
MAX_REPORT_ID_CHARS = 64


@dataclass
class PlayerQueue:
    current: dict | None = None  # the catalogue document of the track now in the player
    play: Play | None = None  # the current play of ``current``
    upcoming: list[dict] = field(default_factory=list)
    autoplay: bool = False  # start the next track without a click (after complete/skip)
    seen_reports: dict = field(default_factory=dict)  # entry key -> None, oldest first

    @property
    def token(self) -> str | None:
        """The current play's token (what the component is given and reports carry)."""
        return self.play.token if self.play else None

    def play_now(self, track: dict, *, autoplay: bool = True, now: float | None = None) -> None:
        self.current = track
        self.play = start_play(track, now=time.time() if now is None else now)
        self.autoplay = autoplay
        self.upcoming = [t for t in self.upcoming if t["track_id"] != track["track_id"]]

    def play_next(self, track: dict) -> None:
        """Put ``track`` first in line (once)."""
        self.upcoming = [track] + [t for t in self.upcoming if t["track_id"] != track["track_id"]]

    def enqueue(self, tracks: list[dict]) -> None:
        """Append the tracks not queued yet and not playing."""
        queued = {t["track_id"] for t in self.upcoming} | ({self.current["track_id"]} if self.current else set())
        self.upcoming += [t for t in tracks if t["track_id"] not in queued]

    def replace_upcoming(self, tracks: list[dict]) -> None:
        self.upcoming = []
        self.enqueue(tracks)

    def remove(self, track_id: int) -> None:
        self.upcoming = [t for t in self.upcoming if t["track_id"] != track_id]

    def advance(self, *, now: float | None = None) -> dict | None:
        """Start the next queued track (autoplay); None when the queue is empty."""
        if not self.upcoming:
            self.current, self.play = None, None
            return None
        track = self.upcoming.pop(0)
        self.play_now(track, autoplay=True, now=now)
        return track

    def unseen_reports(self, log: object) -> list:
        """Entries of ``log`` not handed over before, in order (anything in it, checked later)."""
        entries = log[-SEEN_REPORTS_KEPT:] if isinstance(log, list) else []
        fresh = []
        for entry in entries:
            key = _entry_key(entry)
            if key in self.seen_reports:
                continue
            self.seen_reports[key] = None
            if len(self.seen_reports) > SEEN_REPORTS_KEPT:
                del self.seen_reports[next(iter(self.seen_reports))]
            fresh.append(entry)
        return fresh


def _entry_key(entry: object) -> str:
    """The component's report id; for anything else a digest of the entry itself."""
    report_id = entry.get("id") if isinstance(entry, dict) else None
    if isinstance(report_id, str) and 0 < len(report_id) <= MAX_REPORT_ID_CHARS:
        return report_id
    try:
        text = json.dumps(entry, sort_keys=True, default=repr)
    except (TypeError, ValueError, RecursionError):  # unsortable keys, circular data
        text = repr(entry)
    return "sha1:" + hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()
