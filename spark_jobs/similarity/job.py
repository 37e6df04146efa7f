"""Run the similar-tracks job once: read embeddings, tune LSH, find every track's neighbours, measure, store.

Which neighbours are written (``method``): brute force costs n^2 x dim multiply-adds, so
for a small catalogue (FMA small, 8k) it takes about a second on the driver and is exact,
while LSH only pays off at a scale where a bucket holds a small share of the catalogue.
``auto`` writes exact neighbours up to ``exact_max_tracks`` and LSH above; ``lsh`` and
``exact`` force one. LSH is tuned and recorded either way, and both are timed (exact time
measured up to ``exact_max_tracks``, extrapolated from the tuning sample above it).

Writes ``similar_tracks``, ``model_runs`` and the chosen LSH model as a version of the
``similar_tracks`` model store (pointer ``CURRENT``); returns a summary.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from pymongo.database import Database
from pyspark.sql import SparkSession

from fma_platform.contracts import Collection, ModelFamily
from fma_platform.embeddings import TRACK_ID, TrackEmbeddings
from fma_platform.model_runs import Metric
from fma_platform.model_store import ModelStore, ModelStoreError
from fma_platform.settings import Settings, get_settings
from spark_jobs.similarity.errors import REASON_BAD_ARGUMENT, SimilarityInputError
from spark_jobs.similarity.inputs import read_embeddings, read_track_genres
from spark_jobs.similarity.neighbours import (
    DEFAULT_K,
    DEFAULT_SEED,
    DISTANCE,
    NEIGHBOUR_ID,
    RANK,
    LshParams,
    approx_neighbours,
    check_enough_tracks,
    embeddings_frame,
    exact_top_k,
    fit_lsh,
    neighbour_lists,
)
from spark_jobs.similarity.quality import RunEvaluation, genre_precision, random_neighbours, recall_at_k
from spark_jobs.similarity.store import (
    data_snapshot,
    model_run_documents,
    publish_lsh_model,
    record_model_runs,
    similar_track_documents,
    trial_summary,
    write_similar_tracks,
)
from spark_jobs.similarity.tuning import (
    DEFAULT_GRID,
    DEFAULT_SAMPLE_FRACTION,
    DEFAULT_TARGET_RECALL,
    Tuning,
    tune_lsh,
)

log = logging.getLogger(__name__)

METHOD_LSH = "lsh"
METHOD_EXACT = "exact"
METHOD_AUTO = "auto"
METHODS = (METHOD_LSH, METHOD_EXACT, METHOD_AUTO)
DEFAULT_EXACT_MAX_TRACKS = 20_000


@dataclass(frozen=True)
class JobOptions:
    """One run's parameters (the command line's arguments)."""

    run_id: str
    k: int = DEFAULT_K
    grid: str = DEFAULT_GRID
    target_recall: float = DEFAULT_TARGET_RECALL
    sample_fraction: float = DEFAULT_SAMPLE_FRACTION
    seed: int = DEFAULT_SEED
    model_version: str | None = None  # default: hash of data + chosen params
    embeddings: str | None = None  # Parquet instead of track_features
    model_dir: Path | None = None  # the store's folder; default: <models_dir>/similar_tracks
    method: str = METHOD_LSH
    exact_max_tracks: int = DEFAULT_EXACT_MAX_TRACKS


def choose_method(method: str, catalogue_size: int, exact_max_tracks: int) -> str:
    """``auto``: exact kNN up to ``exact_max_tracks`` tracks (it is cheap there), else LSH."""
    if method == METHOD_AUTO:
        return METHOD_EXACT if catalogue_size <= exact_max_tracks else METHOD_LSH
    if method not in (METHOD_LSH, METHOD_EXACT):
        raise SimilarityInputError(REASON_BAD_ARGUMENT, f"method must be lsh, exact or auto, got {method!r}")
    return method


def default_model_version(embeddings: TrackEmbeddings, params: LshParams, *, k: int, seed: int) -> str:
    """12 hex digits of the data and parameters: a rerun overwrites its own version."""
    identity = {"fingerprint": embeddings.fingerprint, "params": asdict(params), "k": k, "seed": seed}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def model_store(options: JobOptions, settings: Settings) -> ModelStore:
    """``--model-dir`` as a store, else the settings' ``similar_tracks`` family."""
    if options.model_dir is not None:
        return ModelStore(Path(options.model_dir))
    return ModelStore.of(settings.models_dir, ModelFamily.SIMILAR_TRACKS)


