"""The seeded demo table and its named scenarios."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from pandas.api import types as ptypes

from driftline.core import demo_data, validation

ROWS = 3000


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def test_same_seed_gives_the_same_table_and_the_same_bytes():
    a, b = demo_data.generate(ROWS, seed=11), demo_data.generate(ROWS, seed=11)
    pd.testing.assert_frame_equal(a, b)
    assert _parquet(a) == _parquet(b)


def test_different_seeds_give_different_tables():
    a, b = demo_data.generate(ROWS, seed=1), demo_data.generate(ROWS, seed=2)
    assert not a.equals(b)
    assert _parquet(a) != _parquet(b)
    assert a["defaulted"].to_numpy().tolist() != b["defaulted"].to_numpy().tolist()


def test_default_table_has_every_configured_column_and_enough_rows(params):
    df = demo_data.generate()
    assert len(df) >= 50_000
    assert set(df.columns) == set(params.data.columns)
    assert df["application_date"].is_monotonic_increasing
    # About 18% default, as documented, and both classes well represented.
    assert 0.12 < df["defaulted"].mean() < 0.25


def test_default_table_passes_validation_against_params_yaml(params):
    report = validation.validate(demo_data.generate(), params)
    assert report.passed, report.summary()


def test_missing_values_are_where_params_yaml_allows_them(params):
    df = demo_data.generate(ROWS)
    allowed = {f.name for f in params.data.features if f.max_null_rate}
    with_missing = {c for c in df.columns if df[c].isna().any()}
    assert with_missing == allowed
    assert {"annual_income", "employment_years", "credit_score", "debt_to_income", "loan_purpose"} <= with_missing


@pytest.mark.parametrize("scenario", demo_data.SCENARIOS)
def test_every_scenario_generates_the_requested_rows(scenario):
    df = demo_data.generate(500, seed=3, scenario=scenario)
    assert len(df) == 500
    assert set(df["defaulted"].unique()) == {0, 1}
    pd.testing.assert_frame_equal(df, demo_data.generate(500, seed=3, scenario=scenario))


def test_unknown_scenario_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="unknown scenario 'drifty'") as info:
        demo_data.generate(100, scenario="drifty")
    for name in demo_data.SCENARIOS:
        assert name in str(info.value)


def test_covariate_shift_moves_the_means():
    base = demo_data.generate(ROWS, seed=5)
    shifted = demo_data.generate(ROWS, seed=5, scenario="covariate_shift")
    assert shifted["age"].mean() < base["age"].mean() - 5
    assert shifted["credit_score"].mean() < base["credit_score"].mean() - 30
    assert shifted["debt_to_income"].mean() > base["debt_to_income"].mean() * 1.2
    assert shifted["open_accounts"].mean() > base["open_accounts"].mean() + 2
    # Drifted inputs in a model of the same world: more risk, more default.
    assert shifted["defaulted"].mean() > base["defaulted"].mean()


def test_concept_drift_keeps_the_inputs_and_changes_the_target():
    base = demo_data.generate(ROWS, seed=5)
    drift = demo_data.generate(ROWS, seed=5, scenario="concept_drift")
    inputs = [c for c in base.columns if c not in {"defaulted", "application_date"}]
    pd.testing.assert_frame_equal(base[inputs], drift[inputs])
    assert (base["defaulted"] != drift["defaulted"]).mean() > 0.05
    # Region now matters: the south defaults more than the north.
    by_region = drift.groupby("region")["defaulted"].mean()
    assert by_region["south"] > by_region["north"] + 0.1


def test_new_category_introduces_values_params_yaml_does_not_allow(params):
    df = demo_data.generate(ROWS, scenario="new_category")
    allowed = {f.name: set(f.categories) for f in params.data.features if f.categories}
    purposes = set(df["loan_purpose"].dropna()) - allowed["loan_purpose"]
    homes = set(df["home_ownership"].dropna()) - allowed["home_ownership"]
    assert purposes
    assert homes
    assert not set(demo_data.generate(ROWS)["loan_purpose"].dropna()) - allowed["loan_purpose"]


def test_broken_schema_renames_credit_score_and_makes_income_text():
    df = demo_data.generate(ROWS, scenario="broken_schema")
    assert "credit_score" not in df.columns
    assert "fico_score" in df.columns
    assert not ptypes.is_numeric_dtype(df["annual_income"])
    income = df["annual_income"].dropna()
    assert income.str.startswith("$").all()
    assert df["annual_income"].isna().any()  # missing stays missing, not the text "nan"


@pytest.mark.parametrize(
    ("scenario", "detail"),
    [("broken_schema", "missing columns: credit_score"),
     ("new_category", "column 'loan_purpose' has unknown categories 'crypto'")],
)
def test_broken_scenarios_fail_validation(params, scenario, detail):
    report = validation.validate(demo_data.generate(ROWS, scenario=scenario), params)
    assert report.passed is False
    assert any(detail in c.detail for c in report.failures), report.summary()


def test_the_selected_scenarios_keep_the_baseline_rows_whose_true_risk_is_clear_cut_or_borderline():
    # Chosen by the true risk of baseline rows: the features move, the labels follow them as before.
    base, risk = demo_data.generate(20_000, seed=4), demo_data.risk(20_000, seed=4)
    assert base["defaulted"].mean() == pytest.approx(risk.mean(), abs=0.01)
    near = demo_data.generate(4000, seed=4, scenario="borderline")
    clear = demo_data.generate(4000, seed=4, scenario="clear_cut")
    assert near["defaulted"].mean() == pytest.approx(risk[(risk > 0.22) & (risk < 0.42)].mean(), abs=0.025)
    clear_risk = risk[(risk < 0.04) | (risk > 0.7)]
    assert clear["defaulted"].mean() == pytest.approx(clear_risk.mean(), abs=0.02)
    assert near["credit_score"].std() < base["credit_score"].std() < clear["credit_score"].std()
    assert near["application_date"].is_monotonic_increasing
