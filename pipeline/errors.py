"""The pipeline's base exception: every error its steps raise on purpose derives from it."""

from __future__ import annotations

from fma_platform.errors import PlatformError


class PipelineError(PlatformError):
    """A pipeline step refuses its input or cannot finish (a task fails with this message)."""
