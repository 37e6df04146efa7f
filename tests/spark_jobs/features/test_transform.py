"""The scaler + PCA pipeline on features with 3 known latent factors."""

from __future__ import annotations

import numpy as np
import pytest

from spark_jobs.features.transform import (
    embed_tracks,
    embedding_dimension,
    explained_variance,
    fit_transform_model,
    zero_variance_columns,
)
from audio_features.fma_schema import FLAT_FEATURE_NAMES
from tests.spark_jobs.features.latent import N_FACTORS, embeddings_by_track, latent_features


@pytest.fixture(scope="module")
def latent_df(spark):
    df = spark.createDataFrame(latent_features(60)).cache()
    yield df
    df.unpersist()


@pytest.fixture(scope="module")
def fitted(latent_df):
    return fit_transform_model(latent_df, N_FACTORS, normalize=True)


def test_three_latent_factors_explain_almost_all_variance(fitted):
    variance = explained_variance(fitted)

    assert len(variance) == N_FACTORS
    assert sum(variance) > 0.95
    assert sum(variance) <= 1.0 + 1e-9
    assert variance == sorted(variance, reverse=True)


def test_normalized_embeddings_have_length_k_and_unit_norm(fitted, latent_df):
    embeddings = embed_tracks(fitted, latent_df)

    assert embeddings.schema.simpleString() == "struct<track_id:bigint,embedding:array<float>>"
    by_track = embeddings_by_track(embeddings)
    assert sorted(by_track) == list(range(2, 62))
    assert {len(v) for v in by_track.values()} == {N_FACTORS}
    np.testing.assert_allclose([np.linalg.norm(v) for v in by_track.values()], 1.0, atol=1e-5)


def test_unnormalized_scores_carry_the_explained_variance(latent_df):
    model = fit_transform_model(latent_df, N_FACTORS, normalize=False)
    scores = np.stack(list(embeddings_by_track(embed_tracks(model, latent_df)).values()))

    # Standardised columns have unit sample variance, so the total is 518 and the
    # scores' sample variance is that share of it: a check of scaler, centering and PCA.
    score_variance = (scores ** 2).sum() / (len(scores) - 1)
    assert score_variance == pytest.approx(len(FLAT_FEATURE_NAMES) * sum(explained_variance(model)), rel=1e-4)
    np.testing.assert_allclose(scores.mean(axis=0), 0.0, atol=1e-3)
    assert np.linalg.norm(scores, axis=1).std() > 1.0  # lengths kept, not normalised


def test_k_is_capped_by_the_rows_with_a_message(spark, caplog):
    few = spark.createDataFrame(latent_features(5))

    with caplog.at_level("WARNING", logger="spark_jobs.features.transform"):
        model = fit_transform_model(few, 32)

    assert embedding_dimension(model) == 4
    assert "k=32 capped to 4" in caplog.text


def test_constant_columns_are_reported_and_contribute_nothing(spark):
    constant = ["mfcc_mean_01", "zcr_max_01"]
    frame = latent_features(12).assign(**{name: 7.5 for name in constant})
    df = spark.createDataFrame(frame)

    model = fit_transform_model(df, N_FACTORS)

    assert zero_variance_columns(model) == sorted(constant)
    vectors = np.stack(list(embeddings_by_track(embed_tracks(model, df)).values()))
    assert np.isfinite(vectors).all()
    # 516 informative standardised columns: the constant ones add no variance anywhere.
    assert sum(explained_variance(model)) > 0.95
