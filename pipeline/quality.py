"""The ETL's data-quality gate: Great Expectations suites on features and catalogue.

Four GX 1.x suites. Each gate runs its validation definitions, stores their results and
updates the HTML Data Docs under ``context_dir`` once (``data_docs_site_dir``), which the
stack serves over HTTP (``settings.data_docs_url``, a small static server: a ``file://``
link does not open from a web page):

- ``track_features`` on the extracted features table, one row per track: the 518 FMA
  columns and the extras are present, ``track_id`` is a unique non-null integer, the row
  count is the expected one, the extras are typed and plausible, and each file's spectral
  frequencies stay below what its own sample rate can hold (see "Frequencies").
- ``track_feature_values`` on the same values as *feature rows* (:func:`feature_rows`:
  one row per track and feature row such as ``tonnetz_03``, its 7 statistics as
  columns): every statistic is finite, min and max lie within the feature's bounds, and
  the statistics of a row are consistent with each other.
- ``track_feature_columns`` on one row per feature column (:func:`feature_column_profile`):
  the feature columns are exactly FMA's 518 (a 519th ``mfcc_mean_21`` fails), all float,
  and, over runs of at least ``MIN_TRACKS_FOR_DISTRIBUTION`` tracks, their distribution.
- ``tracks_catalogue`` on the catalogue records (``audio_features.metadata.catalogue_records``),
  with the decoded clip lengths when the features are given.

Bounds, from what each feature's formula allows (``audio_features/features.py``, FMA's
``reference.py``; librosa 0.11):

========================  ============  ==================================================
feature                   bound         why
========================  ============  ==================================================
chroma_stft, chroma_cqt   [0, 1]        non-negative, each frame divided by its maximum
chroma_cens               [0, 1]        non-negative, each frame divided by its L2 norm
tonnetz 01-04             [-1, 1]       an L1-normalised chroma projected on circles of
                                        radius 1 (fifths, minor thirds)
tonnetz 05-06             [-0.5, 0.5]   the major-third circle has radius 0.5
zcr                       [0, 1]        a share of sample pairs in a frame
rmse                      >= 0          a root mean square
spectral_contrast         >= 0          dB(peak) - dB(valley) with peak >= valley, and
                                        ``power_to_db`` is monotonic (its floors too)
spectral_centroid,        [0, 11025]    frequencies on FMA's 22,050 Hz axis (see below)
spectral_rolloff
spectral_bandwidth        [0, 5512.5]   the std of a distribution on [0, 11025] is at
                                        most half its range
mfcc                      finite        (log-mel DCT: no useful closed bound)
========================  ============  ==================================================

A bound is checked on each row's ``min`` and ``max``; ``mean`` and ``median`` must lie in
[min, max], so they are within it too. For every feature: ``std >= 0``; ``std <= (max -
min) / 2`` (Popoviciu); ``kurtosis >= skew**2 - 2`` (Pearson's inequality for the biased
moments FMA uses; kurtosis is Fisher's excess kurtosis, so in particular ``>= -2``; a
constant row has skew 0 and kurtosis 0 by the extractor's convention, which satisfies it).

Tolerance. Every bound and inequality is checked with ONE float tolerance,
``FLOAT_TOLERANCE = 1e-6``, relative to the magnitude of what is compared (absolute for
magnitudes below 1): a tonnetz value of exactly 1.0, or 1 + 2e-7 from float32 rounding
(float32's epsilon is 1.2e-7), passes; 1 + 1e-3 fails. Frequencies at 11,025 Hz get
1.1e-2 Hz, far below one STFT bin (10.8 Hz).

Frequencies. FMA's code called ``spectral_centroid``, ``spectral_bandwidth``,
``spectral_rolloff`` (and ``chroma_stft``) without ``sr``, and our extractor keeps that
quirk for parity (``FMA_IMPLICIT_SR``): the STFT is taken at the analysis rate ``A`` (the
file's own rate ``S``, or 22,050 Hz when ``S`` is too low for the 84-bin CQT and the clip
is resampled up), but its 1,025 bins are labelled on a 0-11,025 Hz axis whatever ``A``
is. So 11,025 Hz bounds every file, at 8 kHz or 48 kHz alike; a ``S / 2`` bound in real
Hz would be wrong (a 44.1 kHz file's true 20 kHz content reads as 10 kHz). A file's own
rate does bound its content: nothing above ``S / 2`` exists in the file, which on this
axis is ``S / 2 * 22050 / A``: 11,025 Hz when ``A == S``, 4,000 Hz for an 8 kHz file
analysed at 22,050 Hz. Centroid and rolloff maxima are held to that per-file limit plus
the Hann window's main lobe (2 bins: a tone just under ``S / 2`` spreads there). The
bandwidth keeps the exact 5,512.5 Hz bound only (window side lobes reach past the limit,
so a per-file bandwidth bound would be approximate).

Severities. Expectations are GX ``critical`` (the gate fails) or ``warning`` (recorded in
the report's ``warnings``, shown to analysts, the run goes on):

- critical: schema (columns, dtypes, exactly 518 feature columns), identity (track ids
  present, unique, integer), row count, every bound and inequality above, extras'
  ranges, feature columns constant across a whole run (an extractor fault: FMA's ``min``,
  ``median`` and ``max`` may legitimately be pinned, e.g. chroma max 1.0 on every real
  track, so only mean, std, skew and kurtosis are held to it), catalogue genre ids
  outside FMA's 16 top-level genres and negative counts.
- warning: the share of tracks with tempo 0 (no onsets found) above
  ``MAX_TEMPO_ZERO_SHARE``; a feature's mean over the run outside a plausible range
  (``PLAUSIBLE_MEANS``, wide enough for real recorded music and the synthetic sample; it
  flags unit and scale faults); and FMA's known metadata defects: no title, no genre,
  no usable duration, a clip shorter than ``min(duration, 30 s)`` promises (FMA's
  truncated clips) or longer than the metadata's duration (a wrong duration).

Distribution checks need a sample: below ``MIN_TRACKS_FOR_DISTRIBUTION`` tracks the
across-track figures are left empty and not judged.

Speed (the gate runs on every ETL run): GX's cost is mostly per expectation, so the bounds
are columns of the checked frame (``low``, ``high``, the margins) and a few expectations
cover all 518 features instead of one per group or column; values are checked as feature
rows (74 per track, not 518); each gate renders Data Docs once; suites are registered
once per process. Data Docs' index lists every stored result, so each run adds a little
to the next one's rendering.
"""

from __future__ import annotations

import math
import re
import threading
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from pymongo import ASCENDING
from pymongo.database import Database

