"""The listener's play queue and the reports of the audio-player component.

``PlayerQueue`` is plain data kept in the server-side session. Every track that starts
gets a fresh ``token`` so reports of an earlier play of the same track are told apart.
The component reports a rolling log of ``{id, token, track_id, type, position, listened,
duration}``; ``unseen_reports`` keeps the ones not handled yet (each exactly once).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

REPORT_TYPES = ("play", "pause", "progress", "complete", "skip")
SEEN_REPORTS_KEPT = 500


@dataclass
class PlayerQueue:
    current: dict | None = None  # the track document now in the player
    token: int = 0  # increases every time a track starts
    upcoming: list[dict] = field(default_factory=list)
    autoplay: bool = False  # start the next track without a click (after complete/skip)
    last_position: float = 0.0  # latest position reported for the current token
    seen_reports: deque = field(default_factory=lambda: deque(maxlen=SEEN_REPORTS_KEPT))

    def play_now(self, track: dict, *, autoplay: bool = True) -> None:
        self.current = track
        self.token += 1
        self.autoplay = autoplay
        self.last_position = 0.0
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

    def advance(self) -> dict | None:
        """Start the next queued track (autoplay); None when the queue is empty."""
        if not self.upcoming:
            self.current = None
            return None
        track = self.upcoming.pop(0)
        self.play_now(track, autoplay=True)
        return track

    def unseen_reports(self, log: list | None) -> list[dict]:
        """Well-formed reports of ``log`` not handled before, in order; marks them seen."""
        fresh = []
        for report in log or []:
            if not _well_formed(report) or report["id"] in self.seen_reports:
                continue
            self.seen_reports.append(report["id"])
            fresh.append(report)
        return fresh

    def note_position(self, report: dict) -> None:
        if report["token"] == self.token:
            self.last_position = float(report["position"])

    def ends_current(self, report: dict) -> bool:
        """A complete or skip of the track now playing: time to move on."""
        return report["type"] in ("complete", "skip") and report["token"] == self.token


def _well_formed(report: object) -> bool:
    return (
        isinstance(report, dict) and isinstance(report.get("id"), str) and report.get("type") in REPORT_TYPES
        and isinstance(report.get("token"), int) and isinstance(report.get("track_id"), int)
        and isinstance(report.get("position"), (int, float))
    )
