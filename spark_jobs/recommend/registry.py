"""ALS versions in the platform's model store, and the rule that promotes one to champion.

Promotion rule: a candidate replaces the champion only when the lower bound of its NDCG@k
gain over the champion, on the same holdout listeners (paired bootstrap,
``spark_jobs.metrics.gain_interval``), is above zero. A gain within noise keeps the
champion. The decision is stored with the gain and its interval (``Promotion``).

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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pymongo.database import Database
from pyspark.sql import DataFrame, SparkSession

from fma_platform.contracts import ALS_ITEM_FACTORS, ALS_USER_FACTORS, Collection, ModelFamily, Pointer
from fma_platform.model_runs import CHAMPION_METRIC, CI_HIGH, CI_LOW, RunFamily, RunKind, interval_key
from fma_platform.model_store import ModelStore, NoModelError
from spark_jobs.metrics import DEFAULT_BOOTSTRAP, Bootstrap, Interval

ALS = "als"  # the model name in model_runs
PROMOTION_METRIC = CHAMPION_METRIC[RunFamily.RECOMMENDATIONS]
GAIN = "ndcg_gain"  # the candidate's paired NDCG@k gain over the champion, in a promotion document
_FINAL_ALS = {"family": str(RunFamily.RECOMMENDATIONS), "model": ALS, "kind": str(RunKind.FINAL)}


@dataclass(frozen=True)
class Promotion:
    """Whether a candidate became champion, and why (stored as ``promotion`` in model_runs).

    ``gain`` is the candidate's NDCG@k gain over the champion on ``n_users`` holdout
    listeners, with its ``confidence`` interval from ``resamples`` paired resamples
    (None when there was no champion to compare with).
    """

    promoted: bool
    reason: str
    previous_champion: str | None
    champion_ndcg: float | None
    candidate_ndcg: float
    gain: Interval | None = None
    n_users: int | None = None
    confidence: float | None = None
    resamples: int | None = None

    def as_document(self) -> dict:
        gain = self.gain
        return {"promoted": self.promoted, "reason": self.reason, "previous_champion": self.previous_champion,
                "champion_ndcg_at_k": self.champion_ndcg, "candidate_ndcg_at_k": self.candidate_ndcg,
                GAIN: None if gain is None else gain.estimate,
                interval_key(GAIN, CI_LOW): None if gain is None else gain.low,
                interval_key(GAIN, CI_HIGH): None if gain is None else gain.high,
                "n_users": self.n_users, "confidence": self.confidence, "resamples": self.resamples}

    @classmethod
    def from_document(cls, document: dict) -> Promotion:
        """The stored decision (documents written before intervals existed have no gain)."""
        estimate = document.get(GAIN)
        gain = None if estimate is None else Interval(estimate, document[interval_key(GAIN, CI_LOW)],
                                                      document[interval_key(GAIN, CI_HIGH)])
        return cls(document["promoted"], document["reason"], document["previous_champion"],
                   document["champion_ndcg_at_k"], document["candidate_ndcg_at_k"], gain=gain,
                   n_users=document.get("n_users"), confidence=document.get("confidence"),
                   resamples=document.get("resamples"))


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
                     champion_ndcg: float | None = None, gain: Interval | None = None, n_users: int | None = None,
                     bootstrap: Bootstrap = DEFAULT_BOOTSTRAP) -> Promotion:
    """Promote when there is no champion, or when ``gain`` (the candidate's paired NDCG@k gain
    over the champion on this holdout) has a lower bound above zero.

    ``gain`` None with a champion means the champion has no factors: it can neither be
    re-scored on these listeners nor serve, so the candidate replaces it.
    """
    if champion_version is None:
        return Promotion(True, "no champion yet: first model promoted", None, None, candidate_ndcg)
    if champion_version == candidate_version:
        return Promotion(False, f"{candidate_version} is already the champion (same data and parameters)",
                         champion_version, champion_ndcg, candidate_ndcg)
    if gain is None:
        return Promotion(True, f"champion {champion_version} has no factors (cannot be re-scored or served): "
                               "replaced", champion_version, None, candidate_ndcg)
    evidence = (f"NDCG@k gain {gain.estimate:+.4f} over champion {champion_version}, "
                f"{bootstrap.confidence:.0%} CI [{gain.low:+.4f}, {gain.high:+.4f}] "
                f"(paired bootstrap over {n_users} holdout listeners)")
    if gain.excludes_zero_from_above():
        verdict, promoted = "lower bound above zero: promoted", True
    elif gain.high < 0:
        verdict, promoted = "the candidate is worse: champion kept", False
    else:
        verdict, promoted = "lower bound not above zero, within noise: champion kept", False
    return Promotion(promoted, f"{evidence}: {verdict}", champion_version, champion_ndcg, candidate_ndcg, gain=gain,
                     n_users=n_users, confidence=bootstrap.confidence, resamples=bootstrap.resamples)


def mark_champion(db: Database, version: str) -> None:
    """``champion: true`` on the final ALS runs of ``version``, false on every other final ALS run."""
    runs = db[Collection.MODEL_RUNS]
    runs.update_many({**_FINAL_ALS, "model_version": {"$ne": version}}, {"$set": {"champion": False}})
    runs.update_many({**_FINAL_ALS, "model_version": version}, {"$set": {"champion": True}})


def recorded_promotion(db: Database, *, job_run_id: str, version: str) -> Promotion | None:
    """The decision a job run already recorded for ``version`` (a rerun keeps it: idempotent documents)."""
    run = db[Collection.MODEL_RUNS].find_one({**_FINAL_ALS, "job_run_id": job_run_id, "model_version": version})
    if run is None or not run.get("promotion"):
        return None
    return Promotion.from_document(run["promotion"])
