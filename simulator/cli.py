"""Command line of the listener simulator.

    python -m simulator run --listeners 2000 --events 200000 --seed 7 \\
        --start 2024-01-01T00:00:00Z --to mongo|kafka|jsonl [--rate 500] [--out events.jsonl]

Endpoints come from ``get_settings()``. The catalogue is read from MongoDB and the
listeners' latent tastes are always saved there (``simulated_listeners``). On failure it
prints one line ``simulator: <reason>`` to stderr and exits 1 (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from kafka.errors import KafkaError
from pymongo.errors import PyMongoError

from fma_platform.kafka import topic_partitions
from fma_platform.mongo import platform_db
from fma_platform.producer import EventProducer, ProducerState
from fma_platform.settings import Settings, get_settings
from simulator.catalog import SimulatorError, load_catalog
from simulator.simulate import DEFAULT_DAYS, SimulationResult, simulate
from simulator.sinks import send_events_to_kafka, write_events_jsonl, write_events_to_mongo, write_listeners

TARGETS = ("mongo", "kafka", "jsonl")
MONGO_TIMEOUT_MS = 3000


class ServiceDownError(SimulatorError):
    """A service the run needs did not answer."""


def main(argv: list[str] | None = None, *, settings: Settings | None = None) -> int:
    """Parse ``argv``, run the subcommand, print a one-line JSON summary; the exit code."""
    args = build_parser().parse_args(argv)
    settings = settings or get_settings()
    try:
        summary = run(args, settings)
    except (SimulatorError, ValueError, OSError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulator", description="Simulated FMA listeners.")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="simulate listeners and write their events")
    run_parser.add_argument("--listeners", type=int, required=True, help="how many listeners")
    run_parser.add_argument("--events", type=int, required=True, help="about how many events in all")
    run_parser.add_argument("--seed", type=int, required=True, help="same seed, same listeners and events")
    run_parser.add_argument("--start", type=parse_start, required=True,
                            help="ISO 8601 start of simulated time (no offset means UTC)")
    run_parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="simulated days the sessions spread over")
    run_parser.add_argument("--to", choices=TARGETS, required=True, help="where the events go")
    run_parser.add_argument("--rate", type=float, help="kafka: events per second (default: as fast as acknowledged)")
    run_parser.add_argument("--out", type=Path, help="jsonl: the events file")
    return parser


def parse_start(text: str) -> datetime:
    """An ISO 8601 datetime; one without an offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 datetime: {text!r}") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def run(args: argparse.Namespace, settings: Settings) -> dict:
    """Simulate from the MongoDB catalogue and write to the chosen target; a summary dict."""
    if args.to == "jsonl" and args.out is None:
        raise ValueError("--to jsonl needs --out PATH")
    if args.rate is not None and args.to != "kafka":
        raise ValueError("--rate applies to --to kafka only")
    db = platform_db(settings, timeout_ms=MONGO_TIMEOUT_MS)
    try:
        catalog = load_catalog(db)
    except PyMongoError as exc:
        raise ServiceDownError(f"MongoDB at {settings.mongo_url} did not answer: {_first_line(exc)}") from exc
    if catalog.empty:
        raise SimulatorError(
            f"the catalog is empty ({settings.mongo_db}.tracks has no documents): run the ETL's catalog step first"
        )
    result = simulate(catalog, n_listeners=args.listeners, target_events=args.events, seed=args.seed,
                      start=args.start, days=args.days)
    summary = {"run_key": result.run_key, "listeners": len(result.listeners), "events": result.event_count,
               "target": args.to}
    summary |= write_target(args, settings, result)
    try:
        summary["listeners_saved"] = write_listeners(db, result.listeners)
    except PyMongoError as exc:
        raise ServiceDownError(f"saving listeners to MongoDB failed: {_first_line(exc)}") from exc
    return summary


def write_target(args: argparse.Namespace, settings: Settings, result: SimulationResult) -> dict:
    """Write the run's events to ``args.to``; what the sink reported."""
    if args.to == "jsonl":
        return {"written": write_events_jsonl(args.out, result.events()), "out": str(args.out)}
    if args.to == "mongo":
        try:
            report = write_events_to_mongo(platform_db(settings, timeout_ms=MONGO_TIMEOUT_MS), result.events())
        except PyMongoError as exc:
            raise ServiceDownError(f"writing events to MongoDB failed: {_first_line(exc)}") from exc
        return {"written": report.written, "inserted": report.inserted, "already_present": report.already_present}
    return send_to_kafka(settings, result, rate_per_s=args.rate)


def send_to_kafka(settings: Settings, result: SimulationResult, *, rate_per_s: float | None) -> dict:
    """Check the broker and topic, then send the events through the platform's producer."""
    topic = settings.kafka_events_topic
    try:
        partitions = topic_partitions(settings, topic)
    except KafkaError as exc:
        raise ServiceDownError(f"Kafka at {settings.kafka_bootstrap} did not answer: {_first_line(exc)}") from exc
    if partitions == 0:
        raise ServiceDownError(f"Kafka topic {topic!r} does not exist at {settings.kafka_bootstrap}")
    producer = EventProducer(settings)
    try:
        status = producer.status()
        if status.state is not ProducerState.CONNECTED:
            raise ServiceDownError(f"Kafka at {settings.kafka_bootstrap} did not answer: {status.last_error}")
        report = send_events_to_kafka(producer, result.events(), rate_per_s=rate_per_s)
    finally:
        producer.close()
    if report.buffered or report.dropped:
        raise ServiceDownError(
            f"Kafka took {report.sent} of {report.handed_over} events ({report.buffered} undelivered, "
            f"{report.dropped} dropped): {report.last_error}"
        )
    return {"sent": report.sent, "elapsed_s": report.elapsed_s}


def _first_line(exc: BaseException, *, limit: int = 240) -> str:
    """The start of a driver's (often very long) error message, for a one-line reason."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."
