"""The ETL DAG's steps as plain functions: each DAG task calls exactly one of them.

Files of a run live under ``STATE/etl/<dataset>/<snapshot>/`` where the snapshot id is
a hash of the catalogue's track ids and the chunk size: a re-run over the same catalogue
finds its chunks already extracted and skips them; a changed catalogue gets a new folder.

Staging: nothing a listener sees changes before the quality gate has passed. The catalogue
step writes the run's catalogue to ``STATE/etl/<dataset>/staging/<run>/catalogue.bson``;
the gate validates that file; only ``load`` (after the gate and the transform) publishes
it to ``tracks`` together with the features. A run that fails or is interrupted anywhere
before ``load`` leaves ``tracks`` and ``track_features`` as they were. ``load`` itself
upserts catalogue then features; a load interrupted half way is completed by its retry
(every write is an idempotent upsert).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import bson
import pandas as pd

from fma_platform.catalogue import TRACK_PROJECTION
from fma_platform.contracts import Collection, ModelFamily
from fma_platform.files import remove_folder, write_atomic
from fma_platform.mongo import platform_db, upsert_by
from fma_platform.settings import Settings
from pipeline.catalogue import read_catalogue, upsert_catalogue
from pipeline.chunking import choose_chunk_size, chunk_fixed_cost_s, chunk_timeout_s
from pipeline.datasets import Dataset, acquire_dataset, resolve_dataset
from pipeline.errors import PipelineError
from pipeline.load import (
    check_tolerance,
    close_interrupted_runs,
    ensure_load_indexes,
    failures_by_reason,
    feature_documents,
    quarantine_documents,
    release_from_quarantine,
    update_etl_run,
)

QUARANTINE_KEYS = ("dataset", "track_id", "stage")


def snapshot_dir(settings: Settings, dataset: str, snapshot_id: str) -> Path:
    return settings.state_dir / "etl" / dataset / snapshot_id


def snapshot_id_of(track_ids: list[int], *, chunk_size: int) -> str:
    digest = hashlib.sha1(json.dumps([sorted(track_ids), chunk_size]).encode()).hexdigest()
    return digest[:12]


def _timed(db, run_id: str, stage: str, started: float) -> float:
    seconds = round(time.monotonic() - started, 3)
    update_etl_run(db, run_id, {f"stage_seconds.{stage}": seconds})
    return seconds


# 1. acquire ------------------------------------------------------------------------------
def acquire(params: dict, *, settings: Settings, run_id: str, started_at: datetime) -> dict:
    """Resolve the dataset from the DAG params and make its files present."""
    began = time.monotonic()
    dataset = resolve_dataset(
        params["dataset"], settings=settings,
        metadata_dir=params.get("metadata_dir") or None, audio_dir=params.get("audio_dir") or None,
    )
    outcome = acquire_dataset(
        dataset, settings=settings,
        sample_tracks=int(params.get("sample_tracks") or settings.sample_tracks),
        sample_seed=int(params.get("sample_seed") or settings.sample_seed),
    )
    db = platform_db(settings)
    ensure_load_indexes(db)
    close_interrupted_runs(db, run_id, at=started_at)
    prune_staging(settings, dataset.name)
    update_etl_run(db, run_id, {
        "run_id": run_id, "dataset": dataset.name, "synthetic": dataset.synthetic,
        "params": params, "started_at": started_at, "status": "running",
    })
    _timed(db, run_id, "acquire", began)
    return {"dataset": dataset.to_params(), "acquired": outcome}


# 2. catalogue ----------------------------------------------------------------------------
# The DAG's task (and so the stage in ``stage_seconds`` and ``counts``) is named "catalogue".
STAGED_CATALOGUE = "catalogue.bson"
STAGING_KEEP_DAYS = 7.0


def catalogue(dataset_params: dict, *, settings: Settings, run_id: str, recorded_at: datetime) -> dict:
    """Read track metadata and stage it for this run; quarantine unreadable metadata rows.

    The catalogue is not published here: ``load`` upserts the staged documents into
    ``tracks`` once the quality gate has passed (module docstring, "Staging").
    """
    began = time.monotonic()
    dataset = Dataset.from_params(dataset_params)
    table = read_catalogue(dataset)
    staged = stage_catalogue(staging_dir(settings, dataset.name, run_id), table.documents)
    db = platform_db(settings)
    bad_rows = [
        {"track_id": p.track_id, "stage": "metadata", "reason": f"malformed_row: line {p.line}: {p.reason}"}
        for p in table.problems
    ]
    upsert_by(db[Collection.QUARANTINE],
              quarantine_documents(bad_rows, dataset=dataset.name, run_id=run_id, recorded_at=recorded_at),
              keys=QUARANTINE_KEYS)
    update_etl_run(db, run_id, {"counts.catalogue": len(table.documents), "counts.metadata_problems": len(bad_rows)})
    _timed(db, run_id, "catalogue", began)
    return {"track_ids": table.track_ids, "staged_catalogue": str(staged), "metadata_problems": len(bad_rows)}


def staging_dir(settings: Settings, dataset: str, run_id: str) -> Path:
    """The folder of one run's staged files (its name: a hash of the run id, which holds ':' and '+')."""
    return settings.state_dir / "etl" / dataset / "staging" / hashlib.sha1(run_id.encode()).hexdigest()[:16]


