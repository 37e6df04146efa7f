"""The similarity package's errors: one base exception and the input errors' reason codes."""

from __future__ import annotations

from fma_platform.errors import PlatformError, ReasonedError

REASON_TOO_FEW_TRACKS = "too_few_tracks"
REASON_BAD_GRID = "bad_grid"
REASON_BAD_ARGUMENT = "bad_argument"


class SimilarityError(PlatformError):
    """Anything the similarity package refuses."""


class SimilarityInputError(SimilarityError, ReasonedError):
    """Input the similarity job cannot use; ``reason`` is one of the ``REASON_*`` codes."""
