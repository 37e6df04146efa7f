"""The platform's error roots.

Every package has one base exception, derived from :class:`PlatformError`, so a caller can
catch "anything this package refuses" in one clause and a reader finds every failure mode
of a package by its base. Bad *input* errors carry a machine-readable ``reason``
(:class:`ReasonedError`): quarantine records, dead letters and job summaries store it.
"""

from __future__ import annotations


class PlatformError(Exception):
    """Root of every error the platform's own code raises on purpose."""


class ReasonedError(PlatformError, ValueError):
    """Input that cannot be used; ``reason`` is a stable code, ``detail`` says what and where."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)
