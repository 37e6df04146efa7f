"""The one base exception of the synthetic sample generator."""

from __future__ import annotations

from fma_platform.errors import PlatformError


class SampleError(PlatformError, ValueError):
    """Parameters that cannot produce the sample dataset (too few tracks, say)."""


class SynthError(SampleError):
    """An unknown genre or waveform, or parameters that cannot make a clip."""