from audio_features.fma_schema import (
    EXTRA_FEATURE_COLUMNS,
    FEATURE_SIZES,
    FEATURE_STATISTICS,
    FLAT_FEATURE_NAMES,
    FMA_CLIP_SECONDS,
    FMA_IMPLICIT_SR,
    FMA_N_FFT,
    TOP_LEVEL_GENRES,
)
from audio_features.metadata import CATALOGUE_FIELDS
from fma_platform.contracts import Collection
from pipeline.errors import PipelineError

FEATURES_SUITE = "track_features"
FEATURE_VALUES_SUITE = "track_feature_values"
FEATURE_COLUMNS_SUITE = "track_feature_columns"
CATALOGUE_SUITE = "tracks_catalogue"
DATASOURCE_NAME = "fma_dataframes"
BATCH_NAME = "whole_dataframe"
# Where a GX file context keeps its HTML site, below the context folder.
DATA_DOCS_SITE = ("gx", "uncommitted", "data_docs", "local_site")

CRITICAL = "critical"
WARNING = "warning"

FLOAT_TOLERANCE = 1e-6  # relative to max(1, |bound|); see the module docstring
FLOAT_DTYPES: tuple[str, ...] = ("float32", "float64")
INTEGER_DTYPES: tuple[str, ...] = ("int32", "int64", "Int32", "Int64")

FMA_NYQUIST_HZ = FMA_IMPLICIT_SR / 2  # 11,025 Hz: the top of FMA's frequency axis
FMA_BIN_HZ = FMA_IMPLICIT_SR / FMA_N_FFT  # 10.77 Hz between STFT bins on that axis
MAIN_LOBE_HZ = 2 * FMA_BIN_HZ  # a Hann window's main lobe reaches 2 bins either side
MAX_CLIP_SECONDS = 30.5  # FMA clips are 30 s; decoders may add a frame or two
DEFAULT_MIN_CLIP_SECONDS = 1.0  # the extractor's default ``min_seconds``
TEMPO_RANGE_BPM = (0.0, 320.0)  # librosa's max_tempo; 0: no onsets found
SAMPLE_RATE_RANGE_HZ = (8000, 192000)  # MPEG audio starts at 8 kHz
MAX_TEMPO_ZERO_SHARE = 0.1
MIN_TRACKS_FOR_DISTRIBUTION = 10
CLIP_LENGTH_TOLERANCE_SECONDS = 1.0  # FMA's durations are whole seconds
PARTIAL_UNEXPECTED_COUNT = 20  # offending rows GX lists per failed expectation

LOCATION_STATISTICS: tuple[str, ...] = ("mean", "median", "min", "max")
# Statistics a real feature cannot hold constant over a run; min, median and max may sit
# on a bound (chroma max 1.0) or on the STFT's bin grid (rolloff) for every track.
CONTINUOUS_STATISTICS: tuple[str, ...] = ("mean", "std", "skew", "kurtosis")
FEATURE_ROWS: tuple[tuple[str, str], ...] = tuple(
    (feature, f"{i:02d}") for feature, size in FEATURE_SIZES.items() for i in range(1, size + 1)
)
# A column named like an FMA feature column (``mfcc_mean_21`` too, to count them).
FEATURE_COLUMN_PATTERN = re.compile(
    rf"({'|'.join(sorted(FEATURE_SIZES, key=len, reverse=True))})"
    rf"_({'|'.join(FEATURE_STATISTICS)})_(\d+)"
)


@dataclass(frozen=True)
class FeatureRange:
    """A range for one group of feature rows; ``None``: unbounded on that side."""

    features: tuple[str, ...]
    low: float | None
    high: float | None
    why: str = ""
    numbers: tuple[str, ...] = ()  # only these rows of the features (all when empty)

    def covers(self, feature: str, number: str) -> bool:
        return feature in self.features and (not self.numbers or number in self.numbers)

    @property
    def label(self) -> str:
        numbers = f" {self.numbers[0]}-{self.numbers[-1]}" if len(self.numbers) > 1 else \
            (f" {self.numbers[0]}" if self.numbers else "")
        return ", ".join(self.features) + numbers


# Bounds of each row's min and max (see the module docstring).
FEATURE_BOUNDS: tuple[FeatureRange, ...] = (
    FeatureRange(("chroma_cqt", "chroma_stft"), 0.0, 1.0,
                 "non-negative, each frame divided by its maximum"),
    FeatureRange(("chroma_cens",), 0.0, 1.0, "non-negative, each frame divided by its L2 norm"),
    FeatureRange(("tonnetz",), -1.0, 1.0,
                 "an L1-normalised chroma on the fifths and minor-third circles (radius 1)",
                 numbers=("01", "02", "03", "04")),
    FeatureRange(("tonnetz",), -0.5, 0.5, "the major-third circle has radius 0.5",
                 numbers=("05", "06")),
    FeatureRange(("zcr",), 0.0, 1.0, "a share of sample pairs"),
    FeatureRange(("rmse",), 0.0, None, "a root mean square"),
    FeatureRange(("spectral_contrast",), 0.0, None, "dB(peak) - dB(valley), peak >= valley"),
    FeatureRange(("spectral_centroid", "spectral_rolloff"), 0.0, FMA_NYQUIST_HZ,
                 "frequencies on FMA's 22,050 Hz axis"),
    FeatureRange(("spectral_bandwidth",), 0.0, FMA_NYQUIST_HZ / 2,
                 "the std of frequencies in [0, 11025] is at most half the range"),
)

# Plausible mean over a run of each feature's ``mean`` statistic (warnings): real recorded
# music and the synthetic sample sit well inside; a unit or scale fault does not.
PLAUSIBLE_MEANS: tuple[FeatureRange, ...] = (
    FeatureRange(("chroma_cqt", "chroma_stft"), 0.1, 0.8),
    FeatureRange(("chroma_cens",), 0.05, 0.6),
    FeatureRange(("tonnetz",), -0.3, 0.3),
    FeatureRange(("mfcc",), -500.0, 0.0, numbers=("01",)),
    FeatureRange(("mfcc",), 0.0, 250.0, numbers=("02",)),
    FeatureRange(("mfcc",), -80.0, 80.0, numbers=tuple(f"{i:02d}" for i in range(3, 21))),
    FeatureRange(("rmse",), 0.005, 0.5),
    FeatureRange(("zcr",), 0.005, 0.4),
    FeatureRange(("spectral_centroid",), 300.0, 6000.0),
    FeatureRange(("spectral_bandwidth",), 300.0, 4000.0),
    FeatureRange(("spectral_rolloff",), 500.0, 9500.0),
    FeatureRange(("spectral_contrast",), 5.0, 60.0),
)

_CONTEXTS: dict[Path, Any] = {}
_DEFINITIONS: dict[tuple[str, str], Any] = {}  # (context root, suite) -> its validation definition
_CONTEXTS_LOCK = threading.Lock()


