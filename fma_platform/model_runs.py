"""The ``model_runs`` contract: one document per trained, tuned or baseline model of a job run.

Every job that evaluates models writes its documents through ``model_run_document`` and
``record_run``; the models page reads them by field, never by parsing ids.

Document (by ``run_id``)::

    run_id        "<job_run_id>:<model>:<kind>[:<label>]"   (``run_id_of``)
    job_run_id    the job's run (one Airflow run of fma_training, a benchmark run ...)
    family        "recommendations" | "similar_tracks"       (``RunFamily``)
    model         "als", "lsh", or a baseline's name ("popular", "random", "exact_knn" ...)
    kind          "trial" | "final" | "baseline"              (``RunKind``)
    label         the trial's parameters in words, or None
    params        {...; "k": the cut-off every "*_at_k" metric uses}
    metrics       {name: float | None}: ``Metric`` names for quality measures (what readers
                  compare), other names for job figures (candidate pairs, seconds ...);
                  a measure's confidence interval beside it as ``<metric>_ci_low`` and
                  ``<metric>_ci_high`` (``interval_key``), with ``ci_confidence`` and
                  ``ci_resamples`` saying how it was drawn (bootstrap over listeners)
    data_snapshot what the model was trained/evaluated on
    model_version the version in the model store (or of the data for baselines)
    champion      bool: this final run's version is the family's champion
    promotion     {"promoted": bool, "reason": str, ...}; a recommender promotion also holds
                  the paired NDCG@k gain over the champion and its interval
    created_at    first time the run was recorded (kept on re-runs: idempotent)
    updated_at    last time it was recorded
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from pymongo.database import Database

from fma_platform.contracts import Collection


class RunFamily(StrEnum):
    """What a model is for; the models page shows each family on its own."""

    RECOMMENDATIONS = "recommendations"
    SIMILAR_TRACKS = "similar_tracks"


class RunKind(StrEnum):
    TRIAL = "trial"  # one tuning configuration, scored on the validation split
    FINAL = "final"  # the chosen configuration, scored on the holdout
    BASELINE = "baseline"  # a reference model scored on the same holdout


class Metric(StrEnum):
    """Metric names in ``model_runs.metrics``; ``*_AT_K`` use the run's ``params.k``."""

    PRECISION_AT_K = "precision_at_k"
    RECALL_AT_K = "recall_at_k"
    NDCG_AT_K = "ndcg_at_k"
    MAP_AT_K = "map_at_k"
    HIT_RATE_AT_K = "hit_rate_at_k"
    CATALOGUE_COVERAGE_AT_K = "catalogue_coverage_at_k"
    INTRA_LIST_DIVERSITY_AT_K = "intra_list_diversity_at_k"
    NOVELTY_AT_K = "novelty_at_k"
    GENRE_PRECISION_AT_K = "genre_precision_at_k"
    SECONDS = "seconds"


# The recommenders' quality measures, compared across models on one holdout.
RECOMMENDATION_METRICS: tuple[Metric, ...] = (
    Metric.PRECISION_AT_K, Metric.RECALL_AT_K, Metric.NDCG_AT_K, Metric.MAP_AT_K,
    Metric.CATALOGUE_COVERAGE_AT_K, Metric.INTRA_LIST_DIVERSITY_AT_K, Metric.NOVELTY_AT_K,
)
# The metric a family's champion is chosen on.
CHAMPION_METRIC: dict[RunFamily, Metric] = {
    RunFamily.RECOMMENDATIONS: Metric.NDCG_AT_K,
    RunFamily.SIMILAR_TRACKS: Metric.RECALL_AT_K,
}


# Bounds of a metric's confidence interval, stored beside the metric (``interval_key``).
CI_LOW = "ci_low"
CI_HIGH = "ci_high"
CI_BOUNDS = (CI_LOW, CI_HIGH)
CI_CONFIDENCE = "ci_confidence"  # e.g. 0.95
CI_RESAMPLES = "ci_resamples"  # bootstrap resamples behind the intervals


def interval_key(metric: str, bound: str) -> str:
    """``("ndcg_at_k", "ci_low")`` -> ``"ndcg_at_k_ci_low"``: where a bound is stored in ``metrics``."""
    if bound not in CI_BOUNDS:
        raise ValueError(f"bound must be one of {CI_BOUNDS}, got {bound!r}")
    return f"{metric}_{bound}"