def stage_catalogue(folder: Path, documents: list[dict]) -> Path:
    """Write ``documents`` as one BSON file (types kept as MongoDB will store them), atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / STAGED_CATALOGUE

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            for document in documents:
                out.write(bson.encode(document))

    write_atomic(path, write)
    return path


def read_staged_catalogue(path: Path | str) -> list[dict]:
    """The documents ``stage_catalogue`` wrote."""
    try:
        with open(path, "rb") as staged:
            return list(bson.decode_file_iter(staged))
    except (OSError, bson.errors.BSONError) as exc:
        raise StagingError(f"cannot read the staged catalogue {path}: {exc}") from exc


def remove_staging(folder: Path) -> None:
    """Delete a run's staging folder (a retried load may find it gone already)."""
    remove_folder(folder, what="staging folder")


def prune_staging(settings: Settings, dataset: str, *, keep_days: float = STAGING_KEEP_DAYS) -> int:
    """Delete staging folders of runs that never published, older than ``keep_days``; how many.

    A failed run's staged catalogue stays that long for inspection, then goes.
    """
    root = settings.state_dir / "etl" / dataset / "staging"
    cutoff = time.time() - keep_days * 86400
    old = [folder for folder in root.glob("*") if folder.is_dir() and folder.stat().st_mtime < cutoff]
    for folder in old:
        remove_staging(folder)
    return len(old)


class StagingError(PipelineError):
    """A run's staged files are missing or unreadable (a later task cannot go on without them)."""


# 3. plan + extract -----------------------------------------------------------------------
def plan_chunks(dataset_params: dict, track_ids: list[int], *, settings: Settings, chunk_size: int,
                workers: int) -> dict:
    """Split the catalogue into chunks; each becomes one mapped extraction task.

    ``chunk_size`` 0 means "chosen from the dataset" (``pipeline.chunking``: fixed cost
    <= 10 % of a task, chunk count within Airflow's ``max_map_length``); each chunk carries
    the wall-clock limit its extraction gets.
    """
    from audio_features.extract import plan_chunks as split

    fixed = chunk_fixed_cost_s(extractor_server=settings.extractor_server)
    size = chunk_size if chunk_size > 0 else choose_chunk_size(len(track_ids), workers=workers, fixed_cost_s=fixed)
    timeout = chunk_timeout_s(size, workers=workers)
    dataset = Dataset.from_params(dataset_params)
    snapshot = snapshot_id_of(track_ids, chunk_size=size)
    out_dir = snapshot_dir(settings, dataset.name, snapshot)
    chunks = [
        {"index": i, "track_ids": ids, "out_dir": str(out_dir), "dataset": dataset_params, "timeout_s": timeout}
        for i, ids in enumerate(split(track_ids, chunk_size=size))
    ]
    return {"snapshot_id": snapshot, "out_dir": str(out_dir), "chunk_size": size, "chunks": chunks}


