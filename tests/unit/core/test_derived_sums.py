"""Derived features fitted from sums over partitions equal the ones fitted in one process: the
training rows' values (target encodings out of fold, by hash folds) and the fitted step's answers
on rows it never saw, whatever the partitioning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.core import demo_data, derived_sums, features, frames

DERIVED = ("data.derived=[{name: loan_to_income, kind: ratio, numerator: loan_amount, denominator: annual_income}, "
           "{name: purpose_rate, kind: target_encoding, column: loan_purpose}, "
           "{name: home_share, kind: frequency, column: home_ownership}, "
           "{name: region_rate, kind: target_encoding, column: region}]")


def _chunks(df: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    size = -(-len(df) // n)
    return [df.iloc[i:i + size] for i in range(0, len(df), size)]


@pytest.mark.parametrize("chunks", [1, 6])
@pytest.mark.parametrize("task", ["binary", "regression"])
def test_sums_over_partitions_fit_the_step_one_process_fits(make_params, chunks, task):
    overrides = [DERIVED]
    df = demo_data.generate(6000, 3)
    df.loc[df.index[:50], "loan_purpose"] = None  # missing categories are a category of their own
    if task == "regression":
        overrides += ["data.task=regression", "data.target=interest_rate",
                      "data.features=[{name: age, type: numeric}, {name: annual_income, type: numeric}, "
                      "{name: loan_amount, type: numeric}, {name: loan_purpose, type: categorical}, "
                      "{name: home_ownership, type: categorical}, {name: region, type: categorical}]",
                      "evaluation.primary_metric=r2", "evaluation.thresholds={}", "evaluation.fairness=[]",
                      "evaluation.behavioral=[]", "evaluation.comparison.metric=r2", "monitoring.drift_columns=[]"]
    p = make_params(*overrides)
    x, y = frames.features(df, p.data), frames.target(df, p.data)
    alone = features.from_params(p)
    expected = alone.fit_transform(x, y)  # on folds by row hash, as the partitions know them

    classes = sorted(set(y.tolist())) if task == "binary" else []
    sums = derived_sums.merge_sums([derived_sums.partition_sums(c, p, classes) for c in _chunks(df, chunks)])
    step = derived_sums.fitted(p, sums, classes, list(x.columns))
    got = pd.concat([derived_sums.derive(step, sums, frames.features(c, p.data), training=True)
                     for c in _chunks(df, chunks)])
    names = [d.name for d in p.data.derived]
    np.testing.assert_allclose(got[names].to_numpy(float), expected[names].to_numpy(float), rtol=1e-9, atol=1e-12)

    new = frames.features(demo_data.generate(500, 4), p.data)
    new.loc[new.index[:5], "loan_purpose"] = "crypto"  # unseen: the target's mean
    np.testing.assert_allclose(step.transform(new)[names].to_numpy(float), alone.transform(new)[names].to_numpy(float),
                               rtol=1e-9, atol=1e-12)
