"""Broken data stops the pipeline before training, with a report, and production is untouched.

One project with a champion; each case commits a broken dataset with DVC and runs the flow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.adapters.dvc_data import DataError
from driftline.adapters.registry.store import CHALLENGER, CHAMPION
from driftline.core import demo_data
from driftline.errors import ValidationFailed
from tests.integration.conftest import ROWS, make_project, run_artifact


def _base() -> pd.DataFrame:
    return demo_data.generate(ROWS, seed=11)


def _set(frame: pd.DataFrame, column: str, rows: slice, value) -> pd.DataFrame:
    frame = frame.copy()
    if isinstance(value, str) and column in frame and frame[column].dtype.kind == "f":
        frame[column] = frame[column].astype(object)
    frame.loc[frame.index[rows], column] = value
    return frame


def _missing_target(f):
    f = f.copy()
    f["defaulted"] = f["defaulted"].astype("Float64")
    f.loc[f.index[:50], "defaulted"] = pd.NA
    return f


BROKEN = {
    "missing column": (lambda f: f.drop(columns=["credit_score"]), "missing columns: credit_score"),
    "unexpected column": (lambda f: f.assign(customer_id=np.arange(len(f))), "unexpected columns: customer_id"),
    "mistyped column": (lambda f: demo_data.generate(ROWS, 11, "broken_schema"), "must be numeric"),
    "too many missing values": (lambda f: _set(f, "annual_income", slice(0, len(f) // 2), np.nan),
                                "'annual_income' is 51.3% missing (at most 10.0%)"),
    "out of range": (lambda f: _set(f, "age", slice(0, 20), 250), "'age' spans"),
    "unknown category": (lambda f: demo_data.generate(ROWS, 11, "new_category"), "unknown categories"),
    "duplicate rows": (lambda f: pd.concat([f, f.iloc[: len(f) // 5]], ignore_index=True), "duplicate rows"),
    "missing target": (_missing_target, "target 'defaulted' has 50 missing values"),
    "constant target": (lambda f: f.assign(defaulted=0), "is constant"),
    "three classes in a binary target": (lambda f: _set(f, "defaulted", slice(0, 300), 2), "has 3 classes"),
    "too few rows": (lambda f: f.head(300), "300 rows, at least 1000 needed"),
    "infinite values": (lambda f: _set(f, "loan_amount", slice(0, 5), np.inf), "infinite values"),
    "unparsable time": (lambda f: f.assign(application_date=["not a date"] * len(f)), "unparsable values"),
    "constant feature": (lambda f: f.assign(region="north"), "'region' is constant"),
    "covariate shift against the champion reference": (
        lambda f: demo_data.generate(ROWS, 11, "covariate_shift"), "of features drifted from model version 1"),
}


@pytest.fixture(scope="module")
def champion_project(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("broken") / "proj")
    assert project.train()["version"] == "1"
    return project


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_data_is_rejected_before_training(champion_project, kind):
    project = champion_project
    breaker, expected = BROKEN[kind]
    project.write_data(breaker(_base()))
    store = project.store()
    state = project.train_state(reason=f"broken: {kind}")
    failed = state.result(raise_on_failure=False)
    assert isinstance(failed, ValidationFailed), failed
    assert expected in failed.paragraph
    assert "the model in production is untouched" in failed.paragraph
    # This run's report artifact says the same, and nothing moved in the registry.
    assert expected in run_artifact("validation-loan-default", str(state.state_details.flow_run_id))
    assert [v.version for v in store.versions()] == ["1"]
    assert store.version_by_alias(CHAMPION).version == "1"
    assert store.version_by_alias(CHALLENGER) is None
    runs = store.client.search_runs([store.experiment_id], f"tags.`driftline.reason` = 'broken: {kind}'")
    assert runs[0].info.status == "FAILED"
    assert "validation/report.md" in {a.path for a in store.client.list_artifacts(runs[0].info.run_id,
                                                                                   "validation")}


def test_unreadable_file_stops_with_a_clear_error(champion_project):
    project = champion_project
    (project.root / "data" / "loans.parquet").write_bytes(b"this is not parquet")
    from driftline.adapters import dvc_data

    dvc_data.push(project.root, dvc_data.add(project.root, "data"))
    with pytest.raises(DataError, match="cannot be read as parquet"):
        project.train()
    assert project.store().version_by_alias(CHAMPION).version == "1"


def test_uncommitted_data_change_is_refused_not_overwritten(champion_project):
    project = champion_project
    project.write_data(_base())
    path = project.root / "data" / "loans.parquet"
    _base().head(2000).to_parquet(path, index=False)
    before = path.read_bytes()
    with pytest.raises(DataError, match=r"differs from data\.dvc"):
        project.train()
    assert path.read_bytes() == before, "the user's uncommitted data was overwritten"
