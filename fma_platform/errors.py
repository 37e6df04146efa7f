"""The platform's shape of a bad-input error: a machine-readable reason and a detail."""

from __future__ import annotations


class ReasonedError(ValueError):
    """Input that cannot be used; ``reason`` is a stable code, ``detail`` says what and where."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)
