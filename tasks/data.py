"""Prefect tasks over the DVC adapter and data validation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NONE

from driftline.adapters import dvc_data, evidently_drift
from driftline.adapters.protocols import ProjectData
from driftline.config import Params
from driftline.core import validation, versions
from tasks.caching import from_cache_key


def _transient(task, task_run, state) -> bool:
    error = state.result(raise_on_failure=False)
    return isinstance(error, dvc_data.DataError) and error.transient


@task(name="pull-data", retries=2, retry_delay_seconds=3, retry_condition_fn=_transient, cache_policy=NONE,
      timeout_seconds=1800)
def pull_data(data: ProjectData, data_path: str) -> dvc_data.Snapshot:
    return data.snapshot(data_path)


@task(name="load-data", cache_policy=NONE)
def load_data(data: ProjectData, path: Path) -> pd.DataFrame:
    return data.read(path)


@task(name="load-champion-data", cache_policy=NONE, timeout_seconds=1800)
def load_version(data: ProjectData, data_path: str, md5: str) -> pd.DataFrame | str:
    """The data version the champion was trained on, or why it cannot be read (validation says
    what that means: validation.previous.required)."""
    try:
        return data.read_version(data_path, md5)
    except dvc_data.DataError as err:
        return str(err)


@task(name="validate-data", cache_key_fn=from_cache_key, persist_result=True)
def validate_data(df: pd.DataFrame, params: Params, reference: pd.DataFrame | None,
                  reference_version: str | None, cache_key: str, drift_expected: bool = False,
                  previous: pd.DataFrame | str | None = None) -> tuple[validation.ValidationReport, str]:
    """Schema, quality and drift; then, given the champion's data version (`previous`), the new
    version against it."""
    report, html = evidently_drift.validate_with_drift(df, params, reference, reference_version, drift_expected)
    if previous is not None and all(c.passed for c in report.checks if c.name.startswith("schema")):
        report = report.with_checks(versions.against(previous, df, params, reference_version or "?", drift_expected))
    return report, html