class QualityGateError(PipelineError):
    """A quality suite failed; the message names every failed critical expectation."""

    def __init__(self, report: QualityReport) -> None:
        self.report = report
        failed = "; ".join(f.summary for f in report.failures) or "no expectation details"
        docs = f" (Data Docs: {report.data_docs_url})" if report.data_docs_url else ""
        super().__init__(
            f"quality gate {report.suite!r} failed {len(report.failures)} of "
            f"{report.evaluated_expectations} expectations: {failed}{docs}"
        )


@dataclass(frozen=True)
class FailedExpectation:
    """One failed expectation, summarised for people and for MongoDB."""

    expectation_type: str
    columns: list[str]
    summary: str
    suite: str
    unexpected_count: int | None = None
    track_ids: list[int] = field(default_factory=list)
    severity: str = CRITICAL
    evaluation_error: bool = False  # GX could not evaluate it (e.g. its column is missing)


@dataclass(frozen=True)
class QualityReport:
    """Outcome of one quality gate: plain values only, ready to serialise.

    ``success`` is True when no critical expectation failed; ``warnings`` lists the
    failed warning-level ones. ``data_docs_url`` is the Data Docs site's index over HTTP,
    ``data_docs_pages`` this run's validation pages.
    """

    suite: str
    success: bool
    evaluated_expectations: int
    successful_expectations: int
    row_count: int
    failures: list[FailedExpectation]
    data_docs_url: str | None
    validated_at: datetime
    warnings: list[FailedExpectation] = field(default_factory=list)
    data_docs_pages: list[str] = field(default_factory=list)

    def to_document(self, run_id: str) -> dict[str, Any]:
        """The ``data_quality`` document of this report for the ETL run ``run_id``."""
        document = asdict(self)
        document["run_id"] = run_id
        return document


# Public steps -----------------------------------------------------------------------------


def validate_features(
    features: pd.DataFrame,
    *,
    context_dir: Path | str,
    expected_count: int | None = None,
    expected_track_ids: Iterable[int] | None = None,
    min_duration_seconds: float = DEFAULT_MIN_CLIP_SECONDS,
    run_id: str | None = None,
    validated_at: datetime | None = None,
    data_docs_base_url: str | None = None,
) -> QualityReport:
    """Run the features gate (``track_features``, ``track_feature_values``, ``track_feature_columns``).

    Parameters
    ----------
    features : pd.DataFrame
        One row per track: ``track_id``, the 518 flat FMA feature columns, the extras
        (other columns, such as ``extract_seconds``, are allowed).
    context_dir : Path or str
        Folder of the GX file context and its Data Docs.
    expected_count, expected_track_ids
        How many rows there must be (catalogue size minus quarantined tracks); give one.
        With ids, a wrong count is reported with the missing and unexpected ids.
    min_duration_seconds : float
        Shortest plausible clip (the extractor's ``min_seconds``).
    run_id, validated_at
        Label and time of the GX run in Data Docs; ``validated_at`` defaults to now (a
        record of when it ran, never used to choose data).
    data_docs_base_url : str, optional
        Where the Data Docs site is served (``settings.data_docs_url``); defaults to the
        platform settings' one.

    Returns
    -------
    QualityReport
        ``success`` is False when a critical expectation failed; see :func:`require_success`.
    """
    expected_ids = None if expected_track_ids is None else {int(t) for t in expected_track_ids}
    expected_rows = _expected_rows(expected_count, expected_ids)
    context = quality_context(context_dir)
    run = _run_identifier(run_id, validated_at)
    table = _validate(
        context, FEATURES_SUITE, _features_expectations(), _with_spectral_limit(features),
        parameters={"expected_row_count": expected_rows,
                    "min_duration_seconds": float(min_duration_seconds)},
        index_columns=_present(features, ["track_id"]), run=run,
    )
    values = _validate(
        context, FEATURE_VALUES_SUITE, _feature_values_expectations(), feature_rows(features),
        parameters={},
        index_columns=["track_id", "feature", "number", *LOCATION_STATISTICS, "low", "high", "non_finite"],
        run=run,
    )
    columns = _validate(
        context, FEATURE_COLUMNS_SUITE, _feature_columns_expectations(),
        feature_column_profile(features), parameters={},
        index_columns=["column", "dtype", "mean_across_tracks", "plausible_low", "plausible_high"], run=run,
    )
    validations = [table, values, columns]
    return _report(FEATURES_SUITE, validations, context, row_count=len(features),
                   base_url=data_docs_base_url, validated_at=run.run_time,
                   row_count_note=_id_difference(features, expected_ids))


def validate_catalogue(
    catalogue: pd.DataFrame,
    *,
    context_dir: Path | str,
    run_id: str | None = None,
    validated_at: datetime | None = None,
    features: pd.DataFrame | None = None,
    data_docs_base_url: str | None = None,
) -> QualityReport:
    """Run the ``tracks_catalogue`` suite on catalogue records (one row per track).

    ``features`` (the run's features table), when given, adds the decoded clip length of
    each extracted track, so clips shorter than the metadata promises and wrong metadata
    durations are flagged (warnings).
    """
    context = quality_context(context_dir)
    run = _run_identifier(run_id, validated_at)
    result = _validate(
        context, CATALOGUE_SUITE, _catalogue_expectations(), catalogue_checks_frame(catalogue, features),
        parameters={}, index_columns=_present(catalogue, ["track_id"]), run=run,
    )
    return _report(CATALOGUE_SUITE, [result], context, row_count=len(catalogue),
                   base_url=data_docs_base_url, validated_at=run.run_time)


def record_quality(
    db: Database, report: QualityReport, *, run_id: str, validated_at: datetime | None = None
) -> dict[str, Any]:
    """Upsert the report into ``data_quality``, one document per ``(run_id, suite)``.

    ``validated_at`` (e.g. the DAG run's logical date) replaces the report's own time.
    Returns the stored document.
    """
    document = report.to_document(run_id)
    if validated_at is not None:
        document["validated_at"] = validated_at
    collection = db[Collection.DATA_QUALITY]
    collection.create_index(
        [("run_id", ASCENDING), ("suite", ASCENDING)], unique=True, name="run_suite_unique"
    )
    collection.update_one({"run_id": run_id, "suite": report.suite}, {"$set": document},
                          upsert=True)
    return document


def require_success(report: QualityReport) -> None:
    """Raise :class:`QualityGateError` (naming what failed) unless the gate passed."""
    if not report.success:
        raise QualityGateError(report)


