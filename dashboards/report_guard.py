"""Player reports checked on the server before they become events: the browser claims, the server decides.

The audio component (``components/audio_player.js``) reports what the listener does; each
report is hostile until checked. ``ReportGuard.check`` turns a report into a contract event
(``fma_platform.events``) only when all of this holds:

* the session's token bucket has room (``player_event_burst``, ``player_events_per_second``);
* it carries the token of the play the server started (``start_play``: 128 random bits per
  play) and that play's ``track_id``;
* it repeats no report accepted in this play, comes before the play's terminal report
  (``complete``/``skip``: at most one), and is not a second ``play``;
* its numbers pass the event contract with the catalogue's duration (never the browser's):
  position within the clip, listened time within what the contract allows;
* listened seconds never go back within a play, nor run ahead of the server's clock since the
  play started (plus ``player_clock_slack_s``). A position may go back: seeking is listening.

Rejected reports get a reason of ``REJECTION_REASONS``, are counted, and send nothing. Pure:
no Streamlit, no Kafka, no clock of its own (``now`` is given, epoch seconds).
"""

from __future__ import annotations

import secrets
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

from audio_features.extract import expected_clip_seconds
from fma_platform.events import EventSource, EventType, InvalidEventError, ListeningEvent, new_event

REPORT_TYPES = (EventType.PLAY, EventType.PAUSE, EventType.PROGRESS, EventType.COMPLETE, EventType.SKIP)
TERMINAL_TYPES = (EventType.COMPLETE, EventType.SKIP)
ACTION_TYPES = (EventType.LIKE, EventType.DISLIKE)
REJECTION_REASONS = (
    "rate_limited",  # the session's token bucket is empty
    "malformed",  # not a report: unknown type, missing or non-numeric fields
    "missing_token",  # no play token
    "unknown_token",  # a token this session was never given: forged
    "stale_token",  # the token of an earlier play (a late report, or a replay)
    "no_play",  # an action while nothing plays
    "wrong_track",  # the current token with another track
    "replay",  # the same report as one accepted in this play
    "duplicate_play",  # a second ``play`` of one play
    "after_end",  # anything after the play's complete or skip
    "invalid_event",  # breaks the event contract (negative, past the clip's end, ...)
    "listened_backwards",  # listened seconds lower than already reported in this play
    "listened_too_fast",  # more listened than seconds passed since the play started
)
TOKEN_BYTES = 16  # 128 bits: unguessable
PAST_TOKENS_KEPT = 64  # earlier plays told apart from forgeries ("stale" vs "unknown")
ACCEPTED_KEPT = 64  # recent accepted reports of a play, for replay detection


@dataclass(frozen=True)
class Play:
    """A play the server started: what every report of it must match."""

    token: str
    track_id: int
    duration_s: float | None  # the catalogue's clip length; None when the catalogue has none
    started_at: float  # epoch seconds when the server issued the token


def start_play(track: dict, *, now: float) -> Play:
    """A new play of the catalogue document ``track`` with a fresh random token."""
    track_id = int(track["track_id"])
    duration = track.get("duration")
    known = isinstance(duration, (int, float)) and not isinstance(duration, bool)
    return Play(token=secrets.token_urlsafe(TOKEN_BYTES), track_id=track_id,
                duration_s=expected_clip_seconds({track_id: duration}, track_id) if known else None,
                started_at=float(now))


@dataclass(frozen=True)
class GuardLimits:
    """The guard's numbers (``Settings.player_*``)."""

    burst: int
    per_second: float
    clock_slack_s: float

    @classmethod
    def from_settings(cls, settings) -> GuardLimits:
        return cls(burst=settings.player_event_burst, per_second=settings.player_events_per_second,
                   clock_slack_s=settings.player_clock_slack_s)


@dataclass
class TokenBucket:
    """``capacity`` events at once, refilled at ``per_second``; starts full."""

    capacity: float
    per_second: float
    tokens: float | None = None
    updated_at: float | None = None

    def take(self, now: float) -> bool:
        """Spend one token at ``now``; False when none is left (a clock going back refills nothing)."""
        if self.tokens is None:
            self.tokens = float(self.capacity)
        if self.updated_at is not None and now > self.updated_at:
            self.tokens = min(float(self.capacity), self.tokens + (now - self.updated_at) * self.per_second)
        self.updated_at = now if self.updated_at is None else max(now, self.updated_at)
        if self.tokens >= 1.0 - 1e-9:  # refills of many small steps must not lose a token to rounding
            self.tokens = max(self.tokens - 1.0, 0.0)
            return True
        return False


@dataclass(frozen=True)
class Accepted:
    event: ListeningEvent  # validated, ready to send


@dataclass(frozen=True)
class Rejected:
    reason: str  # one of REJECTION_REASONS
    detail: str  # what was wrong, for logs and tests (never shown to the listener)


@dataclass
class _PlayRecord:
    """What this session's reports of one play have established so far."""

    token: str
    played: bool = False
    ended: bool = False
    listened_s: float = 0.0
    position_s: float = 0.0
    accepted: deque = field(default_factory=lambda: deque(maxlen=ACCEPTED_KEPT))


