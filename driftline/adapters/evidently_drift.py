"""Evidently adapter: per-column data drift of current data against a reference (Evidently's own
run; `core.drift.scipy_data_drift` computes the same statistics directly), and the HTML reports."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

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
