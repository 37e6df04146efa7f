"""spark-submit entrypoint: the real-time loop, listening events from Kafka -> fresh recommendations in MongoDB.

    spark-submit --master local[2] spark_jobs/streaming_recommendations.py \\
        [--trigger-seconds 0.1] [--checkpoint DIR] [--starting-offsets earliest] \\
        [--max-offsets-per-trigger N] [--run-for SECONDS] [--topic TOPIC]

Parses the arguments and runs :func:`spark_jobs.streaming.job.run` until SIGTERM/SIGINT
(or ``--run-for``); the loop is described in ``spark_jobs.streaming``. Prints one JSON
summary line; exits 1 when the query failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fma_platform.settings import Settings, get_settings  # noqa: E402
from spark_jobs.streaming.job import DEFAULT_TRIGGER_S, run  # noqa: E402
from spark_jobs.streaming.kafka_source import STARTING_OFFSETS  # noqa: E402


def parse_args(argv: list[str] | None, settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="streaming_recommendations", description=__doc__.splitlines()[0])
    parser.add_argument("--trigger-seconds", type=float, default=DEFAULT_TRIGGER_S,
                        help=f"micro-batch interval (default {DEFAULT_TRIGGER_S} s)")
    parser.add_argument("--checkpoint", type=Path, default=settings.streaming_checkpoint_dir,
                        help="checkpoint folder (offsets of committed batches)")
    parser.add_argument("--starting-offsets", choices=STARTING_OFFSETS, default="earliest",
                        help="where a query without checkpoint starts")
    parser.add_argument("--max-offsets-per-trigger", type=int, default=None,
                        help="most records per batch (default: FMA_STREAM_MAX_RECORDS_PER_BATCH, "
                             f"{settings.stream_max_records_per_batch}; 0: no bound)")
    parser.add_argument("--run-for", type=float, default=None, help="stop after this many seconds (tests, benchmarks)")
    parser.add_argument("--topic", default=None, help="another topic than the settings' events topic")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("py4j", "kafka"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    settings = get_settings()
    args = parse_args(argv, settings)
    summary = run(settings, checkpoint=args.checkpoint, topic=args.topic, trigger_seconds=args.trigger_seconds,
                  starting_offsets=args.starting_offsets, max_offsets_per_trigger=args.max_offsets_per_trigger,
                  run_for=args.run_for)
    print(json.dumps(summary), flush=True)
    return 1 if summary["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