@dataclass
class ReportGuard:
    """One listening session's checks (kept in its server-side session state)."""

    user_id: str
    session_id: str
    limits: GuardLimits
    bucket: TokenBucket | None = None
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> count, this session
    unrecorded: Counter = field(default_factory=Counter)  # rejections not yet stored for analysts
    _play: _PlayRecord | None = field(default=None, init=False)
    _past_tokens: deque = field(default_factory=lambda: deque(maxlen=PAST_TOKENS_KEPT), init=False)

    def __post_init__(self) -> None:
        if self.bucket is None:
            self.bucket = TokenBucket(self.limits.burst, self.limits.per_second)

    # --- the checks -----------------------------------------------------------------------
    def check(self, report: object, *, play: Play | None, now: float) -> Accepted | Rejected:
        """The event of ``report`` if it may be sent now, else why not (counted)."""
        if not self.bucket.take(now):
            return self._reject("rate_limited", "the session sent more than its rate allows")
        record = self._follow(play)
        fields = _report_fields(report)
        if fields is None:
            return self._reject("malformed", f"not a player report: {str(report)[:120]}")
        kind, track_id, position, listened, token = fields
        if not isinstance(token, str) or not token:
            return self._reject("missing_token", "the report carries no play token")
        if play is None or token != play.token:
            stale = token in self._past_tokens
            return self._reject("stale_token" if stale else "unknown_token",
                                "a token of an earlier play" if stale else "a token this session was never given")
        if track_id != play.track_id:
            return self._reject("wrong_track", f"track {track_id} reported, track {play.track_id} is playing")
        if (kind, position, listened) in record.accepted:
            return self._reject("replay", f"{kind} at {position} s was accepted already")
        if record.ended:
            return self._reject("after_end", f"{kind} after the play ended")
        if kind == EventType.PLAY and record.played:
            return self._reject("duplicate_play", "a second play of one play")
        try:
            event = self._event(kind, play, position_s=position, listened_s=listened,
                                duration_s=play.duration_s, now=now)
        except InvalidEventError as exc:
            return self._reject("invalid_event", f"{exc.kind}: {exc.reason}")
        if event.listened_s < record.listened_s:
            return self._reject("listened_backwards", f"listened {event.listened_s} s after {record.listened_s} s")
        if event.listened_s > max(now - play.started_at, 0.0) + self.limits.clock_slack_s:
            return self._reject("listened_too_fast",
                                f"listened {event.listened_s} s, {now - play.started_at:.1f} s after the play started")
        record.accepted.append((kind, position, listened))
        record.played = record.played or kind == EventType.PLAY
        record.ended = kind in TERMINAL_TYPES
        record.listened_s, record.position_s = event.listened_s, event.position_s
        self.accepted += 1
        return Accepted(event)

    def check_action(self, kind: EventType | str, *, play: Play | None, now: float) -> Accepted | Rejected:
        """A like or dislike of the playing track, at the last position this play reported."""
        kind = EventType(kind)
        if kind not in ACTION_TYPES:
            raise ValueError(f"{kind} is a player report, not an action")
        if not self.bucket.take(now):
            return self._reject("rate_limited", "the session sent more than its rate allows")
        if play is None:
            return self._reject("no_play", f"{kind} while nothing plays")
        record = self._follow(play)
        self.accepted += 1
        return Accepted(self._event(kind, play, position_s=record.position_s, listened_s=0.0, duration_s=None,
                                    now=now))

    def take_unrecorded(self) -> Counter:
        """The rejections counted since the last call (to store them); the caller owns them now."""
        counts, self.unrecorded = self.unrecorded, Counter()
        return counts

    # --- internals ------------------------------------------------------------------------
    def _follow(self, play: Play | None) -> _PlayRecord | None:
        """The record of ``play``, a fresh one when the server started another play."""
        if play is not None and (self._play is None or self._play.token != play.token):
            if self._play is not None:
                self._past_tokens.append(self._play.token)
            self._play = _PlayRecord(play.token)
        return self._play

    def _event(self, kind: EventType, play: Play, *, position_s: float, listened_s: float,
               duration_s: float | None, now: float) -> ListeningEvent:
        return new_event(
            user_id=self.user_id, track_id=play.track_id, type=kind, position_s=round(position_s, 3),
            listened_s=round(listened_s, 3), track_duration_s=duration_s, session_id=self.session_id,
            source=EventSource.PLAYER, client_ts=datetime.fromtimestamp(now, timezone.utc),
        )

    def _reject(self, reason: str, detail: str) -> Rejected:
        self.rejected[reason] += 1
        self.unrecorded[reason] += 1
        return Rejected(reason, detail)


def _report_fields(report: object) -> tuple[EventType, int, float, float, object] | None:
    """(type, track_id, position, listened, token) of a report shaped like one; None otherwise.

    Numbers are only typed here; their ranges are the event contract's to judge. A
    ``duration`` the browser may send is ignored: the catalogue's is used.
    """
    if not isinstance(report, dict) or report.get("type") not in REPORT_TYPES:
        return None
    track_id, position, listened = report.get("track_id"), report.get("position"), report.get("listened", 0.0)
    if not _is_int(track_id) or not (_is_number(position) and _is_number(listened)):
        return None
    try:
        position, listened = float(position), float(listened)
    except OverflowError:  # an integer too large for a float
        return None
    return EventType(report["type"]), track_id, position, listened, report.get("token")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
