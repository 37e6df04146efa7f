"""Tests of the made-up FMA tables: splits without artist leakage, long-tailed popularity."""

from __future__ import annotations

from audio_features.fma_schema import TOP_LEVEL_GENRES
from fma_sample.tracks import build_genres, build_tracks, genre_ancestors


def test_splits_are_about_80_10_10_without_artist_leakage():
    tracks = build_tracks(300, seed=11)
    shares = tracks[("set", "split")].value_counts(normalize=True)
    assert 0.75 <= shares["training"] <= 0.85
    assert 0.05 <= shares["validation"] <= 0.12 and 0.05 <= shares["test"] <= 0.12
    assert (tracks[("set", "split")].groupby(tracks[("artist", "id")]).nunique() == 1).all()


def test_popularity_is_long_tailed():
    tracks = build_tracks(400, seed=1)
    listens = tracks[("track", "listens")]
    assert listens.mean() > 1.5 * listens.median()
    assert listens.max() > 30 * listens.median()
    assert listens.skew() > 3
    assert (tracks[("track", "favorites")] <= listens).all()
    assert (tracks[("track", "interest")] >= listens).all()
    album_sum = listens.groupby(tracks[("album", "id")]).sum()
    album_listens = tracks[("album", "listens")].groupby(tracks[("album", "id")]).first()
    assert (album_listens >= album_sum).all()


def test_every_top_level_genre_gets_tracks_and_its_genre_row():
    tracks = build_tracks(32, seed=5)
    assert tracks[("track", "genre_top")].value_counts().to_dict() == {t: 2 for t in TOP_LEVEL_GENRES.values()}
    genres = build_genres(tracks).set_index("genre_id")
    for genre_id in genres.index:
        assert genres.at[genre_id, "top_level"] == genre_ancestors(genre_id)[-1]
