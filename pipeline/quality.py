"""The ETL's data-quality gate: Great Expectations suites on features and catalogue.

Three GX 1.x suites, each run by a Checkpoint that also updates the HTML Data Docs under
``context_dir`` (the caller passes e.g. ``settings.state_dir / "gx"``):

- ``track_features`` on the extracted features table (one row per track): the 518 FMA
  columns and the extras are present, ``track_id`` is a unique non-null integer, the row
  count is the expected one, and the extras are plausible (clip length, tempo, rates).
- ``track_feature_values`` on the same table in long form (one row per track and feature
  column, see :func:`feature_values`): every one of the 518 columns is float, finite and
  within its physical range. Long form keeps this to a few expectations instead of
  ~1,500 per-column ones (10 s per run), while failures still name column and track.
- ``tracks_catalogue`` on the catalogue records (:func:`audio_features.metadata.catalogue_records`).

The two feature suites make one gate and one :class:`QualityReport` named
``track_features``.

Physical ranges. Spectral centroid, bandwidth and rolloff are FMA's, computed on
librosa's default 22,050 Hz frequency axis whatever the file's rate
(``audio_features.fma_schema.FMA_IMPLICIT_SR``), so their Nyquist bound is 11,025 Hz for
every row: a per-row ``sample_rate / 2`` bound would be looser for 44.1 kHz files and
wrongly fail clips analysed below 22,050 Hz. Tempo is librosa's estimate, at most its
``max_tempo`` of 320 BPM; 0 means no onsets were found (the extractor's convention).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymongo import ASCENDING
from pymongo.database import Database

from audio_features.fma_schema import (
    EXTRA_FEATURE_COLUMNS,
    FMA_IMPLICIT_SR,
    TOP_LEVEL_GENRES,
    feature_columns,
    FLAT_FEATURE_NAMES,
)
from audio_features.metadata import CATALOGUE_FIELDS
from fma_platform.contracts import Collection
from pipeline.errors import PipelineError

FEATURES_SUITE = "track_features"
FEATURE_VALUES_SUITE = "track_feature_values"
CATALOGUE_SUITE = "tracks_catalogue"
DATASOURCE_NAME = "fma_dataframes"
BATCH_NAME = "whole_dataframe"

FEATURE_COLUMNS: tuple[tuple[str, str, str], ...] = tuple(feature_columns())
FLOAT_DTYPES: tuple[str, ...] = ("float32", "float64")
INTEGER_DTYPES: tuple[str, ...] = ("int32", "int64", "Int32", "Int64")

LOCATION_STATISTICS: tuple[str, ...] = ("mean", "median", "min", "max")
SPECTRAL_AXIS_NYQUIST_HZ = FMA_IMPLICIT_SR / 2  # see the module docstring
MAX_CLIP_SECONDS = 30.5  # FMA clips are 30 s; decoders may add a frame or two
DEFAULT_MIN_CLIP_SECONDS = 1.0  # the extractor's default ``min_seconds``
TEMPO_RANGE_BPM = (0.0, 320.0)
SAMPLE_RATE_RANGE_HZ = (8000, 192000)  # MPEG audio starts at 8 kHz
PARTIAL_UNEXPECTED_COUNT = 20  # offending rows GX lists per failed expectation

_FLOAT_MAX = float(np.finfo(np.float64).max)
_CONTEXTS: dict[Path, Any] = {}
_CONTEXTS_LOCK = threading.Lock()


class QualityGateError(PipelineError):
    """A quality suite failed; the message names every failed expectation."""

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


@dataclass(frozen=True)
class QualityReport:
    """Outcome of one quality gate: plain values only, ready to serialise."""

    suite: str
    success: bool
    evaluated_expectations: int
    successful_expectations: int
    row_count: int
    failures: list[FailedExpectation]
    data_docs_url: str | None
    validated_at: datetime

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
) -> QualityReport:
    """Run the features gate (``track_features`` and ``track_feature_values``).

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

    Returns
    -------
    QualityReport
        ``success`` is False when any expectation failed; see :func:`require_success`.
    """
    expected_ids = None if expected_track_ids is None else {int(t) for t in expected_track_ids}
    expected_rows = _expected_rows(expected_count, expected_ids)
    context = quality_context(context_dir)
    validated_at = validated_at or datetime.now(UTC)
    table = _run_checkpoint(
        context, FEATURES_SUITE, _features_expectations(), features,
        parameters={"expected_row_count": expected_rows,
                    "min_duration_seconds": float(min_duration_seconds)},
        index_columns=_id_columns(features), run_id=run_id, validated_at=validated_at,
    )
    values = _run_checkpoint(
        context, FEATURE_VALUES_SUITE, _feature_values_expectations(), feature_values(features),
        parameters={}, index_columns=["track_id", "column"], run_id=run_id,
        validated_at=validated_at,
    )
    return _report(FEATURES_SUITE, [table, values], row_count=len(features),
                   data_docs_url=_data_docs_url(context), validated_at=validated_at,
                   row_count_note=_id_difference(features, expected_ids))


def validate_catalogue(
    catalogue: pd.DataFrame,
    *,
    context_dir: Path | str,
    run_id: str | None = None,
    validated_at: datetime | None = None,
) -> QualityReport:
    """Run the ``tracks_catalogue`` suite on catalogue records (one row per track)."""
    context = quality_context(context_dir)
    validated_at = validated_at or datetime.now(UTC)
    result = _run_checkpoint(
        context, CATALOGUE_SUITE, _catalogue_expectations(), catalogue, parameters={},
        index_columns=_id_columns(catalogue),
        run_id=run_id, validated_at=validated_at,
    )
    return _report(CATALOGUE_SUITE, [result], row_count=len(catalogue),
                   data_docs_url=_data_docs_url(context), validated_at=validated_at)


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


def feature_values(features: pd.DataFrame) -> pd.DataFrame:
    """The features table in long form: one row per (track, FMA feature column).

    Columns: ``track_id``, ``column`` (flat name), ``feature``, ``statistic``, ``dtype``
    (of the column in ``features``) and ``value`` (float; non-numbers become NaN, and
    their column is reported by the dtype expectation). Absent columns give no rows.
    """
    present = [i for i, name in enumerate(FLAT_FEATURE_NAMES) if name in features.columns]
    names = [FLAT_FEATURE_NAMES[i] for i in present]
    n_tracks, n_columns = len(features), len(names)
    if "track_id" in features.columns:
        track_ids = features["track_id"].to_numpy()
    else:
        track_ids = pd.array([pd.NA] * n_tracks, dtype="Int64")
    numeric = [pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=np.float64,
                                                                       na_value=np.nan)
               for name in names]
    values = np.column_stack(numeric) if numeric else np.empty((n_tracks, 0))
    codes = np.tile(np.arange(n_columns), n_tracks)
    dtypes = [str(features[name].dtype) for name in names]
    return pd.DataFrame({
        "track_id": np.repeat(np.asarray(track_ids), n_columns),
        "column": pd.Categorical.from_codes(codes, categories=names),
        "feature": pd.Categorical([FEATURE_COLUMNS[i][0] for i in present])[codes],
        "statistic": pd.Categorical([FEATURE_COLUMNS[i][1] for i in present])[codes],
        "dtype": pd.Categorical(dtypes)[codes],
        "value": values.reshape(-1),
    })


# Suites ----------------------------------------------------------------------------------


def _features_expectations() -> list:
    import great_expectations.expectations as gxe

    extras_ranges = {
        "duration_seconds": ({"$PARAMETER": "min_duration_seconds"}, MAX_CLIP_SECONDS),
        "tempo_bpm": TEMPO_RANGE_BPM,
        "sample_rate": SAMPLE_RATE_RANGE_HZ,
        "analysis_sample_rate": SAMPLE_RATE_RANGE_HZ,
    }
    expectations = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=["track_id", *FLAT_FEATURE_NAMES, *EXTRA_FEATURE_COLUMNS], exact_match=False,
            description="track_id, the 518 FMA feature columns and the extras are present"),
        gxe.ExpectTableRowCountToEqual(
            value={"$PARAMETER": "expected_row_count"},
            description="one row per catalogue track that was not quarantined"),
        *_identity_expectations(gxe),
        gxe.ExpectColumnValuesToBeInTypeList(
            column="track_id", type_list=list(INTEGER_DTYPES), meta={"failure": "not integer"}),
    ]
    for column, (low, high) in extras_ranges.items():
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column=column, meta={"failure": "missing"}),
            gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high),
        ]
    return expectations


def _feature_values_expectations() -> list:
    import great_expectations.expectations as gxe

    ranged = [
        (("zcr",), LOCATION_STATISTICS, 0.0, 1.0, "zero-crossing rates are fractions"),
        (("chroma_cens", "chroma_cqt", "chroma_stft"), LOCATION_STATISTICS, 0.0, 1.0,
         "chroma is normalised to [0, 1]"),
        (("tonnetz",), LOCATION_STATISTICS, -1.0, 1.0,
         "tonnetz projects an L1-normalised chroma on circles of radius <= 1"),
        (("rmse",), LOCATION_STATISTICS, 0.0, None, "RMS energy is non-negative"),
        (("spectral_bandwidth", "spectral_centroid", "spectral_rolloff"), LOCATION_STATISTICS,
         0.0, SPECTRAL_AXIS_NYQUIST_HZ, "frequencies lie below the 22,050 Hz axis' Nyquist"),
        (tuple(sorted({c[0] for c in FEATURE_COLUMNS})), ("std",), 0.0, None,
         "standard deviations are non-negative"),
    ]
    expectations = [
        gxe.ExpectColumnValuesToBeInSet(
            column="dtype", value_set=list(FLOAT_DTYPES), meta={"failure": "not float"},
            description="every FMA feature column is float typed"),
        gxe.ExpectColumnValuesToNotBeNull(
            column="value", meta={"failure": "NaN"}, description="no NaN in any feature"),
        gxe.ExpectColumnValuesToBeBetween(
            column="value", min_value=-_FLOAT_MAX, max_value=_FLOAT_MAX,
            meta={"failure": "infinite"}, description="no inf in any feature"),
    ]
    for features, statistics, low, high, why in ranged:
        condition = f"feature in {list(features)!r} and statistic in {list(statistics)!r}"
        expectations.append(gxe.ExpectColumnValuesToBeBetween(
            column="value", min_value=low, max_value=high,
            row_condition=condition, condition_parser="pandas",
            description=f"{', '.join(features)} {'/'.join(statistics)}: {why}"))
    return expectations


def _catalogue_expectations() -> list:
    import great_expectations.expectations as gxe

    expectations = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(CATALOGUE_FIELDS), exact_match=False,
            description="the catalogue record fields are present"),
        *_identity_expectations(gxe),
        gxe.ExpectColumnValuesToNotBeNull(column="title", meta={"failure": "missing"}),
        # catalogue_records leaves the top genre None when a track spans several roots;
        # in-set expectations ignore nulls.
        gxe.ExpectColumnValuesToBeInSet(
            column="top_genre_id", value_set=sorted(TOP_LEVEL_GENRES),
            meta={"failure": "not one of FMA's 16 top-level genre ids"}),
        gxe.ExpectColumnValuesToBeInSet(
            column="top_genre_title", value_set=sorted(TOP_LEVEL_GENRES.values()),
            meta={"failure": "not one of FMA's 16 top-level genre titles"}),
        gxe.ExpectColumnValuesToBeBetween(
            column="duration", min_value=0, strict_min=True, meta={"failure": "not > 0"}),
    ]
    for column in ("listens", "favorites", "interest"):
        expectations.append(gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=0, meta={"failure": "negative"}))
    return expectations


def _identity_expectations(gxe) -> list:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="track_id", meta={"failure": "missing"}),
        gxe.ExpectColumnValuesToBeUnique(column="track_id", meta={"failure": "duplicated"}),
    ]


# Running ---------------------------------------------------------------------------------


def _run_checkpoint(context, suite_name: str, expectations: list, frame: pd.DataFrame, *,
                    parameters: dict, index_columns: list[str], run_id: str | None,
                    validated_at: datetime):
    """Register (or update) suite, validation definition and checkpoint; run; results."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite_name,
                                                             expectations=expectations))
    definition = context.validation_definitions.add_or_update(gx.ValidationDefinition(
        name=suite_name, data=_batch_definition(context, suite_name), suite=suite))
    checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
        name=suite_name,
        validation_definitions=[definition],
        actions=[UpdateDataDocsAction(name="update_data_docs")],
        result_format={
            "result_format": "SUMMARY",
            "unexpected_index_column_names": index_columns,
            "partial_unexpected_count": PARTIAL_UNEXPECTED_COUNT,
            "return_unexpected_index_query": False,
        },
    ))
    result = checkpoint.run(
        batch_parameters={"dataframe": frame},
        expectation_parameters=parameters,
        run_id=RunIdentifier(run_name=run_id, run_time=validated_at),
    )
    (validation,) = result.run_results.values()
    return validation


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


