"""What the listener pages read: catalogue, recommendations (with fallbacks), history.

Plain functions of a ``Database``: the pages call them through cached loaders, tests call
them directly. Documents follow ``fma_platform.contracts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pymongo import DESCENDING
from pymongo.database import Database

from audio_features.fma_schema import TOP_LEVEL_GENRES
from fma_platform.catalogue import POPULARITY_ORDER, TRACK_PROJECTION, search_tracks
from fma_platform.contracts import Collection
from fma_platform.events import EventType
from fma_platform.listening import REASON_PLAYED, REASON_POPULAR, REASON_POPULAR_IN_PICKED_GENRE


class RecommendationSource(StrEnum):
    REALTIME = "realtime"  # realtime_recommendations, updated by the streaming job
    BATCH = "batch"  # recommendations, written by the nightly model
    POPULAR = "popular"  # most listened tracks in the listener's sign-up genres


@dataclass(frozen=True)
class Recommendation:
    track: dict
    score: float | None
    reason: str | None  # a ``fma_platform.listening`` reason text; None when the writer gave none


@dataclass(frozen=True)
class UpNext:
    source: RecommendationSource
    items: list[Recommendation]


def genre_title(genre_id: int | None) -> str:
    return TOP_LEVEL_GENRES.get(genre_id, "Unknown genre") if genre_id is not None else "Unknown genre"


def search_catalogue(db: Database, query: str, *, genre_id: int | None = None, limit: int = 20) -> list[dict]:
    """Tracks matching every word of ``query`` (title/artist/album/genre prefixes)."""
    return search_tracks(db, query, limit=limit, genre_id=genre_id)


def tracks_by_id(db: Database, track_ids: list[int]) -> dict[int, dict]:
    """Catalogue documents of ``track_ids`` that exist (missing ids are left out)."""
    cursor = db[Collection.TRACKS].find({"track_id": {"$in": [int(t) for t in track_ids]}}, TRACK_PROJECTION)
    return {doc["track_id"]: doc for doc in cursor}


def _join_items(db: Database, items: list[dict], *, exclude: set[int], limit: int) -> list[Recommendation]:
    """Recommendation items joined with their tracks, best first, unknown tracks dropped."""
    wanted = [item for item in items if int(item["track_id"]) not in exclude]
    tracks = tracks_by_id(db, [item["track_id"] for item in wanted])
    joined = [
        Recommendation(track=tracks[int(item["track_id"])], score=item.get("score"), reason=item.get("reason"))
        for item in wanted if int(item["track_id"]) in tracks
    ]
    return joined[:limit]


def popular_in_genres(db: Database, genres: list[int], *, exclude: set[int], limit: int) -> list[Recommendation]:
    """Most listened tracks of the listener's picked ``genres`` (all genres when none), as recommendations."""
    selector = {"top_genre_id": {"$in": list(genres)}} if genres else {}
    selector["track_id"] = {"$nin": sorted(exclude)}
    cursor = db[Collection.TRACKS].find(selector, TRACK_PROJECTION).sort(POPULARITY_ORDER).limit(limit)
    return [
        Recommendation(track=doc, score=None,
                       reason=REASON_POPULAR_IN_PICKED_GENRE.format(
                           genre=doc.get("top_genre_title") or genre_title(doc.get("top_genre_id")))
                       if genres else REASON_POPULAR)
        for doc in cursor
    ]


RECOMMENDATION_COLLECTIONS = {RecommendationSource.REALTIME: Collection.REALTIME_RECOMMENDATIONS,
                              RecommendationSource.BATCH: Collection.RECOMMENDATIONS}


def current_recommendations(db: Database, user_id: str, *,
                            source: RecommendationSource = RecommendationSource.REALTIME) -> list[dict]:
    """The listener's current recommendation items (``[]`` when none): one ``find_one`` on
    the unique ``user_id`` index, projected to the items (the player's hot path)."""
    document = db[RECOMMENDATION_COLLECTIONS[source]].find_one({"user_id": user_id}, {"_id": 0, "items": 1})
    return (document or {}).get("items") or []


def up_next(db: Database, *, user_id: str, genres: list[int], exclude: set[int] = frozenset(),
            limit: int = 10) -> UpNext:
    """Realtime recommendations, else the batch ones, else popular tracks of the listener's genres."""
    for source in (RecommendationSource.REALTIME, RecommendationSource.BATCH):
        items = _join_items(db, current_recommendations(db, user_id, source=source), exclude=set(exclude),
                            limit=limit)
        if items:
            return UpNext(source=source, items=items)
    return UpNext(source=RecommendationSource.POPULAR,
                  items=popular_in_genres(db, genres, exclude=set(exclude), limit=limit))


def similar_to(db: Database, track: dict, *, limit: int = 10) -> list[Recommendation]:
    """The "radio" of the playing ``track``: its nearest neighbours from ``similar_tracks``, best first."""
    track_id = int(track["track_id"])
    document = db[Collection.SIMILAR_TRACKS].find_one({"track_id": track_id}, {"_id": 0, "neighbours": 1})
    reason = REASON_PLAYED.format(title=track.get("title") or f"track {track_id}")
    neighbours = [{**n, "reason": reason} for n in (document or {}).get("neighbours") or []]
    return _join_items(db, neighbours, exclude={track_id}, limit=limit)


def listening_history(db: Database, user_id: str, *, limit: int = 50) -> list[dict]:
    """The listener's latest events, newest first, with the track title and artist."""
    events = list(db[Collection.LISTENING_EVENTS].find({"user_id": user_id}, {"_id": 0}).sort(
        [("client_ts", DESCENDING)]).limit(limit))
    tracks = tracks_by_id(db, sorted({e["track_id"] for e in events}))
    return [
        {"time": e["client_ts"], "event": e["type"], "track_id": e["track_id"],
         "title": tracks.get(e["track_id"], {}).get("title", "(not in catalogue)"),
         "artist": tracks.get(e["track_id"], {}).get("artist_name", ""),
         "position_s": round(float(e.get("position_s") or 0), 1)}
        for e in events
    ]


def liked_tracks(db: Database, user_id: str) -> list[dict]:
    """Tracks whose latest like/dislike by the listener is a like, most recent first."""
    latest: dict[int, str] = {}
    cursor = db[Collection.LISTENING_EVENTS].find(
        {"user_id": user_id, "type": {"$in": [EventType.LIKE.value, EventType.DISLIKE.value]}},
        {"_id": 0, "track_id": 1, "type": 1},
    ).sort([("client_ts", DESCENDING)])
    for event in cursor:
        latest.setdefault(event["track_id"], event["type"])
    liked = [track_id for track_id, kind in latest.items() if kind == EventType.LIKE.value]
    tracks = tracks_by_id(db, liked)
    return [tracks[t] for t in liked if t in tracks]
