"""Prefect tasks over the DVC adapter and data validation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NONE

from driftline.adapters import dvc_data, evidently_drift
from driftline.config import Params, names_by_type
from driftline.core import frames, validation
from tasks.caching import from_cache_key


def _transient(task, task_run, state) -> bool:
    error = state.result(raise_on_failure=False)
    return isinstance(error, dvc_data.DataError) and error.transient


@task(name="pull-data", retries=2, retry_delay_seconds=3, retry_condition_fn=_transient, cache_policy=NONE,
      timeout_seconds=1800)
def pull_data(root: Path, data_path: str) -> dvc_data.Snapshot:
    return dvc_data.snapshot(root, data_path)


@task(name="load-data", cache_policy=NONE)
def load_data(path: Path) -> pd.DataFrame:
    return dvc_data.read_table(path)


@task(name="validate-data", cache_key_fn=from_cache_key, persist_result=True)
def validate_data(df: pd.DataFrame, params: Params, reference: pd.DataFrame | None,
                  reference_version: str | None, cache_key: str,
                  drift_expected: bool = False) -> tuple[validation.ValidationReport, str]:
    """Schema and quality always; distribution against the champion's reference when there is one."""
    report = validation.validate(df, params)
    check = params.validation.distribution
    if not (report.passed and check.enabled and reference is not None):
        return report, ""
    # Compare the features both know: a feature added or dropped since the champion is a
    # config change, not drift.
    shared = [f for f in params.data.features if f.name in reference.columns]
    data = params.data.model_copy(update={"features": shared})
    current = frames.features(df.sample(min(len(df), check.sample_size), random_state=0), data)
    result = evidently_drift.evidently_data_drift(current, frames.features(reference, data), *names_by_type(shared))
    return report.with_checks([validation.distribution_check(
        result.drifted, result.share, check.max_drift_share, reference_version or "?", drift_expected)]), result.html