def _data_docs_url(context) -> str | None:
    sites = context.get_docs_sites_urls()
    return sites[0]["site_url"] if sites else None


# Reporting -------------------------------------------------------------------------------


def _report(name: str, validations: list, *, row_count: int, data_docs_url: str | None,
            validated_at: datetime, row_count_note: str = "") -> QualityReport:
    failures = [
        _failure(validation.suite_name, result, row_count=row_count,
                 row_count_note=row_count_note)
        for validation in validations
        for result in validation.results
        if not result.success
    ]
    # Table-level failures (missing columns, row count) first: they explain the rest.
    failures.sort(key=lambda failure: 0 if failure.expectation_type.startswith("expect_table") else 1)
    evaluated = sum(int(v.statistics["evaluated_expectations"]) for v in validations)
    successful = sum(int(v.statistics["successful_expectations"]) for v in validations)
    return QualityReport(
        suite=name, success=all(v.success for v in validations),
        evaluated_expectations=evaluated, successful_expectations=successful,
        row_count=row_count, failures=failures, data_docs_url=data_docs_url,
        validated_at=validated_at,
    )


def _failure(suite: str, result, *, row_count: int, row_count_note: str) -> FailedExpectation:
    config = result.expectation_config
    kind, kwargs = config.type, config.kwargs
    details = result.result or {}
    column = kwargs.get("column")
    error = _exception_message(result.exception_info)
    if error is not None:
        summary = f"{column or kind}: could not be evaluated: {error}"
        return FailedExpectation(kind, [column] if column else [], summary, suite)
    if kind == "expect_table_columns_to_match_set":
        missing = details.get("details", {}).get("mismatched", {}).get("missing", [])
        return FailedExpectation(kind, list(missing), f"missing columns: {_listed(missing)}", suite)
    if kind == "expect_table_row_count_to_equal":
        summary = f"row count {details.get('observed_value')}, expected {kwargs.get('value')}"
        return FailedExpectation(kind, [], summary + row_count_note, suite)
    phrase = (config.meta or {}).get("failure") or _range_phrase(kind, kwargs)
    if "unexpected_count" not in details:  # column-level (dtype) expectations
        observed = details.get("observed_value")
        return FailedExpectation(kind, [column], f"{column}: {phrase} (observed {observed})",
                                 suite)
    entries = details.get("partial_unexpected_index_list") or []
    if column == "value" or column == "dtype":  # long form: name the feature columns
        return _long_form_failure(suite, kind, details, entries, phrase, row_count=row_count)
    track_ids = _track_ids(entries)
    summary = (f"{column}: {details['unexpected_count']} of {details.get('element_count')} "
               f"values {phrase}{_tracks_text(track_ids, details['unexpected_count'])}")
    return FailedExpectation(kind, [column], summary, suite,
                             int(details["unexpected_count"]), track_ids)


