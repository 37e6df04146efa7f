"""Command line of the listener simulator: parses argv and calls ``simulator.run.run_simulation``.

    python -m simulator run --listeners 2000 --events 200000 --seed 7 \\
        --start 2024-01-01T00:00:00Z --to mongo|kafka|jsonl [--rate 500] [--out events.jsonl] \\
        [--ground-truth embedding|latent]

``--ground-truth`` says what the listeners' tastes are made of (``simulator.ground_truth``):
``embedding`` (default) the audio embedding the content recommenders also use, ``latent``
track attributes drawn for the run that no recommender can see.

Endpoints come from ``get_settings()``. Prints the run's report as one JSON line; on
failure one line ``simulator: <reason>`` on stderr and exit code 1 (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from fma_platform.settings import Settings, get_settings
from simulator.errors import SimulatorError
from simulator.ground_truth import GroundTruth
from simulator.run import SimulationOptions, Sink, parse_start, run_simulation
from simulator.simulate import DEFAULT_DAYS


def main(argv: list[str] | None = None, *, settings: Settings | None = None) -> int:
    """Parse ``argv``, run the simulation, print its report; the exit code."""
    args = build_parser().parse_args(argv)
    try:
        options = SimulationOptions(listeners=args.listeners, events=args.events, seed=args.seed, start=args.start,
                                    sink=Sink(args.to), days=args.days, rate_per_s=args.rate, out=args.out,
                                    ground_truth=GroundTruth(args.ground_truth))
        report = run_simulation(settings or get_settings(), options)
    except (SimulatorError, OSError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.as_dict()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulator", description="Simulated FMA listeners.")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="simulate listeners and write their events")
    run_parser.add_argument("--listeners", type=int, required=True, help="how many listeners")
    run_parser.add_argument("--events", type=int, required=True, help="about how many events in all")
    run_parser.add_argument("--seed", type=int, required=True, help="same seed, same listeners and events")
    run_parser.add_argument("--start", type=_start, required=True,
                            help="ISO 8601 start of simulated time (no offset means UTC)")
    run_parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="simulated days the sessions spread over")
    run_parser.add_argument("--to", choices=[sink.value for sink in Sink], required=True,
                            help="where the events go")
    run_parser.add_argument("--rate", type=float, help="kafka: events per second (default: as fast as acknowledged)")
    run_parser.add_argument("--out", type=Path, help="jsonl: the events file")
    run_parser.add_argument("--ground-truth", choices=[g.value for g in GroundTruth], default=GroundTruth.EMBEDDING.value,
                            help="what tastes are made of: the audio embedding (default; the content "
                                 "recommenders see it) or latent track attributes no recommender sees")
    return parser


def _start(text: str) -> datetime:
    try:
        return parse_start(text)
    except SimulatorError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
