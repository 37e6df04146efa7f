"""Listening events -> implicit (user, track) interactions, a time-based holdout, int user ids.

Implicit strength of one (user, track) pair, from all its events in a period::

    strength = max(0, W_LISTEN    * listened      # sum over ended plays of listened fraction (<= 1)
                    + W_COMPLETE  * completes
                    + W_LIKE      * likes
                    - W_SKIP      * early_skips   # fma_platform.listening's early-skip rule
                    - W_DISLIKE   * dislikes)

A play ends with a ``complete`` or a ``skip`` event; its listened fraction is
``listened_s / track_duration_s`` capped at 1 (without a duration: 1 for a complete, 0
for a skip). A skip is early when the listener heard less than
``listening.EARLY_SKIP_SECONDS`` or less than ``listening.EARLY_SKIP_SHARE`` of the track:
the rule the stream applies too (:func:`early_skip`). So one completed play scores 2, a
completed and liked play 4, an early skip 0 (clipped), a late skip about its fraction.
Strength 0 means "played, not liked": Spark's implicit ALS treats it like an unobserved
pair, and the pair still counts as played.

Holdout (``split_by_time``): per user, the tracks are ordered by the time the user first
touched them; the last ``holdout`` tracks (an int N, or a fraction of the user's tracks)
define the user's cut-off = the first event of those tracks. Training keeps only events
strictly before the cut-off, the test period the events at or after it, so for every
user ``max(train time) < min(test time)``. Users with fewer than ``holdout +
min_train_tracks`` distinct tracks are train-only.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window, functions as F

from fma_platform.events import EventType
from fma_platform.listening import EARLY_SKIP_SECONDS, EARLY_SKIP_SHARE
from spark_jobs.recommend.errors import InteractionsError
from spark_jobs.recommend.events import DURATION, EVENT_TIME, LISTENED, TRACK_ID, USER_ID

USER_INDEX = "user_index"
STRENGTH = "strength"
PLAYS = "plays"

W_LISTEN = 1.0
W_COMPLETE = 1.0
W_LIKE = 2.0
W_SKIP = 1.0
W_DISLIKE = 2.0


def early_skip(listened: Column, duration: Column) -> Column:
    """Spark form of ``fma_platform.listening.is_early_skip``: never null (unknown -> False).

    The share rule applies only to a known, positive duration (``when`` keeps Spark's
    ANSI mode from dividing by zero).
    """
    share = F.when(duration > 0, listened / duration)
    return F.coalesce((listened < F.lit(EARLY_SKIP_SECONDS)) | (share < F.lit(EARLY_SKIP_SHARE)), F.lit(False))


def implicit_interactions(events: DataFrame) -> DataFrame:
    """One row per (user, track): counts, first/last event time and ``strength`` (see module doc)."""
    kind = F.col("type")
    listened, duration = F.col(LISTENED), F.col(DURATION)
    fraction = F.when(duration > 0, F.least(listened / duration, F.lit(1.0))).otherwise(
        F.when(kind == EventType.COMPLETE.value, 1.0).otherwise(0.0))
    ended = kind.isin(EventType.COMPLETE.value, EventType.SKIP.value)
    counts = events.groupBy(USER_ID, TRACK_ID).agg(
        F.sum((kind == EventType.PLAY.value).cast("int")).alias(PLAYS),
        F.coalesce(F.sum(F.when(ended, fraction)), F.lit(0.0)).alias("listened"),
        F.sum((kind == EventType.COMPLETE.value).cast("int")).alias("completes"),
        F.sum(((kind == EventType.SKIP.value) & early_skip(listened, duration)).cast("int")).alias("early_skips"),
        F.sum((kind == EventType.LIKE.value).cast("int")).alias("likes"),
        F.sum((kind == EventType.DISLIKE.value).cast("int")).alias("dislikes"),
        F.min(EVENT_TIME).alias("first_ts"),
        F.max(EVENT_TIME).alias("last_ts"),
    )
    raw = (
        W_LISTEN * F.col("listened") + W_COMPLETE * F.col("completes") + W_LIKE * F.col("likes")
        - W_SKIP * F.col("early_skips") - W_DISLIKE * F.col("dislikes")
    )
    return counts.withColumn(STRENGTH, F.greatest(F.lit(0.0), raw).cast("double"))


def index_users(interactions: DataFrame) -> DataFrame:
    """``(user_id, user_index)``: dense ints 0.. in user_id order (ALS needs int ids)."""
    users = interactions.select(USER_ID).distinct()
    return users.withColumn(USER_INDEX, (F.row_number().over(Window.orderBy(USER_ID)) - 1).cast("int"))


def with_user_index(interactions: DataFrame, users: DataFrame) -> DataFrame:
    """``interactions`` with ``user_index``; a user missing from ``users`` raises."""
    joined = interactions.join(users, USER_ID, "left")
    unknown = joined.filter(F.col(USER_INDEX).isNull()).select(USER_ID).first()
    if unknown is not None:
        raise InteractionsError(f"user {unknown[USER_ID]!r} has no int id in the mapping")
    return joined


# --- holdout --------------------------------------------------------------------------------

def holdout_size_column(holdout: int | float, n_tracks: Column) -> Column:
    """How many of a user's tracks are held out: ``holdout`` if an int, else a share (ceil)."""
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or holdout <= 0:
        raise InteractionsError(f"holdout must be an int >= 1 or a fraction in (0, 1), got {holdout!r}")
    if isinstance(holdout, float) and not float(holdout).is_integer():
        if holdout >= 1:
            raise InteractionsError(f"a fractional holdout must be below 1, got {holdout}")
        return F.ceil(n_tracks * F.lit(holdout)).cast("int")
    return F.lit(int(holdout))