def _long_form_failure(suite: str, kind: str, details: dict, entries: list[dict], phrase: str,
                       *, row_count: int) -> FailedExpectation:
    """Group the long form's offending rows by feature column."""
    by_column: dict[str, list[int | None]] = {}
    dtypes: dict[str, str] = {}
    for entry in entries:
        column = str(entry.get("column"))
        by_column.setdefault(column, []).append(_plain_id(entry.get("track_id")))
        if "dtype" in entry:
            dtypes[column] = str(entry["dtype"])
    total, shown = int(details["unexpected_count"]), len(entries)
    at_least = "at least " if total > shown else ""
    parts = []
    for column, tracks in by_column.items():
        dtype = f" (dtype {dtypes[column]})" if column in dtypes else ""
        ids = "" if dtype else _tracks_text(tracks, len(tracks))
        parts.append(f"{column}: {at_least}{len(tracks)} of {row_count} values {phrase}{dtype}{ids}")
    summary = "; ".join(parts)
    if at_least:
        summary += f" (first {shown} of {total} offending values listed)"
    track_ids = sorted({t for tracks in by_column.values() for t in tracks if t is not None})
    return FailedExpectation(kind, list(by_column), summary, suite, total, track_ids)


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


def _id_columns(frame: pd.DataFrame) -> list[str]:
    """Columns GX lists with each offending row (none when ``track_id`` is absent)."""
    return ["track_id"] if "track_id" in frame.columns else []


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