def extract_chunk(chunk: dict, *, settings: Settings, run_id: str, workers: int) -> dict:
    """Extract one chunk's features through the extractor's CLI, in a fresh process.

    A fresh interpreter keeps the extractor's process pool independent of the caller
    (Airflow's task runner cannot be re-imported by spawned workers). Each chunk has its
    own folder ``<snapshot>/chunk-NNNNN/``; a finished chunk is skipped by the CLI. The
    extractor (and its workers) is killed when the chunk's ``timeout_s`` passes; a retry
    resumes from the chunk's folder.
    """
    dataset = Dataset.from_params(chunk["dataset"])
    out = chunk_dir(Path(chunk["out_dir"]), chunk["index"])
    command = [
        sys.executable, "-m", "audio_features", "extract",
        "--audio-dir", str(dataset.audio_dir), "--tracks", str(dataset.tracks_csv), "--out", str(out),
        "--workers", str(workers), "--chunk-size", str(len(chunk["track_ids"])),
        "--track-ids", *map(str, chunk["track_ids"]),
    ]
    began = time.monotonic()
    env = {**os.environ, "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR") or str(settings.numba_cache_dir)}
    timeout = float(chunk.get("timeout_s") or chunk_timeout_s(len(chunk["track_ids"]), workers=workers))
    returncode, last_line = run_streaming_output(command, env=env, timeout_s=timeout)
    if returncode is None:
        raise ExtractionRunError(f"chunk {chunk['index']}: extraction took longer than {timeout:.0f} s and was "
                                 f"stopped; last output: {last_line}")
    if returncode != 0:
        raise ExtractionRunError(f"chunk {chunk['index']}: extractor exited {returncode}: {last_line}")
    seconds = time.monotonic() - began
    features, failures = read_extraction(out)
    return {
        "index": chunk["index"], "path": str(out), "extracted": len(features), "failed": len(failures),
        "seconds": round(seconds, 2), "tracks_per_second": round(len(chunk["track_ids"]) / seconds, 2),
    }


def run_streaming_output(command: list[str], *, env: dict[str, str], timeout_s: float) -> tuple[int | None, str]:
    """Run ``command``, copying its output (the extractor's progress bar: tracks done /
    total and rate) line by line into this process's log as it comes; return its exit
    status (None: killed, with its whole process group, after ``timeout_s``) and last
    non-empty line."""
    last = "no output"
    fired = threading.Event()
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1, start_new_session=True, preexec_fn=_die_with_parent) as child:
        timer = threading.Timer(timeout_s, _kill_group, args=(child, fired))
        timer.start()
        try:
            for line in child.stdout:
                for part in line.replace("\r", "\n").splitlines():
                    if part.strip():
                        print(part.strip(), flush=True)
                        last = part.strip()
            child.wait()
        except BaseException:  # the task itself timed out or was stopped: take the extractor down too
            _kill_group(child, threading.Event())
            raise
        finally:
            timer.cancel()
    return (None if fired.is_set() else child.returncode), last


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the task process dies (Linux ``PR_SET_PDEATHSIG``)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _kill_group(child: subprocess.Popen, fired: threading.Event) -> None:
    """SIGKILL ``child`` and every process it started (the extractor's worker pool)."""
    fired.set()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


class ExtractionRunError(PipelineError):
    """The extractor could not run on a chunk (not a bad track: those are failure records)."""


def chunk_dir(snapshot: Path, index: int) -> Path:
    return snapshot / f"chunk-{index:05d}"


def read_extraction(out_dir: Path) -> tuple[pd.DataFrame, list[dict]]:
    """Feature rows and extraction failures of every chunk below ``out_dir``."""
    from audio_features.extract import CHUNKS_DIRNAME

    root = Path(out_dir)
    pattern = f"**/{CHUNKS_DIRNAME}/chunk-*"
    frames = [frame for frame in map(pd.read_parquet, sorted(root.glob(f"{pattern}.parquet"))) if not frame.empty]
    features = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()  # every track may have failed
    failures = []
    for path in sorted(root.glob(f"{pattern}.failures.csv")):
        # ``detail`` is a column since the extractor's caps and timeouts; older files kept
        # it in ``reason`` after a ':'.
        for row in pd.read_csv(path, dtype={"detail": str}, keep_default_na=False).itertuples(index=False):
            code, _, legacy = str(row.reason).partition(":")
            detail = (getattr(row, "detail", "") or legacy).strip()
            failures.append({"track_id": int(row.track_id), "stage": "extract", "reason": code.strip(),
                             "detail": detail or None})
    return features, failures


