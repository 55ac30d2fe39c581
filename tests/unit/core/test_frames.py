"""From a validated table to model inputs: one dtype per feature kind, in config order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.core import frames


def test_features_are_the_configured_columns_in_order(params, loans):
    x = frames.features(loans, params.data)
    assert list(x.columns) == params.data.feature_names
    assert x.index.equals(loans.index)
    for excluded in ("defaulted", "application_date", "gender"):
        assert excluded not in x.columns


def test_numeric_features_are_float_and_categoricals_are_object_with_none(params, loans):
    x = frames.features(loans, params.data)
    for f in params.data.features:
        expected = "float64" if f.type == "numeric" else "object"
        assert x[f.name].dtype == expected, f.name
    missing = x.loc[loans["loan_purpose"].isna(), "loan_purpose"]
    assert len(missing) > 0
    assert all(v is None for v in missing)  # None, not pd.NA: one missing marker everywhere
    assert {type(v) for v in x["region"]} == {str}
    # Integer columns keep their values; missing numbers become NaN.
    np.testing.assert_array_equal(x["age"].to_numpy(), loans["age"].to_numpy(dtype="float64"))
    assert x["credit_score"].isna().sum() == loans["credit_score"].isna().sum()


def test_numbers_as_text_are_converted_and_garbage_raises(params, loans):
    loans["age"] = loans["age"].astype(str)
    assert frames.features(loans, params.data)["age"].dtype == "float64"
    loans.loc[loans.index[0], "age"] = "forty"
    with pytest.raises(ValueError, match="forty"):
        frames.features(loans, params.data)


def test_target_keeps_classes_and_makes_regression_float(params, loans, regression_case):
    y = frames.target(loans, params.data)
    np.testing.assert_array_equal(y, loans["defaulted"].to_numpy())
    p, df = regression_case
    assert frames.target(df, p.data).dtype == np.float64


def test_typical_record_is_median_and_mode(params):
    x = pd.DataFrame({f.name: [np.nan] * 4 if f.type == "numeric" else [None] * 4 for f in params.data.features})
    x["age"] = [20.0, 30.0, 40.0, np.nan]
    x["region"] = ["east", "west", "west", None]
    x = x.astype({f.name: "float64" for f in params.data.features if f.type == "numeric"})
    record = frames.typical_record(x, params.data)
    assert list(record) == params.data.feature_names
    assert record["age"] == 30.0
    assert record["region"] == "west"
    # A column with no values at all still gives a usable filler.
    assert record["credit_score"] == 0.0
    assert record["home_ownership"] is None
