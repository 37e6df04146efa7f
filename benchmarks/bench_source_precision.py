"""Similar-track quality on real music: source-precision@10 of the platform's feature transform and of variants.

    .venv/bin/python benchmarks/bench_source_precision.py [--resamples 2000] [--skip-spark] [--json OUT]

Catalogues (features extracted once with ``audio_features.extract.extract_tracks``, 2 workers,
into ``<Settings.cache_dir>/source-precision-features/<name>-<manifest hash>``, reused while
the corpus's manifest is unchanged):

* **recorded**: the 50 real clips of ``python -m fma_sample recorded`` (Debian game
  soundtracks); a clip's label is its source package (30/10/7/3 clips). The planted broken
  files have no features and are not part of it.
* **synthetic** (labelled so: synthesised audio): the synthetic sample's clips, label = genre.
* **mixed**: both in one catalogue (synthetic ids offset by ``MIXED_ID_OFFSET``, the two id
  ranges overlap): the share of a real clip's neighbours that are synthetic clips, and the
  real clips' source precision in it.

Measure: precision@10 of each clip's 10 nearest neighbours, leave-one-out (a clip is never
its own neighbour), relevant = the other clips with the clip's label; mean over clips, with
a percentile bootstrap over clips (``spark_jobs.metrics``: resampled clips, fixed seed).
Differences between two methods are paired (same resampled clips).

Rows:
* random: the analytic expectation (a clip of a label with n members out of N gets
  (n - 1) / (N - 1) on average) and the platform's seeded ``random_neighbours``;
* reference: cosine on the 518 standardised features (no PCA);
* platform today, run with its own code on Spark: ``spark_jobs.features.transform``
  (StandardScaler + PCA(k) + L2) fitted on the catalogue, then exact kNN (``exact_top_k``:
  what ``fma_training``'s ``--method auto`` writes up to 20,000 tracks) and the LSH
  neighbours it writes above that (``tune_lsh`` over the job's default grid, the chosen
  configuration, ``approx_neighbours``);
* variants of the transform, in numpy on the same stored features, at several k: the
  current transform replicated (the check that numpy and Spark agree), per-feature-group
  weights (each of the 11 groups -- mfcc 140 columns, chroma_* 84, contrast 49, tonnetz 42,
  rmse/zcr/centroid/bandwidth/rolloff 7 -- carries the same total variance), PCA whitening,
  robust scaling (median / IQR), a signed log of the heavy-tailed statistics (skew,
  kurtosis) before standardising, ranks (a per-column quantile transform), clipping the
  standardised values at +-3.

Verdict rule (printed per variant): it *wins* when, on the recorded corpus, the paired
interval of its gain over the current transform at the platform's k lies above zero, or it
is better at every k tried; and on the synthetic sample its paired gain interval does not
lie wholly below zero.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(PROJECT_ROOT))

FEATURES_FOLDER = "source-precision-features"
NEIGHBOURS = 10
PCA_DIMENSIONS = (4, 8, 16, 32, 48)
MIXED_ID_OFFSET = 10_000_000
SEED = 42
HEAVY_TAILED_STATISTICS = ("skew", "kurtosis")
CLIP_SD = 3.0


# -- catalogues ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    """Tracks (sorted by id), their 518 stored features, labels, and which are synthetic."""

    name: str
    ids: np.ndarray
    features: np.ndarray  # (tracks, 518), FLAT_FEATURE_NAMES order
    labels: np.ndarray  # source package (real) or "synthetic genre N"
    synthetic: np.ndarray  # bool per track

    @property
    def frame(self) -> pd.DataFrame:
        """``track_id`` + the 518 columns, as the extractor writes them (Spark's input)."""
        from audio_features.fma_schema import FLAT_FEATURE_NAMES

        frame = pd.DataFrame(self.features, columns=list(FLAT_FEATURE_NAMES))
        frame.insert(0, "track_id", self.ids)
        return frame

    @property
    def label_sizes(self) -> dict[str, int]:
        return pd.Series(self.labels).value_counts().to_dict()


def manifest_hash(manifest: dict) -> str:
    """12 hex digits of a corpus's manifest: the key of its cached features."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12]


def cached_features(name: str, manifest: dict, audio_dir: Path, track_ids: list[int], *, cache_root: Path,
                    workers: int) -> pd.DataFrame:
    """``track_id`` + 518 features of ``track_ids``: extracted into a folder keyed by the manifest, or
    read back from it (the extractor skips finished chunks)."""
    from audio_features.extract import CHUNKS_DIRNAME, extract_tracks

    out_dir = cache_root / FEATURES_FOLDER / f"{name}-{manifest_hash(manifest)}"
    extract_tracks(track_ids, audio_dir=audio_dir, out_dir=out_dir, workers=workers, chunk_size=len(track_ids),
                   progress=sys.stderr.isatty())
    frames = [pd.read_parquet(p) for p in sorted((out_dir / CHUNKS_DIRNAME).glob("chunk-*.parquet"))]
    return pd.concat([f for f in frames if not f.empty], ignore_index=True)


def catalogue_of(name: str, frame: pd.DataFrame, label_of: dict[int, str], *, synthetic: bool) -> Catalogue:
    from audio_features.fma_schema import FLAT_FEATURE_NAMES

    frame = frame.sort_values("track_id").reset_index(drop=True)
    ids = frame["track_id"].to_numpy(np.int64)
    features = frame[list(FLAT_FEATURE_NAMES)].to_numpy(np.float64)
    if not np.isfinite(features).all():
        raise ValueError(f"{name}: non-finite stored features")
    return Catalogue(name, ids, features, np.array([label_of[int(t)] for t in ids]),
                     np.full(ids.size, synthetic))


def recorded_catalogue(*, cache_root: Path, workers: int) -> Catalogue:
    """The real clips of the recorded corpus, labelled by source package."""
    from fma_sample.recorded import ensure_recorded_corpus

    corpus = ensure_recorded_corpus(workers=workers, progress=False)
    files = corpus.manifest["files"]
    frame = cached_features("recorded", corpus.manifest, corpus.audio_dir, corpus.clip_ids,
                            cache_root=cache_root, workers=workers)
    return catalogue_of("recorded", frame, {int(t): f["source_package"] for t, f in files.items()},
                        synthetic=False)


def synthetic_catalogue(*, cache_root: Path, workers: int) -> Catalogue:
    """The synthetic sample's clips (made once when absent), labelled by their synthesised genre."""
    from fma_platform.settings import get_settings
    from fma_sample.sample import AUDIO_DIR, generate_sample, read_manifest

    sample_dir = get_settings().sample_dir
    manifest = read_manifest(sample_dir)
    if manifest is None:
        generate_sample(sample_dir, workers=workers)
        manifest = read_manifest(sample_dir)
    files = manifest["files"]
    clips = sorted(int(t) for t, f in files.items() if f["kind"] == "clip")
    frame = cached_features("synthetic", manifest, sample_dir / AUDIO_DIR, clips, cache_root=cache_root,
                            workers=workers)
    return catalogue_of("synthetic", frame, {int(t): f"synthetic genre {f['genre_id']}" for t, f in files.items()},
                        synthetic=True)


def mixed_catalogue(real: Catalogue, synthetic: Catalogue) -> Catalogue:
    """Both catalogues in one; synthetic ids offset (the two corpora reuse ids)."""
    return Catalogue(
        "mixed", np.concatenate([real.ids, synthetic.ids + MIXED_ID_OFFSET]),
        np.vstack([real.features, synthetic.features]), np.concatenate([real.labels, synthetic.labels]),
        np.concatenate([real.synthetic, synthetic.synthetic]),
    )


# -- measures ----------------------------------------------------------------------------------


def same_label_tracks(catalogue: Catalogue, *, queries: np.ndarray) -> dict[int, set[int]]:
    """For each query row: the other tracks with its label (the relevant set of source precision)."""
    return {int(catalogue.ids[q]): set(catalogue.ids[(catalogue.labels == catalogue.labels[q])].tolist())
            - {int(catalogue.ids[q])} for q in queries}


def precision_by_clip(lists: dict[int, list[int]], relevant: dict[int, set[int]]) -> np.ndarray:
    """Precision@10 of each query in ``relevant``'s order (``spark_jobs.metrics``: divides by k)."""
    from fma_platform.model_runs import Metric
    from spark_jobs.metrics import accuracy_by_user

    queries, values = accuracy_by_user(lists, relevant, k=NEIGHBOURS)
    if list(queries) != list(relevant):
        raise ValueError("a query without relevant tracks (a label with one member) would be dropped")
    return values[Metric.PRECISION_AT_K.value]


def synthetic_share_by_clip(lists: dict[int, list[int]], catalogue: Catalogue, queries: np.ndarray) -> np.ndarray:
    """Share of each query's 10 neighbours that are synthetic tracks."""
    synthetic = set(catalogue.ids[catalogue.synthetic].tolist())
    return np.array([sum(n in synthetic for n in lists[int(catalogue.ids[q])][:NEIGHBOURS]) / NEIGHBOURS
                     for q in queries])


def random_expectation(catalogue: Catalogue, queries: np.ndarray) -> float:
    """Mean over queries of (n_label - 1) / (N - 1): the expected precision of random neighbours."""
    sizes = catalogue.label_sizes
    return float(np.mean([(sizes[catalogue.labels[q]] - 1) / (catalogue.ids.size - 1) for q in queries]))


def exact_lists(ids: np.ndarray, vectors: np.ndarray) -> dict[int, list[int]]:
    """Each track's 10 nearest by cosine: L2-normalised as the transform's last stage, then the
    platform's embedding rule and exact kNN."""
    from fma_platform.embeddings import embeddings_from_frame
    from spark_jobs.similarity.neighbours import exact_top_k, neighbour_lists

    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    embeddings = embeddings_from_frame(pd.DataFrame({"track_id": ids, "embedding": list(vectors)}))
    if embeddings.size != ids.size:
        raise ValueError(f"{ids.size - embeddings.size} track(s) without a usable vector: {embeddings.left_out}")
    return neighbour_lists(exact_top_k(embeddings.vectors, embeddings.ids, k=NEIGHBOURS))


# -- the transform's variants, in numpy ----------------------------------------------------------


def _column_parts() -> tuple[np.ndarray, np.ndarray]:
    """Feature group (``mfcc``, ``chroma_cqt``, ...) and statistic of each of the 518 columns."""
    from audio_features.fma_schema import FLAT_FEATURE_NAMES

    parts = [name.rsplit("_", 2) for name in FLAT_FEATURE_NAMES]
    return np.array([p[0] for p in parts]), np.array([p[1] for p in parts])


def standardised(x: np.ndarray) -> np.ndarray:
    """As Spark's StandardScaler(withMean, withStd): sample sd, a constant column becomes 0."""
    sd = x.std(axis=0, ddof=1)
    return np.divide(x - x.mean(axis=0), sd, out=np.zeros_like(x), where=sd > 0)


def principal_scores(z: np.ndarray, ks: list[int], *, whiten: bool = False) -> dict[int, np.ndarray]:
    """Projections on the first ``k`` principal axes of the rows, for each ``k`` (one SVD).

    As Spark's ``PCAModel``: axes of the centred rows, uncentred rows projected (the
    standardised rows are centred already). Whitened: each component scaled to unit variance.
    """
    _, singular, axes = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    spread = singular / np.sqrt(z.shape[0] - 1)
    scores = {}
    for k in ks:
        k = min(k, z.shape[0] - 1, z.shape[1])
        scores[k] = z @ axes[:k].T / (spread[:k] if whiten else 1.0)
    return scores


def group_weighted(z: np.ndarray) -> np.ndarray:
    """Each feature group's columns times 1/sqrt(columns): every group the same total variance."""
    groups, _ = _column_parts()
    weights = np.ones(z.shape[1])
    for group in np.unique(groups):
        members = groups == group
        weights[members] = 1.0 / np.sqrt(members.sum())
    return z * weights


def signed_log_of_tails(x: np.ndarray) -> np.ndarray:
    """sign(x) log(1 + |x|) on the skew and kurtosis columns (heavy-tailed across tracks)."""
    _, statistics = _column_parts()
    tails = np.isin(statistics, HEAVY_TAILED_STATISTICS)
    out = x.copy()
    out[:, tails] = np.sign(x[:, tails]) * np.log1p(np.abs(x[:, tails]))
    return out


def robust_scaled(x: np.ndarray) -> np.ndarray:
    """(x - median) / interquartile range; a column without spread becomes 0."""
    q1, median, q3 = np.percentile(x, [25, 50, 75], axis=0)
    iqr = q3 - q1
    return np.divide(x - median, iqr, out=np.zeros_like(x), where=iqr > 0)


def ranked(x: np.ndarray) -> np.ndarray:
    """Each column replaced by its ranks (ties averaged), then standardised: a quantile transform."""
    from scipy.stats import rankdata

    return standardised(rankdata(x, axis=0))


@dataclass(frozen=True)
class Variant:
    """Stored features -> ``prepare`` -> [PCA(k) for several k] -> L2, compared by cosine."""

    name: str
    prepare: Callable[[np.ndarray], np.ndarray]
    pca: bool = True
    whiten: bool = False

    def vectors(self, features: np.ndarray, ks: list[int]) -> dict[int | None, np.ndarray]:
        """``{k: vectors}`` (``{None: vectors}`` without PCA)."""
        prepared = self.prepare(features)
        return principal_scores(prepared, ks, whiten=self.whiten) if self.pca else {None: prepared}


CURRENT_REPLICA = "current transform (numpy replica)"
REFERENCE = "reference: cosine on 518 standardised"

VARIANTS: tuple[Variant, ...] = (
    Variant(REFERENCE, standardised, pca=False),
    Variant(CURRENT_REPLICA, standardised),
    Variant("group weights", lambda x: group_weighted(standardised(x))),
    Variant("PCA whitening", standardised, whiten=True),
    Variant("robust scaling (median/IQR)", robust_scaled),
    Variant("signed log of skew, kurtosis", lambda x: standardised(signed_log_of_tails(x))),
    Variant("ranks (quantile transform)", ranked),
    Variant("standardised, clipped at +-3", lambda x: np.clip(standardised(x), -CLIP_SD, CLIP_SD)),
)


# -- the platform's own code on Spark --------------------------------------------------------------


@dataclass
class PlatformRun:
    """Neighbour lists of the platform's transform at ``k``: exact and LSH, and what LSH chose."""

    k: int
    exact: dict[int, list[int]]
    lsh: dict[int, list[int]]
    lsh_params: str
    lsh_recall: float
    seconds: dict[str, float] = field(default_factory=dict)


def platform_neighbours(spark, catalogue: Catalogue, *, k: int, grid: str) -> PlatformRun:
    """Fit ``spark_jobs.features`` on the catalogue, embed it, then exact and tuned-LSH neighbours."""
    from fma_platform.embeddings import embeddings_from_frame
    from spark_jobs.features.transform import embed_tracks, fit_transform_model
    from spark_jobs.similarity.neighbours import (
        approx_neighbours, embeddings_frame, exact_top_k, fit_lsh, neighbour_lists,
    )
    from spark_jobs.similarity.quality import recall_at_k
    from spark_jobs.similarity.tuning import tune_lsh

    seconds = {}
    started = time.perf_counter()
    features = spark.createDataFrame(catalogue.frame).cache()
    model = fit_transform_model(features, k)
    embeddings = embeddings_from_frame(embed_tracks(model, features).toPandas())
    features.unpersist()
    seconds["transform"] = time.perf_counter() - started
    if embeddings.size != catalogue.ids.size:
        raise ValueError(f"the transform left out tracks: {embeddings.left_out}")
    exact = neighbour_lists(exact_top_k(embeddings.vectors, embeddings.ids, k=NEIGHBOURS))

    started = time.perf_counter()
    df = embeddings_frame(spark, embeddings).cache()
    try:
        tuning = tune_lsh(embeddings, df, grid=grid, k=NEIGHBOURS, sample_fraction=1.0, seed=SEED)
        lsh = neighbour_lists(approx_neighbours(fit_lsh(df, tuning.chosen.params, seed=SEED), df, k=NEIGHBOURS))
    finally:
        df.unpersist()
    seconds["lsh"] = time.perf_counter() - started
    return PlatformRun(k, exact, lsh, tuning.chosen.params.label, recall_at_k(lsh, exact, NEIGHBOURS), seconds)


def start_spark():
    from fma_platform.settings import get_settings
    from infra.services import spark_env
    from spark_jobs.session import spark_session

    os.environ.update(spark_env(get_settings()))  # what the embedded stack gives its Spark jobs
    return spark_session("bench-source-precision", master="local[2]", shuffle_partitions=2)


# -- one catalogue's table ----------------------------------------------------------------------


@dataclass
class Row:
    """One method's per-query values at each k (a single key ``None`` when k does not apply)."""

    name: str
    values: dict[int | None, np.ndarray]
    note: str = ""


def variant_rows(catalogue: Catalogue, measure) -> list[Row]:
    """Every variant at every k (capped by the rows), measured by ``measure(lists) -> per-query values``."""
    ks = sorted({min(k, catalogue.ids.size - 1) for k in PCA_DIMENSIONS})
    return [Row(variant.name, {k: measure(exact_lists(catalogue.ids, vectors))
                               for k, vectors in variant.vectors(catalogue.features, ks).items()})
            for variant in VARIANTS]


def baseline_rows(catalogue: Catalogue, queries: np.ndarray, measure, analytic: float) -> list[Row]:
    from spark_jobs.similarity.quality import random_neighbours

    simulated = measure(random_neighbours(catalogue.ids, k=NEIGHBOURS, seed=SEED))
    return [Row("random, analytic expectation", {None: np.full(queries.size, analytic)}, note="exact"),
            Row(f"random, seeded simulation (seed {SEED})", {None: simulated})]


def platform_rows(run: PlatformRun, measure) -> list[Row]:
    from spark_jobs.similarity.job import DEFAULT_EXACT_MAX_TRACKS

    return [
        Row(f"platform today: Spark transform k={run.k} + exact kNN", {run.k: measure(run.exact)},
            note=f"what fma_training writes here (--method auto: exact up to {DEFAULT_EXACT_MAX_TRACKS:,} tracks)"),
        Row(f"platform today: Spark transform k={run.k} + tuned LSH", {run.k: measure(run.lsh)},
            note=f"written above {DEFAULT_EXACT_MAX_TRACKS:,} tracks; {run.lsh_params}, "
                 f"recall@10 vs exact {run.lsh_recall:.3f}"),
    ]


def interval(values: np.ndarray, bootstrap) -> tuple[float, float, float]:
    from spark_jobs.metrics import listener_intervals

    found = listener_intervals({"v": values}, bootstrap)["v"]
    return found.estimate, found.low, found.high


def render_table(title: str, rows: list[Row], *, baseline: Row, k_ref: int, bootstrap) -> tuple[str, list[dict]]:
    """Rows x k, the interval at ``k_ref`` and the paired gain over ``baseline`` at ``k_ref``."""
    ks = sorted({k for row in rows for k in row.values if k is not None})
    base = baseline.values[k_ref]
    head = f"{'method':58s} " + " ".join(f"{'k=' + str(k):>6s}" for k in ks) + \
        f" {'no PCA':>6s}   {'95% CI':>15s}   {'minus current [95% CI]':>26s}  note"
    lines, records = [title, head, "-" * len(head)], []
    for row in rows:
        at_ref = row.values.get(k_ref, row.values.get(None))
        _, low, high = interval(at_ref, bootstrap)
        gain = interval(at_ref - base, bootstrap) if at_ref is not base else (0.0, 0.0, 0.0)
        cells = " ".join(f"{row.values[k].mean():6.3f}" if k in row.values else f"{'':6s}" for k in ks)
        plain = f"{row.values[None].mean():6.3f}" if None in row.values else f"{'':6s}"
        lines.append(f"{row.name:58s} {cells} {plain}   [{low:.3f}, {high:.3f}]   "
                     f"{gain[0]:+.3f} [{gain[1]:+.3f}, {gain[2]:+.3f}]  {row.note}")
        records.append({"method": row.name, "note": row.note, "ci_at_k": [low, high], "k_ref": k_ref,
                        "gain_vs_current": list(gain),
                        "mean_by_k": {str(k): float(v.mean()) for k, v in row.values.items()}})
    return "\n".join(lines), records


# -- verdicts ------------------------------------------------------------------------------------


def verdicts(real: dict[str, Row], synthetic: dict[str, Row], *, k_ref: int, bootstrap) -> list[str]:
    """Per variant: does it win on real music without hurting the synthetic sample? (module doc)."""
    current_real, current_synthetic = real[CURRENT_REPLICA], synthetic[CURRENT_REPLICA]
    lines = []
    for variant in VARIANTS:
        if variant.name in (CURRENT_REPLICA, REFERENCE):
            continue
        row, syn = real[variant.name], synthetic[variant.name]
        _, low, _ = interval(row.values[k_ref] - current_real.values[k_ref], bootstrap)
        shared = [k for k in row.values if k in current_real.values]
        better = sum(row.values[k].mean() > current_real.values[k].mean() for k in shared)
        worse = sum(row.values[k].mean() < current_real.values[k].mean() for k in shared)
        _, _, syn_high = interval(syn.values[k_ref] - current_synthetic.values[k_ref], bootstrap)
        wins_real = low > 0 or better == len(shared)
        hurts_synthetic = syn_high < 0
        verdict = "WINS" if wins_real and not hurts_synthetic else "does not win"
        lines.append(f"{variant.name:34s} recorded: better at {better}/{len(shared)} k, worse at {worse}; "
                     f"gain interval low {low:+.3f}; synthetic hurt: {'yes' if hurts_synthetic else 'no'} -> {verdict}")
    for k in sorted(set(current_real.values) - {k_ref}):
        gain = interval(current_real.values[k] - current_real.values[k_ref], bootstrap)
        syn = interval(current_synthetic.values[k] - current_synthetic.values[k_ref], bootstrap)
        verdict = "WINS" if gain[1] > 0 and syn[2] >= 0 else "does not win"
        lines.append(f"{'current transform at k=' + str(k):34s} recorded {gain[0]:+.3f} [{gain[1]:+.3f}, {gain[2]:+.3f}], "
                     f"synthetic {syn[0]:+.3f} [{syn[1]:+.3f}, {syn[2]:+.3f}] vs k={k_ref} -> {verdict}")
    return lines


# -- main ------------------------------------------------------------------------------------------


def measure_catalogue(catalogue: Catalogue, *, queries: np.ndarray, run: PlatformRun | None, measure,
                      analytic_random: float) -> tuple[list[Row], dict[str, Row]]:
    """Random, platform (when run) and variant rows, and the variants by name."""
    rows = baseline_rows(catalogue, queries, measure, analytic_random)
    if run is not None:
        rows += platform_rows(run, measure)
    variants = variant_rows(catalogue, measure)
    return rows + variants, {row.name: row for row in variants}


def main(argv: list[str] | None = None) -> int:
    from spark_jobs.features.transform import DEFAULT_K
    from spark_jobs.metrics import Bootstrap
    from spark_jobs.similarity.tuning import DEFAULT_GRID

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples over clips")
    parser.add_argument("--k", type=int, default=DEFAULT_K, help="the platform's PCA dimensions (its default)")
    parser.add_argument("--grid", default=DEFAULT_GRID, help="LSH grid the similarity job tunes over")
    parser.add_argument("--workers", type=int, default=2, help="extraction processes (first run only)")
    parser.add_argument("--skip-spark", action="store_true", help="numpy rows only (no platform rows)")
    parser.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = parser.parse_args(argv)

    from fma_platform.settings import get_settings

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # a shared 2-core machine: BLAS threads only contend (an SVD took 0.5 s with them)
    began = time.perf_counter()
    bootstrap = Bootstrap(resamples=args.resamples, seed=0)
    cache_root = get_settings().cache_dir
    real = recorded_catalogue(cache_root=cache_root, workers=args.workers)
    synthetic = synthetic_catalogue(cache_root=cache_root, workers=args.workers)
    mixed = mixed_catalogue(real, synthetic)
    features_seconds = time.perf_counter() - began
    print(f"features: recorded {real.ids.size} clips {real.label_sizes}; synthetic {synthetic.ids.size} clips "
          f"({len(synthetic.label_sizes)} genres); {features_seconds:.1f} s (cached after the first run)", flush=True)

    runs: dict[str, PlatformRun] = {}
    if not args.skip_spark:
        spark = start_spark()
        try:
            for catalogue in (real, synthetic, mixed):
                runs[catalogue.name] = platform_neighbours(spark, catalogue, k=args.k, grid=args.grid)
                print(f"spark {catalogue.name}: " + ", ".join(
                    f"{stage} {s:.1f} s" for stage, s in runs[catalogue.name].seconds.items()), flush=True)
        finally:
            spark.stop()

    report, by_name = {}, {}
    every = np.arange(real.ids.size)
    for catalogue, queries, what in (
        (real, every, "source-precision@10, recorded corpus (real music; label = Debian package)"),
        (synthetic, np.arange(synthetic.ids.size), "genre precision@10, SYNTHETIC sample (label = synthesised genre)"),
        (mixed, every, "mixed catalogue (recorded + synthetic): real clips' source-precision@10"),
    ):
        relevant = same_label_tracks(catalogue, queries=queries)
        rows, by_name[catalogue.name] = measure_catalogue(
            catalogue, queries=queries, run=runs.get(catalogue.name),
            measure=lambda lists, relevant=relevant: precision_by_clip(lists, relevant),
            analytic_random=random_expectation(catalogue, queries))
        text, report[catalogue.name] = render_table(
            f"\n## {what}: {catalogue.ids.size} tracks, {queries.size} queries", rows,
            baseline=by_name[catalogue.name][CURRENT_REPLICA], k_ref=args.k, bootstrap=bootstrap)
        print(text, flush=True)

    rows, share_by_name = measure_catalogue(mixed, queries=every, run=runs.get("mixed"),
                                            measure=lambda lists: synthetic_share_by_clip(lists, mixed, every),
                                            analytic_random=synthetic.ids.size / (mixed.ids.size - 1))
    text, report["mixed_synthetic_share"] = render_table(
        f"\n## mixed catalogue: share of a real clip's 10 neighbours that are synthetic (lower: real music "
        f"finds real music; random {synthetic.ids.size / (mixed.ids.size - 1):.3f})", rows,
        baseline=share_by_name[CURRENT_REPLICA], k_ref=args.k, bootstrap=bootstrap)
    print(text)

    print(f"\n## verdicts (rule in the module doc; k={args.k}, {args.resamples} resamples)")
    for line in verdicts(by_name["recorded"], by_name["synthetic"], k_ref=args.k, bootstrap=bootstrap):
        print(line)
    ceiling = np.mean([min(real.label_sizes[label] - 1, NEIGHBOURS) / NEIGHBOURS for label in real.labels])
    print(f"\nrecorded corpus: best possible source-precision@10 {ceiling:.3f} (a label of n clips gives at most "
          f"n - 1 hits); one clip's precision moves in steps of 0.1, the mean over {real.ids.size} in steps of "
          f"{0.1 / real.ids.size:.3f}")
    print(f"total {time.perf_counter() - began:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
