"""The listener simulator: synthetic FMA listeners with known tastes, and their events.

FMA has no per-user listening data. The recommenders are bootstrapped and tested on
simulated listeners whose latent tastes are saved (``simulated_listeners``), so a good
recommender can be shown to recover them. Every event is labelled ``source="simulator"``.

Callers run a whole simulation with ``run_simulation(settings, SimulationOptions(...))``
(``python -m simulator`` is its command line), or simulate a catalogue DataFrame in
memory with ``simulate``. ``ground_truth`` (``GroundTruth``) chooses what tastes are made of:
the audio embedding (default) or latent track attributes no recommender sees
(``simulator.ground_truth`` says what recommenders can see under each).
"""

from simulator.catalogue import load_catalogue, prepare_catalogue, synthetic_catalogue
from simulator.errors import (
    CatalogueError,
    EmptyCatalogueError,
    KafkaStalledError,
    ServiceDownError,
    SimulationParameterError,
    SimulatorError,
)
from simulator.ground_truth import GroundTruth, latent_attributes
from simulator.listeners import Listener, make_listeners
from simulator.run import SimulationOptions, SimulationReport, Sink, parse_start, run_simulation
from simulator.simulate import SimulationResult, simulate
from simulator.sinks import (
    KafkaSendReport,
    send_events_to_kafka,
    write_events_jsonl,
    write_events_to_mongo,
    write_listeners,
)

__all__ = [
    "CatalogueError",
    "EmptyCatalogueError",
    "GroundTruth",
    "KafkaSendReport",
    "KafkaStalledError",
    "Listener",
    "ServiceDownError",
    "SimulationOptions",
    "SimulationParameterError",
    "SimulationReport",
    "SimulationResult",
    "SimulatorError",
    "Sink",
    "latent_attributes",
    "load_catalogue",
    "make_listeners",
    "parse_start",
    "prepare_catalogue",
    "run_simulation",
    "send_events_to_kafka",
    "simulate",
    "synthetic_catalogue",
    "write_events_jsonl",
    "write_events_to_mongo",
    "write_listeners",
]
