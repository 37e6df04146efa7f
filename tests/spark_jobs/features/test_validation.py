"""Bad feature input is refused with a reason; the profile's fingerprint follows the content only."""

from __future__ import annotations

import numpy as np
import pytest

from spark_jobs.features.errors import (
    REASON_DUPLICATE_TRACK_IDS,
    REASON_INVALID_VALUES,
    REASON_MISSING_COLUMNS,
    REASON_NON_NUMERIC_COLUMNS,
    REASON_TOO_FEW_ROWS,
    FeatureTransformError,
    TransformInputError,
)
from spark_jobs.features.transform import fit_transform_model
from spark_jobs.features.validation import profile_track_features
from spark_jobs.features.versions import default_version
from tests.spark_jobs.features.latent import N_FACTORS, latent_features


def _drop_columns(frame):
    return frame.drop(columns=["chroma_cqt_kurtosis_01", "tonnetz_std_06"])


def _invalid_values(frame):
    frame = frame.copy()
    frame.loc[[0, 3, 5], "mfcc_mean_01"] = np.nan
    frame.loc[[1], "zcr_max_01"] = np.inf
    return frame


def _one_row(frame):
    return frame.head(1)


def _duplicate_id(frame):
    return frame.assign(track_id=[2, 3, 3, 4, 5, 6])


def _text_column(frame):
    return frame.assign(rmse_mean_01="loud")


@pytest.mark.parametrize(("corrupt", "reason", "mentions"), [
    (_drop_columns, REASON_MISSING_COLUMNS, ["chroma_cqt_kurtosis_01", "tonnetz_std_06", "2 missing"]),
    (_invalid_values, REASON_INVALID_VALUES, ["mfcc_mean_01=3", "zcr_max_01=1", "2 feature column(s)"]),
    (_one_row, REASON_TOO_FEW_ROWS, ["1 row(s)"]),
    (_duplicate_id, REASON_DUPLICATE_TRACK_IDS, ["[3]"]),
    (_text_column, REASON_NON_NUMERIC_COLUMNS, ["rmse_mean_01"]),
])
def test_bad_input_is_rejected_with_a_reason(spark, corrupt, reason, mentions):
    df = spark.createDataFrame(corrupt(latent_features(6)))

    with pytest.raises(TransformInputError) as raised:
        fit_transform_model(df, N_FACTORS)

    assert raised.value.reason == reason and isinstance(raised.value, FeatureTransformError)
    for text in mentions:
        assert text in str(raised.value)


def test_nulls_are_counted_like_nans(spark):
    frame = latent_features(6).astype({"spectral_rolloff_min_01": "object"})
    frame.loc[[2, 4], "spectral_rolloff_min_01"] = None
    df = spark.createDataFrame(frame.astype({"spectral_rolloff_min_01": "float64"}))

    with pytest.raises(TransformInputError, match="spectral_rolloff_min_01=2"):
        fit_transform_model(df, N_FACTORS)


def test_default_version_depends_on_data_and_params_not_partitioning(spark):
    frame = latent_features(20)
    df = spark.createDataFrame(frame)
    profile = profile_track_features(df)
    reshuffled = profile_track_features(df.repartition(3).orderBy("track_id", ascending=False))
    changed = frame.copy()
    changed.loc[7, "mfcc_max_05"] += 1e-3
    other_data = profile_track_features(spark.createDataFrame(changed))
    version = default_version(profile, k=8, normalize=True)
    assert version == default_version(reshuffled, k=8, normalize=True)
    assert len(version) == 12
    assert version != default_version(other_data, k=8, normalize=True)
    assert version != default_version(profile, k=9, normalize=True)
    assert version != default_version(profile, k=8, normalize=False)