def quality_context(context_dir: Path | str):
    """The GX file context under ``context_dir``, created once per process and folder.

    Progress bars are off: task logs should hold results, not tqdm frames.
    """
    root = Path(context_dir).resolve()
    with _CONTEXTS_LOCK:
        if root not in _CONTEXTS:
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            root.mkdir(parents=True, exist_ok=True)
            context = gx.get_context(mode="file", project_root_dir=root)
            context.variables.progress_bars = ProgressBarsConfig(
                globally=False, metric_calculations=False)
            context.variables.save()
            _CONTEXTS[root] = context
        return _CONTEXTS[root]


def data_docs_site_dir(context_dir: Path | str) -> Path:
    """The folder of the HTML Data Docs site of the GX context under ``context_dir``."""
    return Path(context_dir).resolve().joinpath(*DATA_DOCS_SITE)


# Frames the suites check -------------------------------------------------------------------


def feature_rows(features: pd.DataFrame) -> pd.DataFrame:
    """The features as feature rows: one row per (track, feature row such as ``tonnetz_03``).

    Columns: ``track_id``, ``feature``, ``number``; the 7 statistics as floats (non-numbers
    become NaN; their column's dtype is reported by ``track_feature_columns``);
    ``non_finite`` (``"mean NaN, max inf"``, None when all are finite); the row's bounds
    ``low`` and ``high`` (``FEATURE_BOUNDS``, NaN: unbounded); and relative margins, each
    divided by max(1, the magnitude of what it compares) so one tolerance fits all, NaN
    unless all their inputs are finite (non-finite values are reported on their own):

    - ``min_margin``: min - low; ``max_margin``: high - max;
    - ``order_margin``: min(mean - min, max - mean, median - min, max - median);
    - ``popoviciu_margin``: (max - min) / 2 - std;
    - ``pearson_margin``: kurtosis + 2 - skew ** 2.

    A feature row with any of its 7 columns absent gives no rows (the table suite names
    the missing column).
    """
    rows = [(feature, number) for feature, number in FEATURE_ROWS
            if all(f"{feature}_{stat}_{number}" in features.columns for stat in FEATURE_STATISTICS)]
    n_tracks, n_rows = len(features), len(rows)
    stats = {
        stat: _float_block(features, [f"{feature}_{stat}_{number}" for feature, number in rows]).reshape(-1)
        for stat in FEATURE_STATISTICS
    }
    track_ids = features["track_id"].to_numpy() if "track_id" in features.columns else \
        pd.array([pd.NA] * n_tracks, dtype="Int64")
    codes = np.tile(np.arange(n_rows), n_tracks)
    bounds = [_row_bounds(feature, number) for feature, number in rows]
    low = np.array([b[0] for b in bounds], dtype=np.float64)[codes]
    high = np.array([b[1] for b in bounds], dtype=np.float64)[codes]
    frame = pd.DataFrame({
        "track_id": np.repeat(np.asarray(track_ids), n_rows),
        "feature": pd.Categorical([r[0] for r in rows], categories=list(FEATURE_SIZES))[codes],
        "number": pd.Categorical([r[1] for r in rows])[codes],
        **stats,
        "non_finite": _non_finite_text(stats),
        "low": low,
        "high": high,
    })
    with np.errstate(invalid="ignore"):
        frame["min_margin"] = (stats["min"] - low) / np.maximum(1.0, np.abs(low))
        frame["max_margin"] = (high - stats["max"]) / np.maximum(1.0, np.abs(high))
    frame["order_margin"], frame["popoviciu_margin"], frame["pearson_margin"] = _margins(stats)
    return frame


def feature_column_profile(features: pd.DataFrame) -> pd.DataFrame:
    """One row per column named like an FMA feature column, with what the run shows of it.

    Columns: ``column``, ``feature``, ``statistic``, ``number``, ``dtype``; over runs of at
    least ``MIN_TRACKS_FOR_DISTRIBUTION`` tracks (else NaN, not judged)
    ``spread_across_tracks`` (max - min of the column) and ``mean_across_tracks``; and, for
    ``mean`` columns, the ``plausible_low`` / ``plausible_high`` range (``PLAUSIBLE_MEANS``)
    and ``plausible_mean_margin``, how far inside it the run's mean is (negative: outside).
    """
    names = [str(c) for c in features.columns if FEATURE_COLUMN_PATTERN.fullmatch(str(c))]
    parts = [FEATURE_COLUMN_PATTERN.fullmatch(name).groups() for name in names]
    values = _float_block(features, names)
    judged = len(features) >= MIN_TRACKS_FOR_DISTRIBUTION and bool(names)
    with warnings.catch_warnings():  # all-NaN columns (non-numbers) are reported on their own
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanmax(values, axis=0) - np.nanmin(values, axis=0) if judged else np.full(len(names), np.nan)
        mean = np.nanmean(values, axis=0) if judged else np.full(len(names), np.nan)
    plausible = np.array([_range_of(PLAUSIBLE_MEANS, feature, number) if stat == "mean" else (np.nan, np.nan)
                          for feature, stat, number in parts], dtype=np.float64).reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        margin = np.minimum(mean - plausible[:, 0], plausible[:, 1] - mean)
    return pd.DataFrame({
        "column": pd.Series(names, dtype=object),
        "feature": pd.Series([p[0] for p in parts], dtype=object),
        "statistic": pd.Series([p[1] for p in parts], dtype=object),
        "number": pd.Series([p[2] for p in parts], dtype=object),
        "dtype": pd.Series([str(features[name].dtype) for name in names], dtype=object),
        "spread_across_tracks": spread,
        "mean_across_tracks": mean,
        "plausible_low": plausible[:, 0],
        "plausible_high": plausible[:, 1],
        "plausible_mean_margin": np.where(np.isfinite(margin), margin, np.nan),
    })


def catalogue_checks_frame(catalogue: pd.DataFrame, features: pd.DataFrame | None = None) -> pd.DataFrame:
    """The catalogue records plus the columns its warnings read.

    ``genre_count`` (0 for a missing list), ``duration_seconds`` (the metadata duration
    as a number, NaN when unusable), ``clip_seconds`` (the decoded clip's length from
    ``features``, NaN when not extracted) and ``clip_minus_expected_seconds`` (clip
    length minus ``min(duration, 30 s)``, what FMA's clips should last).
    """
    frame = catalogue.copy()
    genres = frame["genre_ids"] if "genre_ids" in frame.columns else pd.Series([None] * len(frame), index=frame.index)
    frame["genre_count"] = [len(g) if isinstance(g, (list, tuple, np.ndarray)) else 0 for g in genres]
    duration = _numeric(frame, "duration")
    frame["duration_seconds"] = duration.where(duration > 0)
    clip = pd.Series(np.nan, index=frame.index)
    if features is not None and {"track_id", "duration_seconds"} <= set(features.columns) \
            and "track_id" in frame.columns:
        lengths = _numeric(features, "duration_seconds").groupby(features["track_id"].to_numpy()).first()
        clip = frame["track_id"].map(lengths).astype(float)
    frame["clip_seconds"] = clip
    frame["clip_minus_expected_seconds"] = clip - frame["duration_seconds"].clip(upper=FMA_CLIP_SECONDS)
    return frame


