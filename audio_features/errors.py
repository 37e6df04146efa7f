"""The one base exception of the FMA data layer and feature extractor.

Every error ``audio_features`` raises on purpose derives from :class:`AudioFeaturesError`,
so a caller can catch "anything the data layer refuses" in one clause.
"""

from __future__ import annotations

from fma_platform.errors import PlatformError


class AudioFeaturesError(PlatformError):
    """Root of the errors of ``audio_features`` (metadata, archives, audio folder, clips, CLI)."""
