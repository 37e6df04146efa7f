"""The pure parts of the real-time loop: taste, ranking with reasons, dead letters, trending."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from fma_platform.events import MAX_EVENT_BYTES, encode_event
from fma_platform.listening import (
    REASON_LISTENERS_LIKE_YOU,
    REASON_POPULAR,
    REASON_SOUNDS_LIKE,
    STREAM_ALS_WEIGHT,
    blend_scores,
)
from spark_jobs.streaming import ranking, taste
from spark_jobs.streaming.records import classify_records, next_offsets
from spark_jobs.streaming.trending import trending_increments
from tests.spark_jobs.streaming.conftest import T0, UNKNOWN_TRACK, catalogue_arrays, cluster_of, event, history, record


def catalogue():
    ids, embeddings = catalogue_arrays()
    return ids, embeddings, {int(t): i for i, t in enumerate(ids)}


# --- taste ------------------------------------------------------------------------------------------
def test_recency_weights_halve_every_half_life():
    weights = taste.recency_weights([0.0, 600.0, 1200.0, -5.0], half_life_s=600.0)
    assert weights == pytest.approx([1.0, 0.5, 0.25, 1.0])


def test_early_skips_and_dislikes_push_completes_and_likes_pull():
    weights = taste.signal_weights(["complete", "like", "skip", "skip", "dislike", "pause"],
                                   [30.0, 30.0, 3.0, 25.0, 5.0, 10.0], [30.0] * 6)
    complete, like, early_skip, late_skip, dislike, pause = weights
    assert like > complete > 0 and late_skip > 0 and pause == 0
    assert early_skip < 0 and dislike < 0


def test_a_skip_of_a_track_of_unknown_length_is_early_by_the_seconds_rule_alone():
    """The shared rule (``fma_platform.listening.is_early_skip``): without a duration only
    the seconds count, as in the nightly training."""
    weights = taste.signal_weights(["skip", "skip", "skip"], [4.0, 12.0, 12.0], [None, None, 60.0])
    assert weights[0] == taste.EARLY_SKIP_SIGNAL  # under 10 s
    assert weights[1] == taste.EVENT_SIGNAL["skip"]  # 12 s of an unknown length: heard enough
    assert weights[2] == taste.EARLY_SKIP_SIGNAL  # 12 s of 60 s: under 30 % of the track


def test_a_like_pulls_the_taste_and_a_skip_pushes_it_away():
    ids, embeddings, index_of = catalogue()
    liked = taste.taste_vector(history([(100, "like", 30.0, T0)]), embeddings, index_of)
    assert liked @ embeddings[index_of[101]] > 0.9  # towards the liked track's neighbours
    both = history([(100, "complete", 30.0, T0), (200, "complete", 30.0, T0)])
    before = taste.taste_vector(both, embeddings, index_of)
    skipped = pd.concat([both, history([(201, "skip", 3.0, T0 + timedelta(seconds=40))])])
    after = taste.taste_vector(skipped, embeddings, index_of)
    assert after @ embeddings[index_of[202]] < before @ embeddings[index_of[202]] - 0.3
    assert after @ embeddings[index_of[102]] > before @ embeddings[index_of[102]]


def test_older_signals_count_less():
    ids, embeddings, index_of = catalogue()
    rows = history([(100, "complete", 30.0, T0), (200, "complete", 30.0, T0 + timedelta(hours=2))])
    listener_taste = taste.taste_vector(rows, embeddings, index_of, half_life_s=1800.0)
    assert listener_taste @ embeddings[index_of[201]] > listener_taste @ embeddings[index_of[101]] + 0.5


def test_no_signal_gives_no_taste():
    ids, embeddings, index_of = catalogue()
    assert taste.taste_vector(history([(100, "pause", 3.0, T0)]), embeddings, index_of) is None
    assert taste.taste_vector(history([(UNKNOWN_TRACK, "like", 30.0, T0)]), embeddings, index_of) is None


# --- ranking ------------------------------------------------------------------------------------------
def test_ranking_excludes_what_was_just_heard_and_explains_each_item():
    ids, embeddings, index_of = catalogue()
    rows = history([(100, "complete", 30.0, T0), (101, "like", 30.0, T0 + timedelta(seconds=1)),
                    (300, "skip", 2.0, T0 + timedelta(seconds=2))])
    listener_taste = taste.taste_vector(rows, embeddings, index_of)
    titles = {int(t): f"Song {t}" for t in ids}
    items = ranking.rank_tracks(
        track_ids=ids, embeddings=embeddings, taste=listener_taste, excluded=taste.recently_heard(rows),
        anchors=taste.recent_anchors(rows, titles), index_of=index_of, k=8,
    )
    ranked = [item.track_id for item in items]
    assert not {100, 101, 300} & set(ranked)
    assert all(cluster_of(t) == 0 for t in ranked)  # the liked cluster first
    # Each item is explained by the closer of the two tracks just completed or liked.
    assert {item.reason for item in items} <= {"because you liked Song 101", "because you played Song 100"}
    assert [item.score for item in items] == sorted((item.score for item in items), reverse=True)


def test_als_and_content_blend_as_the_nightly_lists_do_and_als_picks_say_so():
    ids, embeddings, index_of = catalogue()
    listener_taste = embeddings[0]
    user, item_factors = np.array([1.0, 0.0]), np.zeros((len(ids), 2))
    item_factors[index_of[205]] = [5.0, 0.0]  # collaborative signal for a track of another cluster
    als = item_factors @ user
    als[index_of[301]] = np.nan  # no factors for this track: neither pushed nor pulled by ALS
    items = ranking.rank_tracks(track_ids=ids, embeddings=embeddings, taste=listener_taste, excluded={100},
                                als_scores=als, k=12)
    expected = blend_scores(als, embeddings @ listener_taste, als_weight=STREAM_ALS_WEIGHT)
    by_id = {item.track_id: item for item in items}
    assert [item.score for item in items] == pytest.approx(sorted(np.delete(expected, index_of[100]))[::-1][:12])
    assert by_id[205].reason == REASON_LISTENERS_LIKE_YOU
    assert all(item.reason == REASON_SOUNDS_LIKE for item in items if item.track_id != 205)  # no anchors given
    assert sum(cluster_of(t) == 0 for t in by_id) == 11  # the session taste still leads


def test_without_a_taste_als_ranks_alone_and_without_either_popularity_does():
    ids, embeddings, index_of = catalogue()
    als = np.full(len(ids), np.nan)
    als[[index_of[205], index_of[300]]] = [2.0, 1.0]
    only_als = ranking.rank_tracks(track_ids=ids, embeddings=embeddings, taste=None, excluded=set(),
                                   als_scores=als, k=5)
    assert [(item.track_id, item.reason) for item in only_als] == [(205, REASON_LISTENERS_LIKE_YOU),
                                                                   (300, REASON_LISTENERS_LIKE_YOU)]
    cold = ranking.rank_tracks(track_ids=ids, embeddings=embeddings, taste=None, excluded={ids[-1]},
                               popularity=np.arange(len(ids), dtype=float), k=3)
    assert [item.track_id for item in cold] == list(ids[-4:-1][::-1])
    assert [item.reason for item in cold] == [REASON_POPULAR] * 3


# --- dead letters ---------------------------------------------------------------------------------------
def test_each_malformed_kind_becomes_a_dead_letter_with_its_reason():
    good = encode_event(event("u1", 100, "play", T0))
    document = json.loads(good)
    payloads = {
        "malformed_json": b"{not json",
        "unknown_field": json.dumps({**document, "volume": 3}).encode(),
        "missing_field": json.dumps({k: v for k, v in document.items() if k != "user_id"}).encode(),
        "wrong_type": json.dumps({**document, "track_id": "100"}).encode(),
        "bad_value": json.dumps({**document, "position_s": -1}).encode(),
        "oversized": good + b" " * MAX_EVENT_BYTES,
        "unsupported_version": json.dumps({**document, "schema_version": 2}).encode(),
        "unknown_track": json.dumps({**document, "track_id": UNKNOWN_TRACK}).encode(),
        "null_payload": None,
    }
    records = [record(value, offset) for offset, value in enumerate([good, *payloads.values()])]
    batch = classify_records(records, known_track_ids={100}, received_at=T0)
    assert [item.event.track_id for item in batch.valid] == [100]
    assert [d["reason_kind"] for d in batch.dead_letters] == list(payloads)
    for letter, offset in zip(batch.dead_letters, range(1, len(records))):
        assert letter["_id"] == f"events/0/{offset}" and letter["offset"] == offset and letter["reason"]
    oversized = batch.dead_letters[list(payloads).index("oversized")]
    assert oversized["raw_bytes"] == len(payloads["oversized"]) and oversized["raw"].startswith("{")
    assert next_offsets(records) == {"0": len(records)}


# --- trending ---------------------------------------------------------------------------------------------
def test_trending_increments_count_per_window_track_and_genre():
    events = pd.DataFrame([
        {"track_id": 100, "type": "play", "client_ts": T0},
        {"track_id": 100, "type": "complete", "client_ts": T0 + timedelta(seconds=30)},
        {"track_id": 101, "type": "skip", "client_ts": T0 + timedelta(seconds=60)},
        {"track_id": 100, "type": "play", "client_ts": T0 + timedelta(minutes=6)},  # next window
        {"track_id": 100, "type": "pause", "client_ts": T0},  # not counted
    ])
    genres = {100: (10, "Rock"), 101: (10, "Rock")}
    documents = {d["_id"]: d for d in trending_increments(events, genres)}
    window = documents["track/100/2024-03-01T20:00:00Z"]
    assert (window["plays"], window["completes"], window["skips"], window["likes"]) == (1, 1, 0, 0)
    assert window["window_end"] - window["window_start"] == timedelta(minutes=5) and window["genre_id"] == 10
    genre = documents["genre/10/2024-03-01T20:00:00Z"]
    assert (genre["plays"], genre["completes"], genre["skips"], genre["title"]) == (1, 1, 1, "Rock")
    assert documents["track/100/2024-03-01T20:05:00Z"]["plays"] == 1
    assert len(documents) == 5  # 2 tracks + 1 genre in the first window, 1 + 1 in the next