# Suites ----------------------------------------------------------------------------------


def _features_expectations() -> list:
    import great_expectations.expectations as gxe

    extras = {
        "duration_seconds": (FLOAT_DTYPES, ({"$PARAMETER": "min_duration_seconds"}, MAX_CLIP_SECONDS)),
        "tempo_bpm": (FLOAT_DTYPES, TEMPO_RANGE_BPM),
        "sample_rate": (INTEGER_DTYPES, SAMPLE_RATE_RANGE_HZ),
        "analysis_sample_rate": (INTEGER_DTYPES, SAMPLE_RATE_RANGE_HZ),
    }
    expectations = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=["track_id", *FLAT_FEATURE_NAMES, *EXTRA_FEATURE_COLUMNS], exact_match=False,
            description="track_id, the 518 FMA feature columns and the extras are present"),
        gxe.ExpectTableRowCountToEqual(
            value={"$PARAMETER": "expected_row_count"},
            description="one row per catalogue track that was not quarantined"),
        *_identity_expectations(gxe),
    ]
    for column, (dtypes, (low, high)) in extras.items():
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column=column, meta={"failure": "missing"}),
            gxe.ExpectColumnValuesToBeInTypeList(
                column=column, type_list=list(dtypes),
                meta={"failure": "integer" if dtypes == INTEGER_DTYPES else "float"}),
            gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high),
        ]
    expectations += [
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="analysis_sample_rate", column_B="sample_rate", or_equal=True,
            ignore_row_if="either_value_is_missing",
            meta={"failure": "below sample_rate (clips are analysed at their own rate or resampled up)",
                  "column": "analysis_sample_rate"},
            description="a clip is analysed at its own rate, or resampled up for the CQT"),
        *(gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="spectral_content_limit_hz", column_B=column, or_equal=True,
            ignore_row_if="either_value_is_missing",
            meta={"failure": "above the file's content limit (sample_rate / 2 on FMA's 22,050 Hz axis)",
                  "column": column},
            description=f"{column} stays below sample_rate / 2 read on FMA's 22,050 Hz axis "
                        "(sample_rate / 2 * 22050 / analysis_sample_rate, plus the window's main lobe)")
          for column in ("spectral_centroid_max_01", "spectral_rolloff_max_01")),
        gxe.ExpectColumnValuesToBeBetween(
            column="tempo_bpm", min_value=0.0, strict_min=True, mostly=1 - MAX_TEMPO_ZERO_SHARE,
            severity=WARNING, meta={"failure": "0 BPM (no onsets found)",
                                    "allowed": f"up to {MAX_TEMPO_ZERO_SHARE:.0%} of tracks"},
            description=f"at most {MAX_TEMPO_ZERO_SHARE:.0%} of tracks have tempo 0 (no onsets)"),
    ]
    return expectations


def _feature_values_expectations() -> list:
    import great_expectations.expectations as gxe

    bounds = "; ".join(f"{b.label} [{_number(b.low)}, {_number(b.high)}] ({b.why})" for b in FEATURE_BOUNDS)
    tolerance = f"(relative tolerance {FLOAT_TOLERANCE:g})"
    return [
        gxe.ExpectColumnValuesToBeNull(
            column="non_finite", meta={"failure": "non-finite", "detail": "non_finite"},
            description="every statistic is finite (non_finite names the NaN and infinite ones)"),
        gxe.ExpectColumnValuesToBeBetween(
            column="min_margin", min_value=-FLOAT_TOLERANCE,
            meta={"failure": "outside its feature's bounds", "detail": "bounds", "statistics": ["min"]},
            description=f"each row's min is within its feature's bounds {tolerance}: {bounds}"),
        gxe.ExpectColumnValuesToBeBetween(
            column="max_margin", min_value=-FLOAT_TOLERANCE,
            meta={"failure": "outside its feature's bounds", "detail": "bounds", "statistics": ["max"]},
            description=f"each row's max is within its feature's bounds {tolerance} (see min_margin)"),
        gxe.ExpectColumnValuesToBeBetween(
            column="std", min_value=-FLOAT_TOLERANCE, meta={"failure": "negative"},
            description="standard deviations are non-negative"),
        gxe.ExpectColumnValuesToBeBetween(
            column="order_margin", min_value=-FLOAT_TOLERANCE,
            meta={"failure": "outside the row's [min, max]", "statistics": ["mean", "median"]},
            description=f"mean and median lie within [min, max] {tolerance}"),
        gxe.ExpectColumnValuesToBeBetween(
            column="popoviciu_margin", min_value=-FLOAT_TOLERANCE,
            meta={"failure": "above (max - min) / 2 (Popoviciu)", "statistics": ["std"]},
            description=f"std <= (max - min) / 2 (Popoviciu's inequality) {tolerance}"),
        gxe.ExpectColumnValuesToBeBetween(
            column="pearson_margin", min_value=-FLOAT_TOLERANCE,
            meta={"failure": "below skew ** 2 - 2 (Pearson)", "statistics": ["kurtosis"]},
            description=f"excess kurtosis >= skew ** 2 - 2 (Pearson's inequality) {tolerance}"),
    ]


def _feature_columns_expectations() -> list:
    import great_expectations.expectations as gxe

    expectations = [
        gxe.ExpectColumnValuesToBeInSet(
            column="column", value_set=list(FLAT_FEATURE_NAMES),
            meta={"failure": "not one of FMA's 518 feature columns"},
            description="the feature columns are exactly FMA's 518 (no extra ones)"),
        gxe.ExpectColumnValuesToBeInSet(
            column="dtype", value_set=list(FLOAT_DTYPES), meta={"failure": "not float", "detail": "dtype"},
            description="every FMA feature column is float typed"),
        gxe.ExpectColumnValuesToBeBetween(
            column="spread_across_tracks", min_value=0.0, strict_min=True,
            row_condition=f"statistic in {list(CONTINUOUS_STATISTICS)!r}", condition_parser="pandas",
            meta={"failure": "constant across every track of the run", "detail": "tracks"},
            description=f"no {'/'.join(CONTINUOUS_STATISTICS)} column is constant across a run "
                        f"of {MIN_TRACKS_FOR_DISTRIBUTION}+ tracks"),
    ]
    plausible = "; ".join(f"{r.label} [{r.low:g}, {r.high:g}]" for r in PLAUSIBLE_MEANS)
    expectations.append(gxe.ExpectColumnValuesToBeBetween(
        column="plausible_mean_margin", min_value=0.0, severity=WARNING,
        meta={"failure": "mean over the run outside the plausible", "detail": "plausible"},
        description=f"each feature's mean, averaged over a run, is in a plausible range: {plausible}"))
    return expectations


