"""The direct drift statistics give Evidently's numbers and decisions, on both of its paths
(more than 1,000 reference rows: distances; fewer: p-value tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.adapters import evidently_drift
from driftline.core import demo_data, drift


def _columns(params):
    numeric = [f.name for f in params.data.features if f.type == "numeric"]
    categorical = [f.name for f in params.data.features if f.type == "categorical"]
    return numeric, categorical


@pytest.mark.parametrize(("ref_rows", "cur_rows"), [(3000, 4000), (800, 600)], ids=["distances", "p-values"])
@pytest.mark.parametrize("scenario", ["baseline", "covariate_shift", "new_category"])
def test_scores_and_decisions_match_evidently(params, scenario, ref_rows, cur_rows):
    numeric, categorical = _columns(params)
    reference = demo_data.generate(ref_rows, seed=1)
    current = demo_data.generate(cur_rows, seed=2, scenario=scenario)
    ours = {c.column: c for c in drift.scipy_data_drift(current, reference, numeric, categorical)}
    theirs = evidently_drift.evidently_data_drift(current, reference, numeric, categorical, with_html=False).columns
    assert len(theirs) == len(ours) == len(numeric) + len(categorical)
    for col in theirs:
        mine = ours[col.column]
        assert mine.score == pytest.approx(col.score, rel=1e-6, abs=1e-9), col
        assert mine.drifted == col.drifted, col
        assert col.method.lower().startswith({"wasserstein": "wasserstein", "jensenshannon": "jensen",
                                              "ks": "k-s", "chisquare": "chi", "z": "z"}[mine.method]), col


def test_covariate_shift_drifts_the_shifted_columns_and_baseline_drifts_none(params):
    numeric, categorical = _columns(params)
    reference = demo_data.generate(5000, seed=1)
    same = drift.scipy_data_drift(demo_data.generate(20_000, seed=3), reference, numeric, categorical)
    shifted = {c.column for c in drift.scipy_data_drift(demo_data.generate(20_000, seed=3, scenario="covariate_shift"),
                                                  reference, numeric, categorical) if c.drifted}
    assert not any(c.drifted for c in same)
    assert {"age", "annual_income", "credit_score", "loan_amount"} <= shifted
    assert "region" not in shifted


def test_missing_and_infinite_values_are_left_out_like_evidently():
    ref = pd.Series(np.r_[np.arange(2000.0), [np.nan, np.inf]])
    cur = pd.Series(np.r_[np.arange(2000.0) + 1000, [np.nan] * 50])
    result = drift.column_drift("x", ref, cur, numeric=True)
    assert result.method == "wasserstein" and result.drifted
    assert drift.column_drift("x", ref, pd.Series([np.nan] * 10), True).method == "empty"


def test_quality_counts_missing_and_values_outside_the_config(params):
    current = demo_data.generate(2000, seed=4, scenario="new_category")
    rows = {q.column: q for q in drift.quality(current, demo_data.generate(2000, seed=5), params.data.features)}
    assert 0.1 < rows["loan_purpose"].unknown_share < 0.2  # "crypto" is 15%
    assert rows["region"].unknown_share == 0
    assert rows["annual_income"].missing_current > 0
