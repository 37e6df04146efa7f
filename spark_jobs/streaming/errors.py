"""The real-time loop's errors: one base, ``StreamingError``."""

from __future__ import annotations

from fma_platform.errors import PlatformError


class StreamingError(PlatformError):
    """Base of every error the streaming package raises on purpose."""


class StreamingJobError(StreamingError):
    """The job cannot run as asked (a bad argument such as a negative trigger interval)."""