def _catalogue_expectations() -> list:
    import great_expectations.expectations as gxe

    expectations = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(CATALOGUE_FIELDS), exact_match=False,
            description="the catalogue record fields are present"),
        *_identity_expectations(gxe),
        # catalogue_records leaves the top genre None when a track spans several roots;
        # in-set expectations ignore nulls.
        gxe.ExpectColumnValuesToBeInSet(
            column="top_genre_id", value_set=sorted(TOP_LEVEL_GENRES),
            meta={"failure": "not one of FMA's 16 top-level genre ids"}),
        gxe.ExpectColumnValuesToBeInSet(
            column="top_genre_title", value_set=sorted(TOP_LEVEL_GENRES.values()),
            meta={"failure": "not one of FMA's 16 top-level genre titles"}),
    ]
    for column in ("listens", "favorites", "interest"):
        expectations.append(gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=0, meta={"failure": "negative"}))
    # FMA's known metadata defects: flagged, never blocking.
    expectations += [
        gxe.ExpectColumnValuesToNotBeNull(column="title", severity=WARNING, meta={"failure": "missing"}),
        gxe.ExpectColumnValuesToBeBetween(
            column="genre_count", min_value=1, severity=WARNING, meta={"failure": "no genre"},
            description="tracks have at least one genre (FMA has tracks with none)"),
        gxe.ExpectColumnValuesToNotBeNull(
            column="duration_seconds", severity=WARNING,
            meta={"failure": "no usable duration (missing or not > 0)", "column": "duration"},
            description="the metadata gives a duration > 0"),
        gxe.ExpectColumnValuesToBeBetween(
            column="clip_minus_expected_seconds", min_value=-CLIP_LENGTH_TOLERANCE_SECONDS,
            severity=WARNING,
            meta={"failure": "clip shorter than min(duration, 30 s) promises (a truncated clip)",
                  "column": "duration"},
            description="the decoded clip lasts min(duration, 30 s), give or take 1 s"),
        gxe.ExpectColumnValuesToBeBetween(
            column="clip_minus_expected_seconds", max_value=CLIP_LENGTH_TOLERANCE_SECONDS,
            severity=WARNING,
            meta={"failure": "clip longer than the metadata's duration (a wrong duration)",
                  "column": "duration"},
            description="the metadata's duration is not shorter than the decoded clip"),
    ]
    return expectations


def _identity_expectations(gxe) -> list:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="track_id", meta={"failure": "missing"}),
        gxe.ExpectColumnValuesToBeUnique(column="track_id", meta={"failure": "duplicated"}),
        gxe.ExpectColumnValuesToBeInTypeList(
            column="track_id", type_list=list(INTEGER_DTYPES), meta={"failure": "integer"}),
    ]


# Derived values --------------------------------------------------------------------------


def _with_spectral_limit(features: pd.DataFrame) -> pd.DataFrame:
    """``features`` plus ``spectral_content_limit_hz``, each file's frequency limit on FMA's axis.

    ``min(11025, S / 2 * 22050 / A + main lobe) * (1 + tolerance)``: see the module
    docstring. NaN when either rate is missing or not a positive number.
    """
    rate = _numeric(features, "sample_rate")
    analysis = _numeric(features, "analysis_sample_rate")
    with np.errstate(divide="ignore", invalid="ignore"):
        on_axis = rate / 2 * FMA_IMPLICIT_SR / analysis
        limit = np.minimum(FMA_NYQUIST_HZ, np.where(analysis > rate, on_axis + MAIN_LOBE_HZ, on_axis))
    usable = (rate > 0) & (analysis > 0)
    return features.assign(spectral_content_limit_hz=np.where(usable, limit * (1 + FLOAT_TOLERANCE), np.nan))


def _margins(s: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three relative consistency margins of :func:`feature_rows` (NaN on non-finite input)."""
    with np.errstate(invalid="ignore", over="ignore"):
        low, high = s["min"], s["max"]
        scale = np.maximum(1.0, np.maximum(np.abs(low), np.abs(high)))
        order = np.minimum.reduce([s["mean"] - low, high - s["mean"], s["median"] - low, high - s["median"]])
        popoviciu = (high - low) / 2 - s["std"]
        skew_squared = s["skew"] ** 2
        pearson = (s["kurtosis"] + 2 - skew_squared) / np.maximum.reduce(
            [np.ones_like(skew_squared), skew_squared, np.abs(s["kurtosis"])])
    finite = {stat: np.isfinite(values) for stat, values in s.items()}
    location = finite["mean"] & finite["median"] & finite["min"] & finite["max"]
    return (np.where(location, order / scale, np.nan),
            np.where(finite["min"] & finite["max"] & finite["std"], popoviciu / scale, np.nan),
            np.where(finite["skew"] & finite["kurtosis"] & np.isfinite(skew_squared), pearson, np.nan))


def _row_bounds(feature: str, number: str) -> tuple[float, float]:
    """``(low, high)`` of one feature row from ``FEATURE_BOUNDS``; NaN where unbounded."""
    return _range_of(FEATURE_BOUNDS, feature, number)


def _range_of(ranges: tuple[FeatureRange, ...], feature: str, number: str) -> tuple[float, float]:
    for covering in ranges:
        if covering.covers(feature, number):
            return (np.nan if covering.low is None else covering.low,
                    np.nan if covering.high is None else covering.high)
    return np.nan, np.nan


def _non_finite_text(stats: dict[str, np.ndarray]) -> np.ndarray:
    """Per feature row, its non-finite statistics (``"mean NaN, max -inf"``); None when none."""
    size = len(next(iter(stats.values()))) if stats else 0
    text = np.full(size, None, dtype=object)
    for stat, values in stats.items():
        bad = np.flatnonzero(~np.isfinite(values))
        for i in bad:
            label = f"{stat} {'NaN' if np.isnan(values[i]) else ('inf' if values[i] > 0 else '-inf')}"
            text[i] = label if text[i] is None else f"{text[i]}, {label}"
    return text


def _float_block(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The columns ``names`` as a float64 (rows, columns) array; non-numbers become NaN."""
    block = np.empty((len(frame), len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        block[:, j] = _numeric(frame, name).to_numpy(dtype=np.float64, na_value=np.nan)
    return block


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as float (NaN for non-numbers, booleans and absent columns)."""
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index)
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        return pd.Series(np.nan, index=frame.index)
    if not pd.api.types.is_numeric_dtype(values):
        values = pd.to_numeric(values, errors="coerce")
    return values.astype(float)


def _tolerance(bound: float) -> float:
    return FLOAT_TOLERANCE * max(1.0, abs(bound))


def _number(value: float | None) -> str:
    return "inf" if value is None else f"{value:g}"


def _present(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """Columns GX lists with each offending row (only those the frame has)."""
    return [c for c in columns if c in frame.columns]


# Running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Validation:
    result: Any  # ExpectationSuiteValidationResult
    key: Any  # ValidationResultIdentifier


def _run_identifier(run_id: str | None, validated_at: datetime | None):
    from great_expectations.core.run_identifier import RunIdentifier

    return RunIdentifier(run_name=run_id, run_time=validated_at or datetime.now(UTC))


def _validate(context, suite_name: str, expectations: list, frame: pd.DataFrame, *,
              parameters: dict, index_columns: list[str], run) -> _Validation:
    """Register (or update) the suite and its validation definition; run; store the result."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    definition = _validation_definition(context, suite_name, expectations)
    result = definition.run(
        batch_parameters={"dataframe": frame},
        expectation_parameters=parameters,
        result_format={
            "result_format": "SUMMARY",
            "unexpected_index_column_names": index_columns,
            "partial_unexpected_count": PARTIAL_UNEXPECTED_COUNT,
            "return_unexpected_index_query": False,
        },
        run_id=run,
    )
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=run, batch_identifier=result.batch_id)
    return _Validation(result, key)


def _validation_definition(context, suite_name: str, expectations: list):
    """The suite's validation definition, stored (added or updated) once per process.

    The suites are built from this module's constants, so within a process a suite never
    changes; registering it again on every run cost ~0.3 s per suite (GX compares every
    expectation pairwise).
    """
    import great_expectations as gx

    key = (str(context.root_directory), suite_name)
    with _CONTEXTS_LOCK:
        if key not in _DEFINITIONS:
            suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite_name, expectations=expectations))
            _DEFINITIONS[key] = context.validation_definitions.add_or_update(gx.ValidationDefinition(
                name=suite_name, data=_batch_definition(context, suite_name), suite=suite))
        return _DEFINITIONS[key]


