"""The listener simulator: synthetic FMA listeners with known tastes, and their events.

FMA has no per-user listening data. The recommenders are bootstrapped and tested on
simulated listeners whose latent tastes are saved (``simulated_listeners``), so a good
recommender can be shown to recover them. Every event is labelled ``source="simulator"``.
"""

from simulator.behaviour import affinity
from simulator.catalog import CatalogError, EmptyCatalogError, SimulatorError, load_catalog, prepare_catalog
from simulator.listeners import Listener, make_listeners
from simulator.simulate import SimulationResult, simulate
from simulator.sinks import (
    SIMULATED_LISTENERS,
    KafkaSendReport,
    KafkaStalledError,
    MongoWriteReport,
    send_events_to_kafka,
    write_events_jsonl,
    write_events_to_mongo,
    write_listeners,
)

__all__ = [
    "SIMULATED_LISTENERS",
    "CatalogError",
    "EmptyCatalogError",
    "KafkaSendReport",
    "KafkaStalledError",
    "Listener",
    "MongoWriteReport",
    "SimulationResult",
    "SimulatorError",
    "affinity",
    "load_catalog",
    "make_listeners",
    "prepare_catalog",
    "send_events_to_kafka",
    "simulate",
    "write_events_jsonl",
    "write_events_to_mongo",
    "write_listeners",
]
