"""Store a similarity run's results: ``similar_tracks`` and ``model_runs`` documents, and the LSH model version.

``model_runs`` follows ``fma_platform.model_runs`` (family ``similar_tracks``): one
``lsh`` trial per grid configuration (``<run>:lsh:trial:<label>``), one ``lsh`` final
(``<run>:lsh:final``), baselines ``exact_knn`` and ``random_neighbours``; quality
measures under ``Metric`` names, their cut-off in ``params.k``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pymongo.database import Database

from fma_platform.contracts import Collection, Pointer
from fma_platform.embeddings import TRACK_ID, TrackEmbeddings
from fma_platform.model_runs import Metric, RunFamily, RunKind, model_run_document, record_run
from fma_platform.model_store import ModelStore
from fma_platform.mongo import UpsertReport, upsert_by
from spark_jobs.similarity.neighbours import DISTANCE, NEIGHBOUR_ID, RANK, LshIndex, LshParams
from spark_jobs.similarity.quality import RunEvaluation
from spark_jobs.similarity.tuning import Trial, Tuning

MODEL_LSH = "lsh"
MODEL_EXACT = "exact_knn"
MODEL_RANDOM = "random_neighbours"
MODEL_FOLDER = "model"  # the Spark model inside a version folder


# -- similar_tracks ----------------------------------------------------------------------


def similar_track_documents(
    neighbours: pd.DataFrame, *, k: int, model_version: str, method: str, computed_at: datetime
) -> Iterator[dict]:
    """One ``similar_tracks`` document per track, neighbours best first, ``score`` = cosine (1 - d^2 / 2)."""
    ordered = neighbours.sort_values([TRACK_ID, RANK])
    for track_id, group in ordered.groupby(TRACK_ID, sort=True):
        yield {
            TRACK_ID: int(track_id),
            "neighbours": [
                {TRACK_ID: int(n), DISTANCE: float(d), "score": float(1.0 - d * d / 2.0)}
                for n, d in zip(group[NEIGHBOUR_ID], group[DISTANCE])
            ],
            "k": k,
            "model_version": model_version,
            "method": method,
            "computed_at": computed_at,
        }


def write_similar_tracks(db: Database, documents: Iterator[dict]) -> UpsertReport:
    """Upsert ``similar_tracks`` by track id (a rerun leaves the same documents)."""
    return upsert_by(db[Collection.SIMILAR_TRACKS], documents, keys=(TRACK_ID,))


# -- model_runs --------------------------------------------------------------------------


def data_snapshot(embeddings: TrackEmbeddings, *, source: str, query_tracks: int) -> dict[str, Any]:
    """What the run measured on: the embeddings' source, size, fingerprint and left-out tracks."""
    return {
        "source": source, "tracks": embeddings.size, "dimension": embeddings.dimension,
        "fingerprint": embeddings.fingerprint, "embedding_model_versions": list(embeddings.model_versions),
        "query_tracks": query_tracks, "left_out": embeddings.left_out,
    }


def model_run_documents(*, job_run_id: str, tuning: Tuning, evaluation: RunEvaluation, seed: int, method: str,
                        grid: str, snapshot: dict[str, Any], model_version: str) -> list[dict[str, Any]]:
    """The run's ``model_runs`` documents: every trial, the final LSH, the exact and random baselines."""
    k = evaluation.k

    def document(model: str, kind: RunKind, **fields) -> dict[str, Any]:
        return model_run_document(job_run_id=job_run_id, family=RunFamily.SIMILAR_TRACKS, model=model, kind=kind,
                                  data_snapshot=snapshot, **fields)

    chosen = tuning.chosen
    trials = [document(MODEL_LSH, RunKind.TRIAL, label=trial.params.label, params=_lsh_params(trial.params, k, seed),
                       metrics=_trial_metrics(trial), model_version=model_version) for trial in tuning.trials]
    final = document(
        MODEL_LSH, RunKind.FINAL, model_version=model_version, champion=True,
        params={**_lsh_params(chosen.params, k, seed), "method": method, "target_recall": tuning.target_recall,
                "grid": grid},
        metrics={Metric.RECALL_AT_K: evaluation.lsh_recall, Metric.GENRE_PRECISION_AT_K: evaluation.lsh_genre_precision,
                 Metric.SECONDS: round(evaluation.lsh_seconds, 3), "recall_queries": evaluation.recall_queries,
                 "tracks_with_fewer_than_k": evaluation.tracks_with_fewer_than_k,
                 "tracks_with_genre": evaluation.tracks_with_genre, "candidate_pairs": chosen.candidate_pairs,
                 "work_fraction": chosen.work_fraction},
        promotion={"promoted": True, "reason": tuning.note, "target_met": tuning.target_met},
    )
    data_version = snapshot["fingerprint"]
    exact = document(
        MODEL_EXACT, RunKind.BASELINE, model_version=data_version,
        params={"k": k, "seconds_measured": evaluation.exact_seconds_measured},
        metrics={Metric.RECALL_AT_K: 1.0, Metric.GENRE_PRECISION_AT_K: evaluation.exact_genre_precision,
                 Metric.SECONDS: round(evaluation.exact_seconds, 3),
                 "sample_seconds": round(evaluation.exact_sample_seconds, 3)},
    )
    random = document(MODEL_RANDOM, RunKind.BASELINE, model_version=data_version, params={"k": k, "seed": seed},
                      metrics={Metric.GENRE_PRECISION_AT_K: evaluation.random_genre_precision})
    return [*trials, final, exact, random]


def record_model_runs(db: Database, documents: list[dict[str, Any]], *, now: datetime) -> None:
    """Record each document by ``run_id`` (``created_at`` kept on reruns)."""
    for document in documents:
        record_run(db, document, now=now)


def _lsh_params(params: LshParams, k: int, seed: int) -> dict[str, Any]:
    return {**asdict(params), "k": k, "seed": seed}


def _trial_metrics(trial: Trial) -> dict[str, Any]:
    return {Metric.RECALL_AT_K: trial.recall, Metric.GENRE_PRECISION_AT_K: trial.genre_precision,
            Metric.SECONDS: round(trial.seconds, 3), "candidate_pairs": trial.candidate_pairs,
            "work_fraction": trial.work_fraction}


def trial_summary(trial: Trial) -> dict[str, Any]:
    """A trial as plain values (the model metadata lists them)."""
    return {**asdict(trial.params), "recall": trial.recall, "seconds": round(trial.seconds, 3),
            "candidate_pairs": trial.candidate_pairs, "work_fraction": trial.work_fraction}


# -- the model store ---------------------------------------------------------------------


def publish_lsh_model(store: ModelStore, index: LshIndex, *, version: str, metadata: dict[str, Any]) -> Path:
    """Write the Spark model and metadata of ``version``, then point ``CURRENT`` at it; returns the folder."""
    folder = store.prepare(version)
    index.model.write().overwrite().save(str(folder / MODEL_FOLDER))
    store.write_metadata(version, metadata)
    store.point(Pointer.CURRENT, version)
    return folder