def _batch_definition(context, asset_name: str):
    """The whole-dataframe batch of a pandas asset, created on first use."""
    try:
        source = context.data_sources.get(DATASOURCE_NAME)
    except KeyError:
        source = context.data_sources.add_pandas(name=DATASOURCE_NAME)
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(name=asset_name)
    try:
        return asset.get_batch_definition(BATCH_NAME)
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(BATCH_NAME)


def _publish(context, validations: list[_Validation], base_url: str | None) -> tuple[str, list[str]]:
    """Render this gate's validation pages and the index once; their URLs over HTTP."""
    context.build_data_docs(resource_identifiers=[v.key for v in validations])
    base = (base_url or _default_data_docs_url()).rstrip("/")
    pages = []
    for validation in validations:
        for site in context.get_docs_sites_urls(resource_identifier=validation.key, only_if_exists=True):
            pages.append(f"{base}/{_site_path(site['site_url'])}")
    return f"{base}/index.html", pages


def _site_path(file_url: str) -> str:
    """A Data Docs page's path below the site folder, still percent-encoded (for a URL)."""
    path = urlsplit(file_url).path
    marker = "/" + "/".join(DATA_DOCS_SITE) + "/"
    return path.split(marker, 1)[1] if marker in path else path.rsplit("/", 1)[-1]


def _default_data_docs_url() -> str:
    from fma_platform.settings import get_settings

    return get_settings().data_docs_url


# Reporting -------------------------------------------------------------------------------


def _report(name: str, validations: list[_Validation], context, *, row_count: int,
            base_url: str | None, validated_at: datetime, row_count_note: str = "") -> QualityReport:
    failed = [
        _failure(validation.result.suite_name, result, row_count=row_count,
                 row_count_note=row_count_note)
        for validation in validations
        for result in validation.result.results
        if not result.success
    ]
    # Table-level failures (missing columns, row count) first: they explain the rest, and
    # expectations that could not run on a missing column add nothing.
    failed.sort(key=lambda failure: 0 if failure.expectation_type.startswith("expect_table") else 1)
    missing = {c for f in failed if f.expectation_type == "expect_table_columns_to_match_set" for c in f.columns}
    failed = [f for f in failed if not (f.evaluation_error and set(f.columns) & missing)]
    failures = [f for f in failed if f.severity == CRITICAL]
    index_url, pages = _publish(context, validations, base_url)
    statistics = [v.result.statistics for v in validations]
    return QualityReport(
        suite=name, success=not failures,
        evaluated_expectations=sum(int(s["evaluated_expectations"]) for s in statistics),
        successful_expectations=sum(int(s["successful_expectations"]) for s in statistics),
        row_count=row_count, failures=failures, data_docs_url=index_url,
        validated_at=validated_at, warnings=[f for f in failed if f.severity != CRITICAL],
        data_docs_pages=pages,
    )


def _failure(suite: str, result, *, row_count: int, row_count_note: str) -> FailedExpectation:
    config = result.expectation_config
    kind, kwargs, meta = config.type, config.kwargs, config.meta or {}
    severity = _severity(config)
    details = result.result or {}
    column = meta.get("column") or kwargs.get("column") or kwargs.get("column_B")
    error = _exception_message(result.exception_info)
    if error is not None:
        summary = f"{column or kind}: could not be evaluated: {error}"
        columns = [c for c in (column, kwargs.get("column_A"), kwargs.get("column_B")) if c]
        return FailedExpectation(kind, list(dict.fromkeys(columns)), summary, suite, severity=severity,
                                 evaluation_error=True)
    if kind == "expect_table_columns_to_match_set":
        missing = details.get("details", {}).get("mismatched", {}).get("missing", [])
        return FailedExpectation(kind, list(missing), f"missing columns: {_listed(missing)}", suite,
                                 severity=severity)
    if kind == "expect_table_row_count_to_equal":
        summary = f"row count {details.get('observed_value')}, expected {kwargs.get('value')}"
        return FailedExpectation(kind, [], summary + row_count_note, suite, severity=severity)
    phrase = meta.get("failure") or _range_phrase(kind, kwargs)
    if kind == "expect_column_values_to_be_in_type_list":
        observed = details.get("observed_value")
        return FailedExpectation(kind, [column], f"{column}: not {phrase} (dtype {observed})", suite,
                                 severity=severity)
    entries = details.get("partial_unexpected_index_list") or []
    if suite == FEATURE_VALUES_SUITE:
        return _feature_rows_failure(suite, kind, details, entries, phrase, meta, column,
                                     row_count=row_count, severity=severity)
    if suite == FEATURE_COLUMNS_SUITE:
        return _columns_failure(suite, kind, details, entries, phrase, meta.get("detail"),
                                row_count=row_count, severity=severity)
    track_ids = _track_ids(entries)
    allowed = f" (allowed: {meta['allowed']})" if meta.get("allowed") else ""
    summary = (f"{column}: {details.get('unexpected_count')} of {details.get('element_count')} "
               f"values {phrase}{allowed}{_tracks_text(track_ids, details.get('unexpected_count') or 0)}")
    return FailedExpectation(kind, [column], summary, suite, _count(details), track_ids, severity)


