"""Unit-test fixtures: the real params.yaml, variants of it, and small generated tables."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from threadpoolctl import threadpool_limits

from driftline.config import Params, apply_overrides, load_params, parse_params
from driftline.core import demo_data

REPO = Path(__file__).resolve().parents[2]
PARAMS_FILE = REPO / "params.yaml"
ROWS = 3000


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    # Unit tables are tiny; OpenMP threads only add contention. On a busy 2-core machine one
    # HistGradientBoosting fit went from 0.5 s to 20 s with two threads.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def raw_params() -> dict[str, Any]:
    """params.yaml as a plain dict, fresh for each test (safe to edit)."""
    return yaml.safe_load(PARAMS_FILE.read_text())


@pytest.fixture(scope="session")
def params() -> Params:
    return load_params(PARAMS_FILE)


@pytest.fixture
def make_params(raw_params) -> Callable[..., Params]:
    """`make_params("training.seed=7", ...)`: params.yaml with `--set` style overrides."""

    def make(*overrides: str, raw: dict[str, Any] | None = None) -> Params:
        base = copy.deepcopy(raw if raw is not None else raw_params)
        return parse_params(apply_overrides(base, list(overrides)))

    return make


@pytest.fixture
def loans() -> pd.DataFrame:
    """A fresh baseline demo table (3,000 rows) that the test may modify."""
    return demo_data.generate(ROWS)


def _without_feature(raw: dict[str, Any], name: str) -> dict[str, Any]:
    raw["data"]["features"] = [f for f in raw["data"]["features"] if f["name"] != name]
    raw["evaluation"]["behavioral"] = []
    return raw


REGRESSION = (
    "data.task=regression", "data.target=interest_rate", "training.estimator={kind: ridge}",
    "evaluation.primary_metric=rmse", "evaluation.comparison.metric=rmse",
    "evaluation.thresholds={rmse: {max: 0.05}, r2: {min: 0.5}}",
    "evaluation.fairness=[{attribute: gender, metric: mae, max_gap: 0.01, min_group_size: 1}]",
)


@pytest.fixture
def regression_raw(raw_params) -> dict[str, Any]:
    """params.yaml turned into a regression problem: predict the interest rate from the rest."""
    return apply_overrides(_without_feature(raw_params, "interest_rate"), list(REGRESSION))


@pytest.fixture
def regression_case(regression_raw, make_params) -> tuple[Params, pd.DataFrame]:
    return make_params(raw=regression_raw), demo_data.generate(ROWS).drop(columns="defaulted")


@pytest.fixture
def multiclass_case(raw_params, make_params) -> tuple[Params, pd.DataFrame]:
    """The demo table as a three-class problem: the interest-rate tercile."""
    raw = _without_feature(raw_params, "interest_rate")
    # The champion comparison bootstraps AUC for binary tasks only; the demo's target encoding is
    # for binary and regression targets, so the three-class case derives nothing.
    p = make_params("data.task=multiclass", "data.target=rate_band", "evaluation.comparison.metric=f1",
                    "training.estimator.max_iter=30", "data.derived=[]", raw=raw)
    df = demo_data.generate(ROWS)
    low, high = df["interest_rate"].quantile([1 / 3, 2 / 3])
    df["rate_band"] = np.select([df["interest_rate"] < low, df["interest_rate"] < high],
                                ["low", "medium"], "high").astype(object)
    return p, df.drop(columns=["interest_rate", "defaulted"])