# 4. validate -----------------------------------------------------------------------------
def validate(plan: dict, catalogued: dict, *, settings: Settings, run_id: str, max_failure_fraction: float,
             validated_at: datetime, chunk_results: list[dict] | None = None) -> dict:
    """Tolerance check, then the Great Expectations gates on features and the staged catalogue.

    ``chunk_results`` (what the extraction tasks returned) give the run's extract time:
    the sum of the chunks' seconds (chunks run one after another).
    """
    from pipeline.quality import record_quality, require_success, validate_catalogue, validate_features

    began = time.monotonic()
    db = platform_db(settings)
    if chunk_results:
        update_etl_run(db, run_id, {"stage_seconds.extract": round(sum(float(c["seconds"]) for c in chunk_results), 3),
                                "chunks": len(plan["chunks"]), "chunks_extracted": len(chunk_results)})
    features, failures = read_extraction(Path(plan["out_dir"]))
    failures += unaccounted_tracks(_catalogue_ids(plan), features, failures)
    update_etl_run(db, run_id, {"counts.extracted": len(features), "counts.extract_failed": len(failures),
                            "failures_by_reason": failures_by_reason(failures)})
    check_tolerance(failed=failures, total=len(catalogued["track_ids"]), max_failure_fraction=max_failure_fraction)
    gx_dir = settings.quality_dir
    expected_ids = set(_catalogue_ids(plan)) - {f["track_id"] for f in failures}
    feature_report = validate_features(features, expected_track_ids=expected_ids, context_dir=gx_dir,
                                       run_id=run_id, validated_at=validated_at,
                                       data_docs_base_url=settings.data_docs_url)
    catalogue_frame = pd.DataFrame([_projected(doc) for doc in read_staged_catalogue(catalogued["staged_catalogue"])])
    catalogue_report = validate_catalogue(catalogue_frame, context_dir=gx_dir, run_id=run_id,
                                          validated_at=validated_at, features=features,
                                          data_docs_base_url=settings.data_docs_url)
    summaries = []
    for report in (feature_report, catalogue_report):
        record_quality(db, report, run_id=run_id, validated_at=validated_at)
        summaries.append(report.to_document(run_id))
    update_etl_run(db, run_id, {"quality": {r.suite: r.success for r in (feature_report, catalogue_report)}})
    _timed(db, run_id, "validate", began)
    for report in (feature_report, catalogue_report):
        require_success(report)
    return {"suites": [s["suite"] for s in summaries], "success": True}


def unaccounted_tracks(track_ids: list[int], features: pd.DataFrame, failures: list[dict]) -> list[dict]:
    """Failure records for tracks with neither features nor a failure (a chunk that died)."""
    seen = set(features["track_id"].astype(int)) if not features.empty else set()
    seen |= {f["track_id"] for f in failures}
    return [{"track_id": t, "stage": "extract", "reason": "not_extracted",
             "detail": "its chunk task failed or never ran"} for t in track_ids if t not in seen]


def mark_run_failed(settings: Settings, run_id: str, reason: str) -> None:
    """Record that the run failed and why (shown to analysts next to the run).

    The first reason recorded stays: the step that failed knows more (the quality gate's
    failed expectations) than the run-level callback that follows it.
    """
    db = platform_db(settings)
    update_etl_run(db, run_id, {"status": "failed"})
    db[Collection.ETL_RUNS].update_one({"run_id": run_id, "failure": {"$exists": False}},
                                       {"$set": {"failure": reason}})


