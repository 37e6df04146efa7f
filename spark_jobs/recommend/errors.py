"""The recommendation-training errors: one base, ``RecommendError``."""

from __future__ import annotations

from fma_platform.errors import PlatformError


class RecommendError(PlatformError):
    """Base of every error the recommendation training raises on purpose."""


class InteractionsError(RecommendError, ValueError):
    """Events that cannot become interactions (no events, bad columns, bad holdout rule)."""


class RecommenderError(RecommendError, ValueError):
    """Input a recommender cannot work with (unknown tracks, missing embeddings, bad parameters)."""


class TrainingError(RecommendError):
    """The job cannot train (nobody to evaluate, a bad grid)."""
