"""Behavioural tests of the demo model (Made-With-ML's taxonomy: minimum functionality,
invariance, directional expectations), written against the model itself rather than through the
training gates, so a gate that stopped checking would not hide a model that stopped behaving.

The demo data comes from a known logistic model (driftline/core/demo_data.py): default risk rises
with debt, interest rate and delinquencies, falls with credit score, and does not depend on the
application channel or the applicant's gender."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from driftline.config import load_params
from driftline.core import demo_data, evaluation, frames, training
from tests.unit.conftest import PARAMS_FILE


@pytest.fixture(scope="module")
def demo():
    p = load_params(PARAMS_FILE)
    with threadpool_limits(limits=1):
        parts = training.split(demo_data.generate(20_000, seed=11), p)
        model = training.train(parts.train, p)
    x = frames.features(parts.holdout, p.data).sample(2000, random_state=0)
    return p, model, x, parts


def risk(demo, x: pd.DataFrame) -> np.ndarray:
    p, model, _, _ = demo
    return evaluation.predict(model, x, p).score


def test_it_ranks_defaulters_above_repayers_on_unseen_rows(demo):
    p, model, _, parts = demo
    x, y = frames.features(parts.holdout, p.data), parts.holdout[p.data.target].to_numpy()
    got = evaluation.metrics(y, evaluation.predict(model, x, p), p.data.task)
    assert got["roc_auc"] >= 0.8, got


@pytest.mark.parametrize(("record", "low_risk"), [
    ({"credit_score": 820, "debt_to_income": 0.05, "delinquencies_2y": 0, "interest_rate": 0.05}, True),
    ({"credit_score": 800, "debt_to_income": 0.1, "delinquencies_2y": 0, "interest_rate": 0.06,
      "employment_years": 20}, True),
    ({"credit_score": 480, "debt_to_income": 0.9, "delinquencies_2y": 4, "interest_rate": 0.3}, False),
    ({"credit_score": 520, "debt_to_income": 0.8, "delinquencies_2y": 6, "interest_rate": 0.33,
      "loan_purpose": "small_business"}, False),
], ids=["prime", "prime-long-employment", "subprime", "subprime-small-business"])
def test_minimum_functionality_textbook_applicants(demo, record, low_risk):
    p, _, x, _ = demo
    typical = x.iloc[[0]].copy()
    for key, value in record.items():
        typical[key] = value
    score = float(risk(demo, typical)[0])
    assert (score <= 0.1) if low_risk else (score >= p.evaluation.decision_threshold), (record, score)


@pytest.mark.parametrize(("feature", "values"), [("application_channel", demo_data.CHANNELS),
                                                ("region", demo_data.REGIONS)])
def test_invariance_to_what_does_not_drive_default(demo, feature, values):
    _, _, x, _ = demo
    base = risk(demo, x)
    for value in values:
        moved = np.abs(risk(demo, x.assign(**{feature: value})) - base)
        assert moved.mean() <= 0.02, (value, moved.mean())


def test_the_sensitive_attribute_is_never_an_input(demo):
    _, model, x, parts = demo
    assert "gender" in parts.holdout.columns and "gender" not in x.columns
    assert "gender" not in list(model.feature_names_in_)


@pytest.mark.parametrize(("feature", "shift", "direction"), [
    ("debt_to_income", 0.2, 1), ("interest_rate", 0.05, 1), ("delinquencies_2y", 2, 1), ("credit_score", -80, 1),
    ("credit_score", 80, -1),
])
def test_directional_expectations(demo, feature, shift, direction):
    _, _, x, _ = demo
    delta = (risk(demo, x.assign(**{feature: x[feature] + shift})) - risk(demo, x)) * direction
    wrong = np.mean(delta < -0.01)
    assert wrong <= 0.05, f"{feature} {shift:+}: {wrong:.1%} of rows moved the wrong way"
    assert np.mean(delta) > 0.005, f"{feature} {shift:+} barely moved the risk: {np.mean(delta):.4f}"
