"""The feature transform's errors: one base exception and the input errors' reason codes."""

from __future__ import annotations

from fma_platform.errors import PlatformError, ReasonedError

REASON_MISSING_COLUMNS = "missing_columns"
REASON_NON_NUMERIC_COLUMNS = "non_numeric_columns"
REASON_INVALID_VALUES = "invalid_values"
REASON_NULL_TRACK_IDS = "null_track_ids"
REASON_DUPLICATE_TRACK_IDS = "duplicate_track_ids"
REASON_TOO_FEW_ROWS = "too_few_rows"
REASON_NO_INPUT_FILES = "no_input_files"
REASON_BAD_K = "bad_k"
REASON_BAD_VERSION = "bad_version"
REASON_BAD_MODEL = "bad_model"


class FeatureTransformError(PlatformError):
    """Anything the feature transform refuses."""


class TransformInputError(FeatureTransformError, ReasonedError):
    """Input the transform cannot use; ``reason`` is one of the ``REASON_*`` codes."""