def run(spark: SparkSession, db: Database, options: JobOptions, *, settings: Settings | None = None) -> dict[str, Any]:
    """The whole job on a running session; returns the summary (``summary_line`` prints it)."""
    settings = settings or get_settings()
    store = model_store(options, settings)
    _check_options(options, store)
    embeddings = read_embeddings(spark, db, options.embeddings)
    check_enough_tracks(embeddings, options.k)
    method = choose_method(options.method, embeddings.size, options.exact_max_tracks)
    track_genres = read_track_genres(db)
    if not track_genres:
        log.warning("no track has a top_genre_id: genre precision is not measured")

    df = embeddings_frame(spark, embeddings).cache()
    try:
        tuning = tune_lsh(embeddings, df, grid=options.grid, k=options.k, target_recall=options.target_recall,
                          sample_fraction=options.sample_fraction, seed=options.seed, track_genres=track_genres)
        chosen = tuning.chosen.params
        index = fit_lsh(df, chosen, seed=options.seed)
        started = time.perf_counter()
        lsh = approx_neighbours(index, df, k=options.k).select(TRACK_ID, NEIGHBOUR_ID, DISTANCE, RANK).toPandas()
        lsh_seconds = time.perf_counter() - started
    finally:
        df.unpersist()
    exact, exact_seconds = _exact_for_all(embeddings, tuning, options, method)
    evaluation = _evaluate(embeddings, tuning, lsh, exact, track_genres, options,
                           lsh_seconds=lsh_seconds, exact_seconds=exact_seconds)
    version = options.model_version or default_model_version(embeddings, chosen, k=options.k, seed=options.seed)

    now = datetime.now(timezone.utc)
    written = exact if method == METHOD_EXACT else lsh
    write_similar_tracks(db, similar_track_documents(written, k=options.k, model_version=version, method=method,
                                                     computed_at=now))
    snapshot = data_snapshot(embeddings, source=options.embeddings or Collection.TRACK_FEATURES.value,
                             query_tracks=len(tuning.queries))
    record_model_runs(db, model_run_documents(job_run_id=options.run_id, tuning=tuning, evaluation=evaluation,
                                              seed=options.seed, method=method, grid=options.grid,
                                              snapshot=snapshot, model_version=version), now=now)
    publish_lsh_model(store, index, version=version, metadata={
        "version": version, "params": asdict(chosen), "seed": options.seed, "k": options.k,
        "run_id": options.run_id, "tracks": embeddings.size, "dimension": embeddings.dimension,
        "input_fingerprint": embeddings.fingerprint, "evaluation": asdict(evaluation),
        "target_met": tuning.target_met, "note": tuning.note, "trials": [trial_summary(t) for t in tuning.trials],
    })
    return {"run_id": options.run_id, "model_version": version, "method": method, "tracks": embeddings.size,
            "documents": int(written[TRACK_ID].nunique()), "chosen": asdict(chosen),
            "target_met": tuning.target_met, "note": tuning.note, "evaluation": evaluation}


def summary_line(summary: dict[str, Any]) -> str:
    """The one JSON line: chosen params, recall, LSH vs exact seconds, genre precision vs random."""
    evaluation: RunEvaluation = summary["evaluation"]
    written_precision = (evaluation.exact_genre_precision if summary["method"] == METHOD_EXACT
                         else evaluation.lsh_genre_precision)
    return json.dumps({
        "run_id": summary["run_id"], "model_version": summary["model_version"], "method": summary["method"],
        "tracks": summary["tracks"], "chosen": summary["chosen"], "target_met": summary["target_met"],
        "k": evaluation.k, Metric.RECALL_AT_K: round(evaluation.lsh_recall, 4),
        "lsh_seconds": round(evaluation.lsh_seconds, 3), "exact_seconds": round(evaluation.exact_seconds, 3),
        "exact_seconds_measured": evaluation.exact_seconds_measured,
        Metric.GENRE_PRECISION_AT_K: written_precision,
        f"random_{Metric.GENRE_PRECISION_AT_K}": evaluation.random_genre_precision,
    })


def _check_options(options: JobOptions, store: ModelStore) -> None:
    """Refuse a bad version name before any work (the store accepts only safe folder names)."""
    if options.model_version is None:
        return
    try:
        store.version_dir(options.model_version)
    except ModelStoreError as exc:
        raise SimilarityInputError(REASON_BAD_ARGUMENT, str(exc)) from exc


def _exact_for_all(embeddings: TrackEmbeddings, tuning: Tuning, options: JobOptions,
                   method: str) -> tuple[pd.DataFrame | None, float]:
    """Exact top k of every track when cheap or asked for (timed); else None and the time extrapolated from the sample."""
    if method == METHOD_EXACT or embeddings.size <= options.exact_max_tracks:
        started = time.perf_counter()
        exact = exact_top_k(embeddings.vectors, embeddings.ids, k=options.k)
        return exact, time.perf_counter() - started
    return None, tuning.exact_seconds * embeddings.size / len(tuning.queries)


def _evaluate(embeddings: TrackEmbeddings, tuning: Tuning, lsh: pd.DataFrame, exact: pd.DataFrame | None,
              track_genres: dict[int, int], options: JobOptions, *, lsh_seconds: float,
              exact_seconds: float) -> RunEvaluation:
    k = options.k
    lsh_lists = neighbour_lists(lsh)
    exact_lists = neighbour_lists(exact if exact is not None else tuning.exact)
    sample_lsh = {q: lsh_lists.get(int(q), []) for q in tuning.queries}
    return RunEvaluation(
        k=k,
        lsh_recall=recall_at_k(sample_lsh, neighbour_lists(tuning.exact), k),
        recall_queries=int(len(tuning.queries)),
        lsh_seconds=lsh_seconds,
        lsh_genre_precision=genre_precision(lsh_lists, track_genres, k),
        tracks_with_fewer_than_k=sum(len(v) < k for v in lsh_lists.values()) + embeddings.size - len(lsh_lists),
        exact_seconds=exact_seconds,
        exact_seconds_measured=exact is not None,
        exact_sample_seconds=tuning.exact_seconds,
        exact_genre_precision=genre_precision(exact_lists, track_genres, k),
        random_genre_precision=genre_precision(random_neighbours(embeddings.ids, k=k, seed=options.seed),
                                               track_genres, k),
        tracks_with_genre=sum(t in track_genres for t in embeddings.ids.tolist()),
    )