def user_cutoffs(events: DataFrame, *, holdout: int | float, min_train_tracks: int) -> DataFrame:
    """``(user_id, cutoff, n_tracks, test_tracks)`` for users with enough history to hold out."""
    if min_train_tracks < 1:
        raise InteractionsError(f"min_train_tracks must be at least 1, got {min_train_tracks}")
    first_touch = events.groupBy(USER_ID, TRACK_ID).agg(F.min(EVENT_TIME).alias("first_ts"))
    latest_first = Window.partitionBy(USER_ID).orderBy(F.col("first_ts").desc(), F.col(TRACK_ID).desc())
    ranked = (
        first_touch.withColumn("recency", F.row_number().over(latest_first))
        .withColumn("n_tracks", F.count("*").over(Window.partitionBy(USER_ID)))
        .withColumn("test_tracks", holdout_size_column(holdout, F.col("n_tracks")))
    )
    eligible = ranked.filter(F.col("n_tracks") >= F.col("test_tracks") + min_train_tracks)
    return eligible.filter(F.col("recency") <= F.col("test_tracks")).groupBy(USER_ID).agg(
        F.min("first_ts").alias("cutoff"), F.first("n_tracks").alias("n_tracks"),
        F.first("test_tracks").alias("test_tracks"),
    )


def split_by_time(
    events: DataFrame, *, holdout: int | float, min_train_tracks: int = 5
) -> tuple[DataFrame, DataFrame]:
    """``(train_events, test_events)``: per user, test = events at/after the cut-off (module doc)."""
    cutoffs = user_cutoffs(events, holdout=holdout, min_train_tracks=min_train_tracks).select(USER_ID, "cutoff")
    tagged = events.join(F.broadcast(cutoffs), USER_ID, "left")
    in_test = F.col("cutoff").isNotNull() & (F.col(EVENT_TIME) >= F.col("cutoff"))
    train = tagged.filter(~in_test).drop("cutoff")
    test = tagged.filter(in_test).drop("cutoff")
    return train, test


def relevant_interactions(test_interactions: DataFrame, train_interactions: DataFrame) -> DataFrame:
    """``(user_id, track_id)`` held out and relevant: positive strength, not played in training.

    Recommenders never suggest tracks the user played in training, so repeats are no target.
    """
    played = train_interactions.select(USER_ID, TRACK_ID)
    positive = test_interactions.filter(F.col(STRENGTH) > 0).select(USER_ID, TRACK_ID)
    return positive.join(played, [USER_ID, TRACK_ID], "left_anti")


def relevant_by_user(relevant: DataFrame) -> dict[str, set[int]]:
    """The relevant pairs as ``{user_id: {track_id, ...}}`` (the metrics' representation)."""
    by_user: dict[str, set[int]] = {}
    for row in relevant.select(USER_ID, TRACK_ID).toLocalIterator():
        by_user.setdefault(row[USER_ID], set()).add(int(row[TRACK_ID]))
    return by_user
