"""The simulator's errors: one base, ``SimulatorError``, so a caller catches them in one clause."""

from __future__ import annotations

from fma_platform.errors import PlatformError


class SimulatorError(PlatformError):
    """Base of every error the simulator raises on purpose."""


class SimulationParameterError(SimulatorError, ValueError):
    """A parameter of a run is out of range (listeners, events, days, a naive start, a sink option)."""


class CatalogueError(SimulatorError):
    """The catalogue cannot drive a simulation (missing columns, bad values)."""


class EmptyCatalogueError(CatalogueError):
    """The catalogue has no tracks."""


class ServiceDownError(SimulatorError):
    """A service the run needs (MongoDB, Kafka) did not answer."""


class KafkaStalledError(SimulatorError):
    """The producer took no event for too long (the broker is down or the topic is missing)."""
