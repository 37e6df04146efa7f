"""The ALS model registry: versioned factor folders, the CHAMPION pointer, promotion rules.

Layout under ``settings.models_dir / "als"``::

    CHAMPION                      # one line: the champion's version
    <version>/user_factors.parquet  (user_id, features)
    <version>/item_factors.parquet  (track_id, features)
    <version>/metadata.json         params, data snapshot, holdout rule, metrics

A version is a hash of what determines the model (data snapshot, parameters, seed,
holdout rule), so a re-run on the same data writes the same version. The pointer is
replaced atomically; ``model_runs`` carries ``champion: true`` on the champion's runs.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pymongo.database import Database
from pyspark.sql import DataFrame, SparkSession

from fma_platform.contracts import ALS_MODELS, Collection
from fma_platform.files import write_text_atomic

CHAMPION_FILE = "CHAMPION"
USER_FACTORS = "user_factors.parquet"
ITEM_FACTORS = "item_factors.parquet"
METADATA_FILE = "metadata.json"


class RegistryError(RuntimeError):
    """The registry is inconsistent (a pointer naming a missing version, unreadable metadata)."""


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


def registry_root(models_dir: Path) -> Path:
    return Path(models_dir) / ALS_MODELS


def model_version(*, snapshot_hash: str, params: dict, seed: int, holdout_rule: dict) -> str:
    """``als-<12 hex>`` from everything that determines the fitted factors."""
    key = json.dumps({"data": snapshot_hash, "params": params, "seed": seed, "holdout": holdout_rule},
                     sort_keys=True)
    return "als-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def save_model(root: Path, version: str, *, users: DataFrame, items: DataFrame, metadata: dict) -> Path:
    """Write the factors and metadata of ``version`` (overwriting the same version's files)."""
    folder = root / version
    folder.mkdir(parents=True, exist_ok=True)
    users.coalesce(1).write.mode("overwrite").parquet(str(folder / USER_FACTORS))
    items.coalesce(1).write.mode("overwrite").parquet(str(folder / ITEM_FACTORS))
    write_text_atomic(folder / METADATA_FILE, json.dumps(metadata, sort_keys=True, indent=2, default=str))
    return folder


def has_factors(root: Path, version: str) -> bool:
    folder = root / version
    return (folder / USER_FACTORS).exists() and (folder / ITEM_FACTORS).exists()


def load_factors(spark: SparkSession, root: Path, version: str) -> tuple[DataFrame, pd.DataFrame]:
    """``(user factors DataFrame, item factors pandas)`` of ``version``; missing files raise."""
    if not has_factors(root, version):
        raise RegistryError(f"ALS version {version} has no factors under {root / version}")
    users = spark.read.parquet(str(root / version / USER_FACTORS))
    items = spark.read.parquet(str(root / version / ITEM_FACTORS)).toPandas()
    return users, items


def read_champion(root: Path) -> str | None:
    """The champion's version, None when no model was ever promoted."""
    pointer = root / CHAMPION_FILE
    if not pointer.exists():
        return None
    version = pointer.read_text(encoding="utf-8").strip()
    if not version:
        raise RegistryError(f"{pointer} is empty")
    return version


def write_champion(root: Path, version: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(root / CHAMPION_FILE, version + "\n")


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
    """``champion: true`` on the final ALS runs of ``version``, false on every other final run."""
    runs = db[Collection.MODEL_RUNS]
    runs.update_many({"model": "als", "kind": "final", "model_version": {"$ne": version}},
                     {"$set": {"champion": False}})
    runs.update_many({"model": "als", "kind": "final", "model_version": version}, {"$set": {"champion": True}})


def recorded_ndcg(db: Database, version: str) -> float | None:
    """The holdout NDCG@k recorded for ``version``'s final run, None when there is none."""
    run = db[Collection.MODEL_RUNS].find_one({"model": "als", "kind": "final", "model_version": version},
                                            sort=[("created_at", -1)])
    if run is None:
        return None
    return run.get("metrics", {}).get("ndcg_at_k")
