"""The dashboards' base exception: every error the app raises on purpose derives from it."""

from __future__ import annotations

from fma_platform.errors import PlatformError


class DashboardError(PlatformError):
    """Something a page cannot do for the user; ``str(error)`` is safe to show them."""