def _feature_rows_failure(suite: str, kind: str, details: dict, entries: list[dict], phrase: str,
                          meta: dict, column: str, *, row_count: int, severity: str) -> FailedExpectation:
    """Name the flat feature columns (``tonnetz_max_03``) of the offending feature rows."""
    by_column: dict[tuple[str, str], list[int | None]] = {}
    for entry in entries:
        for stat, text in _culprits(entry, meta.get("statistics") or [column], phrase, meta.get("detail")):
            name = f"{entry.get('feature')}_{stat}_{entry.get('number')}"
            by_column.setdefault((name, text), []).append(_plain_id(entry.get("track_id")))
    total, shown = _count(details) or 0, len(entries)
    at_least = "at least " if total > shown else ""
    parts = [f"{name}: {at_least}{len(tracks)} of {row_count} values {text}{_tracks_text(tracks, len(tracks))}"
             for (name, text), tracks in by_column.items()]
    summary = "; ".join(parts)
    if at_least:
        summary += f" (first {shown} of {total} offending values listed)"
    track_ids = sorted({t for tracks in by_column.values() for t in tracks if t is not None})
    columns = list(dict.fromkeys(name for name, _ in by_column))
    return FailedExpectation(kind, columns, summary, suite, total, track_ids, severity)


def _culprits(entry: dict, statistics: list[str], phrase: str, detail: str | None) -> list[tuple[str, str]]:
    """(statistic, what is wrong with it) for one offending feature row."""
    if detail == "non_finite":  # "mean NaN, max inf"
        found = [part.split(" ", 1) for part in str(entry.get("non_finite") or "").split(", ") if " " in part]
        return [(stat, "NaN" if value == "NaN" else "infinite") for stat, value in found]
    if detail == "bounds":
        return [(stat, f"outside [{_number(_finite_or_none(entry.get('low')))}, "
                       f"{_number(_finite_or_none(entry.get('high')))}]") for stat in statistics]
    if statistics == ["mean", "median"]:
        low, high = entry.get("min"), entry.get("max")
        off = [stat for stat in statistics
               if isinstance(entry.get(stat), (int, float)) and not (low <= entry[stat] <= high)]
        return [(stat, phrase) for stat in off or statistics]
    return [(stat, phrase) for stat in statistics]


def _finite_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _columns_failure(suite: str, kind: str, details: dict, entries: list[dict], phrase: str,
                     detail: str | None, *, row_count: int, severity: str) -> FailedExpectation:
    """Name the feature columns of a column-profile failure, with what the run shows of each."""
    names = [str(entry.get("column")) for entry in entries]
    parts = []
    for entry, name in zip(entries, names):
        if detail == "dtype":
            parts.append(f"{name}: {phrase} (dtype {entry.get('dtype')})")
        elif detail == "plausible":
            parts.append(f"{name}: {phrase} [{_number(_finite_or_none(entry.get('plausible_low')))}, "
                         f"{_number(_finite_or_none(entry.get('plausible_high')))}] "
                         f"({_mean_text(entry.get('mean_across_tracks'))} over {row_count} tracks)")
        elif detail == "tracks":
            parts.append(f"{name}: {phrase} ({row_count} tracks)")
        else:
            parts.append(f"{name}: {phrase}")
    total = _count(details) or len(entries)
    summary = "; ".join(parts) + (f" (first {len(entries)} of {total} listed)" if total > len(entries) else "")
    return FailedExpectation(kind, names, summary, suite, total, [], severity)


def _mean_text(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


def _severity(config) -> str:
    severity = getattr(config, "severity", None)
    return str(getattr(severity, "value", severity) or CRITICAL)


def _count(details: dict) -> int | None:
    count = details.get("unexpected_count")
    return None if count is None else int(count)


def _exception_message(info: dict | None) -> str | None:
    """GX reports evaluation errors either flat or keyed by metric; first message wins."""
    if not info:
        return None
    candidates = [info] if "raised_exception" in info else list(info.values())
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("raised_exception"):
            return str(candidate.get("exception_message") or "unknown error")
    return None


def _track_ids(entries: list[dict]) -> list[int]:
    ids = (_plain_id(entry.get("track_id")) for entry in entries if isinstance(entry, dict))
    return [track_id for track_id in ids if track_id is not None]


def _plain_id(value: object) -> int | None:
    """A track id as a plain int; None for a missing or non-integral value."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


def _tracks_text(track_ids: list[int | None], total: int) -> str:
    known = [str(t) for t in track_ids if t is not None]
    if not known:
        return ""
    more = f", and {total - len(known)} more" if total > len(known) else ""
    label = "track_id" if len(known) == 1 and not more else "track_ids"
    return f" ({label} {', '.join(known)}{more})"


def _id_difference(features: pd.DataFrame, expected_ids: set[int] | None) -> str:
    """`` (missing track_ids 4, 7; unexpected track_ids 9)`` against the expected ids."""
    if expected_ids is None or "track_id" not in features.columns:
        return ""
    present = {_plain_id(t) for t in features["track_id"].dropna()} - {None}
    missing = sorted(expected_ids - present)
    unexpected = sorted(present - expected_ids)
    parts = [f"missing track_ids {_listed(missing)}" if missing else "",
             f"unexpected track_ids {_listed(unexpected)}" if unexpected else ""]
    text = "; ".join(p for p in parts if p)
    return f" ({text})" if text else ""


def _listed(items: list, limit: int = 20) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _expected_rows(expected_count: int | None, expected_ids: set[int] | None) -> int:
    if expected_count is None and expected_ids is None:
        raise ValueError("give expected_count or expected_track_ids: the row count is gated")
    if expected_count is not None and expected_ids is not None and expected_count != len(expected_ids):
        raise ValueError(f"expected_count {expected_count} disagrees with "
                         f"{len(expected_ids)} expected_track_ids")
    return int(expected_count if expected_count is not None else len(expected_ids))


def _range_phrase(kind: str, kwargs: dict) -> str:
    """``outside [0, 1]`` for a between-expectation (its parameters already resolved)."""
    if kind != "expect_column_values_to_be_between":
        return kind
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    left = "(" if kwargs.get("strict_min") else "["
    right = ")" if kwargs.get("strict_max") else "]"
    low_text = "-inf" if low is None else f"{low:g}"
    high_text = "inf" if high is None else f"{high:g}"
    return f"outside {left}{low_text}, {high_text}{right}"

