"""One simulation run from the platform's catalogue to a sink: the simulator's library entry.

``run_simulation(settings, SimulationOptions(...))`` reads the catalogue from MongoDB,
simulates the listeners, writes their events to the chosen sink (MongoDB, Kafka or a
JSON Lines file), saves their latent tastes in ``simulated_listeners`` and returns a
``SimulationReport``. Every failure is a ``SimulatorError`` (``ServiceDownError`` when
MongoDB or Kafka does not answer, ``SimulationParameterError`` for bad options).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path

from kafka.errors import KafkaError
from pymongo.errors import PyMongoError

from fma_platform.kafka import topic_partitions
from fma_platform.mongo import platform_db
from fma_platform.producer import EventProducer, ProducerState
from fma_platform.settings import Settings
from simulator.catalogue import load_catalogue
from simulator.errors import EmptyCatalogueError, ServiceDownError, SimulationParameterError
from simulator.ground_truth import GroundTruth, parse_ground_truth
from simulator.simulate import DEFAULT_DAYS, SimulationResult, simulate
from simulator.sinks import send_events_to_kafka, write_events_jsonl, write_events_to_mongo, write_listeners

MONGO_TIMEOUT_MS = 3000


class Sink(StrEnum):
    """Where a run's events go."""

    MONGO = "mongo"  # upserted into listening_events (a rerun adds nothing)
    KAFKA = "kafka"  # sent to the events topic through the platform's producer
    JSONL = "jsonl"  # one event per line in their wire form, in a file


@dataclass(frozen=True)
class SimulationOptions:
    """What to simulate and where the events go (same options and catalogue, same events)."""

    listeners: int
    events: int  # about how many events in all
    seed: int
    start: datetime  # simulated time of the first session, timezone-aware
    sink: Sink
    days: int = DEFAULT_DAYS
    rate_per_s: float | None = None  # Kafka only: events per second (None: as fast as acknowledged)
    out: Path | None = None  # JSONL only: the events file
    ground_truth: GroundTruth = GroundTruth.EMBEDDING  # the tastes' space (simulator.ground_truth)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sink", Sink(self.sink))
        object.__setattr__(self, "ground_truth", parse_ground_truth(self.ground_truth))
        if self.sink is Sink.JSONL and self.out is None:
            raise SimulationParameterError("the jsonl sink needs an output path (out)")
        if self.out is not None and self.sink is not Sink.JSONL:
            raise SimulationParameterError(f"an output path applies to the jsonl sink only, not {self.sink}")
        if self.rate_per_s is not None and self.sink is not Sink.KAFKA:
            raise SimulationParameterError(f"a rate applies to the kafka sink only, not {self.sink}")


@dataclass(frozen=True)
class SimulationReport:
    """What a run did. Sink figures are None for the other sinks."""

    run_key: str
    listeners: int
    events: int
    sink: str
    listeners_saved: int
    ground_truth: str = GroundTruth.EMBEDDING.value
    written: int | None = None  # mongo, jsonl: events now stored
    inserted: int | None = None  # mongo: events new to the collection
    already_present: int | None = None  # mongo: events a previous run had stored
    out: str | None = None  # jsonl
    sent: int | None = None  # kafka: acknowledged by the broker
    elapsed_s: float | None = None  # kafka: sending time

    def as_dict(self) -> dict:
        """The figures that apply to the run's sink (JSON-ready)."""
        return {name: value for name, value in asdict(self).items() if value is not None}


def parse_start(text: str) -> datetime:
    """An ISO 8601 datetime; one without an offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SimulationParameterError(f"not an ISO 8601 datetime: {text!r}") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def run_simulation(settings: Settings, options: SimulationOptions) -> SimulationReport:
    """Simulate from the MongoDB catalogue, write the events to the sink, save the listeners."""
    db = platform_db(settings, timeout_ms=MONGO_TIMEOUT_MS)
    try:
        catalogue = load_catalogue(db)
    except PyMongoError as exc:
        raise ServiceDownError(f"MongoDB at {settings.mongo_url_redacted} did not answer: {_first_line(exc)}") from exc
    if catalogue.empty:
        raise EmptyCatalogueError(
            f"the catalogue is empty ({settings.mongo_db}.tracks has no documents): run the ETL's catalogue step first"
        )
    result = simulate(catalogue, n_listeners=options.listeners, target_events=options.events, seed=options.seed,
                      start=options.start, days=options.days, ground_truth=options.ground_truth)
    figures = _write_events(settings, options, result)
    try:
        saved = write_listeners(db, result.listeners)
    except PyMongoError as exc:
        raise ServiceDownError(f"saving listeners to MongoDB failed: {_first_line(exc)}") from exc
    return SimulationReport(run_key=result.run_key, listeners=len(result.listeners), events=result.event_count,
                            sink=str(options.sink), listeners_saved=saved, ground_truth=str(result.ground_truth),
                            **figures)


def _write_events(settings: Settings, options: SimulationOptions, result: SimulationResult) -> dict:
    """Write the run's events to ``options.sink``; the sink's figures for the report."""
    if options.sink is Sink.JSONL:
        return {"written": write_events_jsonl(options.out, result.events()), "out": str(options.out)}
    if options.sink is Sink.MONGO:
        try:
            report = write_events_to_mongo(platform_db(settings, timeout_ms=MONGO_TIMEOUT_MS), result.events())
        except PyMongoError as exc:
            raise ServiceDownError(f"writing events to MongoDB failed: {_first_line(exc)}") from exc
        return {"written": report.written, "inserted": report.inserted, "already_present": report.matched}
    return _send_to_kafka(settings, result, rate_per_s=options.rate_per_s)


def _send_to_kafka(settings: Settings, result: SimulationResult, *, rate_per_s: float | None) -> dict:
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