def _projected(document: dict) -> dict:
    """``document`` as the player reads it from ``tracks`` (``TRACK_PROJECTION``)."""
    hidden = {name for name, shown in TRACK_PROJECTION.items() if not shown}
    return {key: value for key, value in document.items() if key not in hidden}


def _catalogue_ids(plan: dict) -> list[int]:
    return [t for chunk in plan["chunks"] for t in chunk["track_ids"]]


# 6. load ---------------------------------------------------------------------------------
def load(plan: dict, catalogued: dict, transform: dict, *, settings: Settings, run_id: str,
         loaded_at: datetime) -> dict:
    """Publish the run: the staged catalogue into ``tracks``, features + embeddings into
    ``track_features``; quarantine failures; close the run summary; drop the staging folder."""
    began, began_wall = time.monotonic(), time.time()
    db = platform_db(settings)
    dataset = Dataset.from_params(plan["chunks"][0]["dataset"]) if plan["chunks"] else None
    staged_path = Path(catalogued["staged_catalogue"])
    staged = read_staged_catalogue(staged_path)
    features, failures = read_extraction(Path(plan["out_dir"]))
    failures += unaccounted_tracks(_catalogue_ids(plan), features, failures)
    embeddings = pd.read_parquet(transform["embeddings_path"])
    published = upsert_catalogue(db, staged)
    written = upsert_by(
        db[Collection.TRACK_FEATURES],
        feature_documents(features, embeddings, run_id=run_id, model_version=transform["model_version"],
                          loaded_at=loaded_at),
        keys=("track_id",),
    ).written
    name = dataset.name if dataset else "unknown"
    released = release_from_quarantine(db, dataset=name, track_ids=features["track_id"].astype(int).tolist())
    quarantined = upsert_by(db[Collection.QUARANTINE],
                            quarantine_documents(failures, dataset=name, run_id=run_id, recorded_at=loaded_at),
                            keys=QUARANTINE_KEYS).written
    submitted = (db[Collection.ETL_RUNS].find_one({"run_id": run_id}, {"transform_submitted_at": 1}) or {}).get(
        "transform_submitted_at")
    if submitted is not None:
        update_etl_run(db, run_id, {"stage_seconds.transform": round(max(0.0, began_wall - submitted), 3)})
    seconds = _timed(db, run_id, "load", began)
    update_etl_run(db, run_id, {
        "counts.loaded": written, "counts.quarantined": quarantined, "counts.released": released,
        "model_version": transform["model_version"], "load_docs_per_second": round(written / max(seconds, 1e-6), 1),
        "counts.published": len(staged), "status": "success", "finished_at": loaded_at,
    })
    remove_staging(staged_path.parent)
    return {"loaded": written, "quarantined": quarantined, "model_version": transform["model_version"],
            "catalogue": asdict(published)}


# 5. transform (arguments for the spark-submit task) --------------------------------------
def transform_plan(plan: dict, *, settings: Settings, k: int, run_id: str | None = None) -> dict:
    """Where the Spark transform reads and writes, and the model version it produces.

    With ``run_id``, the run records when the transform was handed to Spark: ``load``
    turns that into the transform's stage time (spark-submit, JVM start and scheduling
    included).
    """
    if run_id is not None:
        update_etl_run(platform_db(settings), run_id, {"transform_submitted_at": time.time()})
    from audio_features.extract import CHUNKS_DIRNAME

    out_dir = Path(plan["out_dir"])
    dataset = plan["chunks"][0]["dataset"]["name"] if plan["chunks"] else "empty"
    version = f"{dataset}-{plan['snapshot_id']}-k{k}"
    embeddings = out_dir / f"embeddings-k{k}.parquet"
    model_dir = settings.models_dir / str(ModelFamily.FEATURE_TRANSFORM)
    return {
        "model_version": version,
        "embeddings_path": str(embeddings),
        "model_dir": str(model_dir),
        "args": [
            "--features", str(out_dir / "chunk-*" / CHUNKS_DIRNAME / "chunk-*.parquet"),
            "--out", str(embeddings),
            "--model-dir", str(model_dir),
            "--version", version,
            "--k", str(k),
        ],
    }
