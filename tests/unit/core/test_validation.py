"""Data validation: clean data passes; each kind of breakage is rejected, naming the column."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from driftline.core import validation
from driftline.core.validation import Check, ValidationReport


def _set_rows(column: str, value, rows: slice) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def breaker(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[df.index[rows], column] = value
        return df

    return breaker


def _replace(column: str, make) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def breaker(df: pd.DataFrame) -> pd.DataFrame:
        df[column] = make(df)
        return df

    return breaker


# (how to break a clean 3,000-row demo table, a substring of the failing check's detail)
BROKEN = {
    "missing column": (lambda df: df.drop(columns="credit_score"), "missing columns: credit_score"),
    "missing sensitive column": (lambda df: df.drop(columns="gender"), "missing columns: gender"),
    "unexpected column": (lambda df: df.assign(notes="x"), "unexpected columns: notes"),
    "numeric column as text": (_replace("age", lambda df: df["age"].astype(str)),
                               "column 'age' must be numeric but is"),
    "numeric column as booleans": (_replace("delinquencies_2y", lambda df: df["delinquencies_2y"] > 0),
                                   "column 'delinquencies_2y' must be numeric but is bool"),
    "too many nulls": (_set_rows("age", np.nan, slice(0, 300)), "column 'age' is 10.0% missing (at most 0.0%)"),
    "too many nulls where some are allowed": (_set_rows("credit_score", np.nan, slice(0, 600)),
                                              "column 'credit_score' is"),
    "value below range": (_set_rows("age", 12, slice(0, 3)), "column 'age' spans 12..",),
    "value above range": (_set_rows("interest_rate", 1.7, slice(10, 11)), "column 'interest_rate' spans"),
    "unknown category": (_set_rows("region", "mars", slice(0, 5)), "column 'region' has unknown categories 'mars'"),
    "duplicate rows": (lambda df: pd.concat([df, df.iloc[:100]], ignore_index=True), "duplicate rows (at most 1.00%)"),
    "missing target values": (
        _replace("defaulted", lambda df: df["defaulted"].astype("float64").mask(df.index < 10)),
        "target 'defaulted' has 10 missing values"),
    "constant target": (_replace("defaulted", lambda df: 0), "binary target 'defaulted' is constant"),
    "three classes in a binary target": (
        _replace("defaulted", lambda df: np.where(df.index % 3 == 0, 2, df["defaulted"])),
        "binary target 'defaulted' has 3 classes"),
    "too few rows": (lambda df: df.iloc[:500], "500 rows, at least 1000 needed"),
    "infinite values": (_set_rows("loan_amount", np.inf, slice(0, 3)), "column 'loan_amount' holds infinite values"),
    "unparsable time column": (
        _replace("application_date",
                 lambda df: df["application_date"].astype(str).mask(df.index >= len(df) - 7, "last tuesday")),
        "time column 'application_date' has 7 unparsable values"),
    "missing times": (_set_rows("application_date", pd.NaT, slice(0, 4)),
                      "time column 'application_date' has 4 missing values"),
    "constant feature": (_replace("region", lambda df: "north"), "column 'region' is constant"),
}


def test_clean_data_passes(params, loans):
    report = validation.validate(loans, params)
    assert report.passed, report.summary()
    assert report.failures == []
    assert report.rows == len(loans)
    assert report.summary().startswith("data validation passed")
    names = {c.name for c in report.checks}
    assert {"schema: required columns present", "quality: duplicate rows", "quality: target classes",
            "quality: value ranges", "quality: allowed categories"} <= names


def test_at_least_twelve_distinct_checks_catch_the_breakages(params, loans):
    """Twelve kinds of breakage, each caught by the validator, by at least twelve different checks
    (not twelve cases of one check)."""
    caught = set()
    for breaker, detail in BROKEN.values():
        report = validation.validate(breaker(loans.copy()), params)
        caught.update(c.name for c in report.failures if detail in c.detail)
    assert len(caught) >= 12, sorted(caught)


@pytest.mark.parametrize(("breaker", "detail"), list(BROKEN.values()), ids=list(BROKEN))
def test_broken_data_is_rejected_with_a_reason(params, loans, breaker, detail):
    report = validation.validate(breaker(loans), params)
    assert report.passed is False
    failures = [c.detail for c in report.failures]
    assert any(detail in d for d in failures), f"{detail!r} not in {failures}"
    assert detail in report.summary()


@pytest.mark.parametrize(
    ("breaker", "column"),
    [(BROKEN["numeric column as text"][0], "age"), (BROKEN["unknown category"][0], "region"),
     (BROKEN["constant target"][0], "defaulted"), (BROKEN["unparsable time column"][0], "application_date")],
)
def test_failed_column_checks_carry_the_column(params, loans, breaker, column):
    report = validation.validate(breaker(loans), params)
    assert column in {c.column for c in report.failures}


def test_extra_columns_are_only_noted_when_allowed(make_params, loans):
    p = make_params("validation.allow_extra_columns=true")
    report = validation.validate(loans.assign(notes="x"), p)
    assert report.passed, report.summary()
    assert any(c.detail == "unexpected columns: notes (ignored)" for c in report.checks)


def test_unknown_categories_within_the_allowed_share_pass(make_params, loans):
    loans.loc[loans.index[:5], "region"] = "mars"  # 0.17% of rows
    assert validation.validate(loans, make_params("validation.max_unknown_category_share=0.01")).passed


def test_nulls_within_a_column_limit_pass(params, loans):
    loans.loc[loans.index[:150], "credit_score"] = np.nan  # 5% + the 5% already missing < 10%
    assert loans["credit_score"].isna().mean() < 0.1
    assert validation.validate(loans, params).passed


def test_type_errors_stop_validation_before_value_checks(params, loans):
    loans["age"] = loans["age"].astype(str)
    report = validation.validate(loans, params)
    assert not any(c.name.startswith("quality") for c in report.checks)


def test_rare_class_is_rejected(make_params, loans):
    loans["defaulted"] = 0
    loans.loc[loans.index[:2], "defaulted"] = 1
    report = validation.validate(loans, make_params("validation.min_class_share=0.01"))
    assert report.passed is False
    assert any("classes rarer than 1.0% of rows: 1" in c.detail for c in report.failures)


def test_regression_target_must_vary(regression_case):
    p, df = regression_case
    assert validation.validate(df, p).passed
    df["interest_rate"] = 0.1
    report = validation.validate(df, p)
    assert report.passed is False
    assert any("target 'interest_rate' is constant" in c.detail for c in report.failures)


def test_report_summary_counts_failures():
    report = ValidationReport(10, [Check("a", True, "fine"), Check("b", False, "broken b"),
                                   Check("c", False, "broken c")])
    assert report.passed is False
    assert report.summary() == "data validation failed (2 of 3 checks): broken b; broken c"
    assert report.with_checks([Check("d", True, "ok")]).checks[-1].name == "d"


@pytest.mark.parametrize(("share", "passed"), [(0.25, True), (0.75, False)])
def test_distribution_check(share, passed):
    check = validation.distribution_check({"age": 0.3, "credit_score": 0.1}, share, 0.5, "3")
    assert check.passed is passed
    assert "model version 3" in check.detail
    assert "drifted: age, credit_score" in check.detail


def _derived(make_params, *entries: str):
    from tests.unit.core.test_features import WITH_DATE

    return make_params(WITH_DATE, "data.derived=[{kind: date_part, name: applied_month, column: application_date, "
                       "part: month}" + "".join(f", {e}" for e in entries) + "]")


def test_derived_features_are_validated_as_the_model_computes_them(make_params, loans):
    p = _derived(make_params, "{kind: ratio, name: loan_to_income, numerator: loan_amount, "
                 "denominator: annual_income, max: 50}")
    report = validation.validate(loans, p)
    assert report.passed, report.summary()
    checks = {c.column: c for c in report.checks if c.name == "derived: values"}
    assert set(checks) == {"applied_month", "loan_to_income"}
    # The report states what was computed: the missing share (income is 3% missing) and the range.
    share = loans["annual_income"].isna().mean()
    assert f"derived ratio 'loan_to_income': {share:.1%} missing, spans 0.0" in checks["loan_to_income"].detail
    assert "spans 1..12" in checks["applied_month"].detail

    # Held to its declared range, its missing limit (default: its inputs' largest), and varying.
    tight = _derived(make_params, "{kind: ratio, name: loan_to_income, numerator: loan_amount, "
                     "denominator: annual_income, max: 0.1}")
    failed = {c.column: c.detail for c in validation.validate(loans, tight).failures}
    assert set(failed) == {"loan_to_income"} and "outside [None, 0.1]" in failed["loan_to_income"]
    strict = _derived(make_params, "{kind: log1p, name: log_income, column: annual_income, max_null_rate: 0.01}")
    assert "missing (at most 1.0%)" in validation.validate(loans, strict).failures[0].detail
    floor = loans["loan_amount"].min()  # capped at the smallest loan: every row the same
    flat = _derived(make_params, f"{{kind: clip, name: capped, column: loan_amount, upper: {floor}}}")
    assert validation.validate(loans, flat).failures[0].detail == f"derived clip 'capped': is constant ({floor:g})"


def test_a_datetime_feature_that_is_not_iso_8601_is_rejected_naming_it(make_params, loans):
    p = _derived(make_params)
    loans["application_date"] = loans["application_date"].dt.strftime("%m/%d/%Y")
    loans.loc[loans.index[:2], "application_date"] = "now"
    report = validation.validate(loans, p)
    [failure] = report.failures
    assert failure.column == "application_date" and failure.name == "schema: column types"
    assert f"{len(loans)} values that are not ISO 8601 dates" in failure.detail


# What the report quotes is what one pass of pandas over the table quoted before validation judged
# summaries (issue 37): a run's report must not change with the way it is computed.

def test_tied_rare_classes_and_unknown_categories_are_quoted_in_the_order_they_first_appear(make_params, loans):
    """value_counts() sorts with ties kept in first appearance: classes 3 and 2 (two rows each, 3
    first) and categories 'y' and 'x' (as many rows, 'y' first) are quoted in that order, not by text."""
    p = make_params("data.task=multiclass", "data.derived=[]", "evaluation.primary_metric=accuracy",
                    "evaluation.thresholds={}", "evaluation.fairness=[]", "evaluation.comparison.metric=accuracy")
    loans["defaulted"] = np.where(loans.index.isin([5, 1005]), 3, np.where(loans.index.isin([7, 1007]), 2,
                                                                         loans["defaulted"]))
    region = loans["region"].astype(object)
    region[loans.index % 50 == 3], region[loans.index % 50 == 4] = "y", "x"
    loans["region"] = region
    details = [c.detail for c in validation.validate(loans, p).failures]
    assert "classes rarer than 0.1% of rows: 3, 2" in details, details
    assert "column 'region' has unknown categories 'y', 'x' in 4.0% of rows" in details, details


def test_a_categorical_targets_unused_class_is_a_class_of_no_rows(params, loans):
    loans["defaulted"] = pd.Categorical(loans["defaulted"], categories=[0, 1, 2])
    details = [c.detail for c in validation.validate(loans, params).failures]
    assert details == ["classes rarer than 0.1% of rows: 2"], details


def test_a_bool_regression_target_is_numeric_as_pandas_says(make_params, loans):
    p = make_params("data.task=regression", "data.target=interest_rate", "data.derived=[]",
                    "data.features=[{name: age, type: numeric}, {name: loan_purpose, type: categorical}]",
                    "data.sensitive_attributes=[]", "data.time_column=null", "validation.allow_extra_columns=true",
                    "evaluation.primary_metric=r2", "evaluation.thresholds={}", "evaluation.fairness=[]",
                    "evaluation.behavioral=[]", "evaluation.comparison.metric=r2", "monitoring.drift_columns=[]")
    report = validation.validate(loans.assign(interest_rate=loans["interest_rate"] > 0.1), p)
    assert next(c for c in report.checks if c.name == "quality: target numeric").passed


def test_a_time_column_that_is_a_datetime_feature_also_counts_its_unparsable_values(make_params, loans):
    from tests.unit.core.test_features import WITH_DATE

    p = make_params(WITH_DATE, "data.derived=[{kind: date_part, name: month, column: application_date, part: month}]")
    loans["application_date"] = loans["application_date"].astype(str).mask(loans.index >= len(loans) - 7,
                                                                           "last tuesday")
    details = [c.detail for c in validation.validate(loans, p).failures]
    assert "time column 'application_date' has 7 unparsable values" in details, details
    assert any("datetime column 'application_date' has 7 values that are not ISO 8601" in d for d in details)
