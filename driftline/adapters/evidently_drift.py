"""Evidently adapter: per-column data drift of current data against a reference (Evidently's own
run; `core.drift.scipy_data_drift` computes the same statistics directly), the data validation
that includes it, and the monitor's report."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from driftline.config import Params, names_by_type
from driftline.core import frames, validation
from driftline.core.drift import ColumnDrift


@dataclass(frozen=True)
class DriftResult:
    columns: list[ColumnDrift]
    html: str

    @property
    def share(self) -> float:
        return sum(c.drifted for c in self.columns) / len(self.columns) if self.columns else 0.0

    @property
    def drifted(self) -> dict[str, float]:
        return {c.column: c.score for c in self.columns if c.drifted}


def evidently_data_drift(current: pd.DataFrame, reference: pd.DataFrame, numeric: list[str],
                         categorical: list[str], with_html: bool = True) -> DriftResult:
    """Evidently's DataDriftPreset with its default per-column tests.

    Evidently chooses the test per column from the data size: p-value tests on small
    samples (drift when p < threshold), distances on large ones (drift when distance >= threshold).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    cols = [*numeric, *categorical]
    snapshot = Report([DataDriftPreset(columns=cols)]).run(
        Dataset.from_pandas(current[cols], data_definition=definition),
        Dataset.from_pandas(reference[cols], data_definition=definition),
    )
    results = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config.get("type", "").endswith("ValueDrift"):
            continue
        method, score, threshold = config["method"], float(metric["value"]), float(config["threshold"])
        drifted = score < threshold if "p_value" in method else score >= threshold
        results.append(ColumnDrift(config["column"], method, score, threshold, drifted))
    html = snapshot.get_html_str(as_iframe=False) if with_html else ""
    return DriftResult(results, html)


def monitor_html(current: pd.DataFrame, reference: pd.DataFrame, numeric: list[str],
                 categorical: list[str]) -> str:
    """The monitor's report for people: Evidently's data drift and data summary presets."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    cols = [*numeric, *categorical]
    snapshot = Report([DataDriftPreset(columns=cols), DataSummaryPreset(columns=cols)]).run(
        Dataset.from_pandas(_plain(current[cols], categorical), data_definition=definition),
        Dataset.from_pandas(_plain(reference[cols], categorical), data_definition=definition),
    )
    return snapshot.get_html_str(as_iframe=False)


def _plain(frame: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    # The summary preset fails on pandas' NA-backed string columns ("boolean value of NA is
    # ambiguous"); plain objects with None work.
    frame = frame.copy()
    for col in categorical:
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame


def validate_with_drift(df: pd.DataFrame, params: Params, reference: pd.DataFrame | None,
                        reference_version: str | None,
                        drift_expected: bool = False) -> tuple[validation.ValidationReport, str]:
    """Schema and quality always; distribution against the champion's reference when there is
    one (with Evidently's HTML, else "")."""
    report = validation.validate(df, params)
    check = params.validation.distribution
    if not (report.passed and check.enabled and reference is not None):
        return report, ""
    sample = df.sample(min(len(df), check.sample_size), random_state=0)
    return with_distribution(report, sample, params, reference, reference_version, drift_expected)


def with_distribution(report: validation.ValidationReport, sample: pd.DataFrame, params: Params,
                      reference: pd.DataFrame, reference_version: str | None,
                      drift_expected: bool = False) -> tuple[validation.ValidationReport, str]:
    """The distribution check on a sample of the new data against the champion's reference (in one
    process a seeded `DataFrame.sample`; training.distributed samples by row hash, so that a table
    held in partitions gives the same sample: `partitioned.hash_sample`)."""
    check = params.validation.distribution
    # Compare the features both know: a feature added or dropped since the champion is a
    # config change, not drift.
    shared = [f for f in params.data.features if f.name in reference.columns and f.type != "datetime"]
    data = params.data.model_copy(update={"features": shared})
    current = frames.features(sample, data)
    result = evidently_data_drift(current, frames.features(reference, data), *names_by_type(shared))
    return report.with_checks([validation.distribution_check(
        result.drifted, result.share, check.max_drift_share, reference_version or "?", drift_expected)]), result.html


def monitor_report(rows: pd.DataFrame, reference: pd.DataFrame, p: Params) -> str:
    """Evidently's HTML on seeded samples of the window and the reference (the decision used
    every row of both)."""
    shared = [f for f in p.data.features if f.name in reference.columns and f.type != "datetime"]
    n = p.monitoring.report_rows
    sample = rows.sample(min(len(rows), n), random_state=0)
    reference = reference.sample(min(len(reference), n), random_state=0)
    return monitor_html(sample.reindex(columns=[f.name for f in shared]), reference, *names_by_type(shared))