# Per-segment figures of a run (``spark_jobs.metrics.segment_report`` writes them, the models
# page reads them): ``segment:<segment>:<name>``; a bound is ``segment:<segment>:<metric>_ci_low``.
COLD, REGULAR, HEAVY, NEW_TRACKS = "cold", "regular", "heavy", "new_tracks"
LISTENER_SEGMENTS = (COLD, REGULAR, HEAVY)
SEGMENTS = (*LISTENER_SEGMENTS, NEW_TRACKS)
SEGMENT_PREFIX = "segment"
SEGMENT_COUNT = "n_users"  # segment:<segment>:n_users, the listeners scored in it
HEAVY_MIN_EVENTS = "min_events"  # segment:heavy:min_events, the smallest heavy count
NEW_TRACK_COUNT = "n_tracks"  # segment:new_tracks:n_tracks


def segment_key(segment: str, name: str) -> str:
    """``("cold", "ndcg_at_k")`` -> ``"segment:cold:ndcg_at_k"``: where a segment's figure is stored.

    A metric's interval bound is ``segment_key(s, interval_key(m, bound))``, which equals
    ``interval_key(segment_key(s, m), bound)``: one naming rule for both.
    """
    if segment not in SEGMENTS:
        raise ValueError(f"segment must be one of {SEGMENTS}, got {segment!r}")
    return f"{SEGMENT_PREFIX}:{segment}:{name}"


def metric_interval(metrics: dict[str, Any], metric: str) -> tuple[float, float] | None:
    """``(low, high)`` stored for ``metric`` in a run's ``metrics``; None when it has none."""
    low, high = (metrics.get(interval_key(metric, bound)) for bound in CI_BOUNDS)
    if low is None or high is None:
        return None
    return float(low), float(high)


def metric_label(metric: str, k: int | None = None) -> str:
    """``"ndcg_at_k"`` -> ``"NDCG@10"``, ``"catalogue_coverage_at_k"`` -> ``"catalogue coverage@10"``."""
    name = str(metric)
    if name.endswith("_at_k"):
        stem = name[: -len("_at_k")]
        stem = stem.upper() if stem in ("ndcg", "map") else stem.replace("_", " ")
        return f"{stem}@{k if k is not None else 'k'}"
    return name.replace("_", " ")


def run_id_of(job_run_id: str, *, model: str, kind: RunKind | str, label: str | None = None) -> str:
    """The one run-id format: ``<job_run_id>:<model>:<kind>[:<label>]``."""
    if not job_run_id:
        raise ValueError("job_run_id must not be empty")
    parts = [job_run_id, str(model), str(RunKind(kind))]
    if label:
        parts.append(label)
    return ":".join(parts)


def model_run_document(*, job_run_id: str, family: RunFamily | str, model: str, kind: RunKind | str,
                       params: dict[str, Any], metrics: dict[str, Any], data_snapshot: dict[str, Any],
                       model_version: str, label: str | None = None, champion: bool = False,
                       promotion: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``model_runs`` document in the contract's shape (without the timestamps ``record_run`` sets)."""
    kind = RunKind(kind)
    return {
        "run_id": run_id_of(job_run_id, model=model, kind=kind, label=label),
        "job_run_id": job_run_id, "family": str(RunFamily(family)), "model": str(model), "kind": str(kind),
        "label": label, "params": params, "metrics": metrics, "data_snapshot": data_snapshot,
        "model_version": model_version, "champion": bool(champion),
        "promotion": promotion or {"promoted": False, "reason": f"{kind} run"},
    }


def record_run(db: Database, document: dict[str, Any], *, now: datetime | None = None) -> None:
    """Upsert ``document`` by ``run_id``; ``created_at`` is set on first insert only (idempotent)."""
    now = now or datetime.now(timezone.utc)
    body = {key: value for key, value in document.items() if key != "created_at"}
    db[Collection.MODEL_RUNS].update_one(
        {"run_id": document["run_id"]},
        {"$set": {**body, "updated_at": now}, "$setOnInsert": {"created_at": now}},
        upsert=True,
    )


def ensure_model_run_indexes(db: Database) -> None:
    runs = db[Collection.MODEL_RUNS]
    runs.create_index("run_id", unique=True, name="run_id_unique")
    runs.create_index([("family", 1), ("kind", 1), ("created_at", -1)], name="family_kind_time")
