"""ALS versions in the platform's model store, and the rule that promotes one to champion.

Store: ``fma_platform.model_store.ModelStore.of(models_dir, ModelFamily.ALS)``; a version
folder holds ``contracts.ALS_USER_FACTORS`` (user_id, features) and
``contracts.ALS_ITEM_FACTORS`` (track_id, features), the files the stream reads too, then
``metadata.json`` (params, data snapshot, holdout rule, metrics). The ``CHAMPION`` pointer
names the version that publishes recommendations.

A version is a hash of what determines the model (data snapshot, parameters, seed,
holdout rule), so a re-run on the same data writes the same version. ``model_runs``
carries ``champion: true`` on the champion's final run; promotion lookups read runs by
their fields (family, model, kind, model_version), never by parsing run ids.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pymongo import DESCENDING
from pymongo.database import Database
from pyspark.sql import DataFrame, SparkSession

from fma_platform.contracts import ALS_ITEM_FACTORS, ALS_USER_FACTORS, Collection, ModelFamily, Pointer
from fma_platform.model_runs import CHAMPION_METRIC, RunFamily, RunKind
from fma_platform.model_store import ModelStore, NoModelError

ALS = "als"  # the model name in model_runs
PROMOTION_METRIC = CHAMPION_METRIC[RunFamily.RECOMMENDATIONS]
_FINAL_ALS = {"family": str(RunFamily.RECOMMENDATIONS), "model": ALS, "kind": str(RunKind.FINAL)}


@dataclass(frozen=True)
class Promotion:
    """Whether a candidate became champion, and why (stored as ``promotion`` in model_runs)."""

    promoted: bool
    reason: str
    previous_champion: str | None
    champion_ndcg: float | None
    candidate_ndcg: float

    def as_document(self) -> dict:
        return {"promoted": self.promoted, "reason": self.reason, "previous_champion": self.previous_champion,
                "champion_ndcg_at_k": self.champion_ndcg, "candidate_ndcg_at_k": self.candidate_ndcg}

    @classmethod
    def from_document(cls, document: dict) -> Promotion:
        return cls(document["promoted"], document["reason"], document["previous_champion"],
                   document["champion_ndcg_at_k"], document["candidate_ndcg_at_k"])


def als_store(models_dir: str | Path) -> ModelStore:
    return ModelStore.of(models_dir, ModelFamily.ALS)


def model_version(*, snapshot_hash: str, params: dict, seed: int, holdout_rule: dict) -> str:
    """``als-<12 hex>`` from everything that determines the fitted factors."""
    key = json.dumps({"data": snapshot_hash, "params": params, "seed": seed, "holdout": holdout_rule},
                     sort_keys=True)
    return "als-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def save_model(store: ModelStore, version: str, *, users: DataFrame, items: DataFrame, metadata: dict) -> Path:
    """Write the factors, then the metadata, of ``version`` (overwriting the same version's files)."""
    folder = store.prepare(version)
    users.coalesce(1).write.mode("overwrite").parquet(str(folder / ALS_USER_FACTORS))
    items.coalesce(1).write.mode("overwrite").parquet(str(folder / ALS_ITEM_FACTORS))
    store.write_metadata(version, metadata)
    return folder


def has_factors(store: ModelStore, version: str) -> bool:
    folder = store.version_dir(version)
    return (folder / ALS_USER_FACTORS).exists() and (folder / ALS_ITEM_FACTORS).exists()


def load_factors(spark: SparkSession, store: ModelStore, version: str) -> tuple[DataFrame, pd.DataFrame]:
    """``(user factors DataFrame, item factors pandas)`` of ``version``; ``NoModelError`` without them."""
    if not has_factors(store, version):
        raise NoModelError(f"ALS version {version} has no factors under {store.version_dir(version)}")
    folder = store.version_dir(version)
    users = spark.read.parquet(str(folder / ALS_USER_FACTORS))
    items = spark.read.parquet(str(folder / ALS_ITEM_FACTORS)).toPandas()
    return users, items


def read_champion(store: ModelStore) -> str | None:
    """The champion's version, None when no model was ever promoted."""
    return store.read_pointer(Pointer.CHAMPION)


def crown(store: ModelStore, version: str) -> None:
    """Point ``CHAMPION`` at ``version`` (which must be saved completely)."""
    store.point(Pointer.CHAMPION, version)


def decide_promotion(*, candidate_version: str, candidate_ndcg: float, champion_version: str | None,
                     champion_ndcg: float | None, champion_basis: str = "the current holdout") -> Promotion:
    """Promote only a strictly better NDCG@k than the champion's (or when there is no champion)."""
    if champion_version is None:
        return Promotion(True, "no champion yet: first model promoted", None, None, candidate_ndcg)
    if champion_version == candidate_version:
        return Promotion(False, f"{candidate_version} is already the champion (same data and parameters)",
                         champion_version, champion_ndcg, candidate_ndcg)
    if champion_ndcg is None or math.isnan(champion_ndcg):
        return Promotion(True, f"champion {champion_version} has no factors and no recorded NDCG@k: replaced",
                         champion_version, None, candidate_ndcg)
    if candidate_ndcg > champion_ndcg:
        return Promotion(True, f"NDCG@k {candidate_ndcg:.4f} beats champion {champion_version} "
                               f"({champion_ndcg:.4f} on {champion_basis})",
                         champion_version, champion_ndcg, candidate_ndcg)
    return Promotion(False, f"NDCG@k {candidate_ndcg:.4f} does not beat champion {champion_version} "
                            f"({champion_ndcg:.4f} on {champion_basis})",
                     champion_version, champion_ndcg, candidate_ndcg)


def mark_champion(db: Database, version: str) -> None:
    """``champion: true`` on the final ALS runs of ``version``, false on every other final ALS run."""
    runs = db[Collection.MODEL_RUNS]
    runs.update_many({**_FINAL_ALS, "model_version": {"$ne": version}}, {"$set": {"champion": False}})
    runs.update_many({**_FINAL_ALS, "model_version": version}, {"$set": {"champion": True}})


def recorded_ndcg(db: Database, version: str) -> float | None:
    """The holdout NDCG@k last recorded for ``version``'s final run, None when there is none."""
    run = db[Collection.MODEL_RUNS].find_one({**_FINAL_ALS, "model_version": version},
                                            sort=[("created_at", DESCENDING)])
    if run is None:
        return None
    return (run.get("metrics") or {}).get(PROMOTION_METRIC)


def recorded_promotion(db: Database, *, job_run_id: str, version: str) -> Promotion | None:
    """The decision a job run already recorded for ``version`` (a rerun keeps it: idempotent documents)."""
    run = db[Collection.MODEL_RUNS].find_one({**_FINAL_ALS, "job_run_id": job_run_id, "model_version": version})
    if run is None or not run.get("promotion"):
        return None
    return Promotion.from_document(run["promotion"])
