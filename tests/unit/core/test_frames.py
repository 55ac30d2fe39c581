"""From a validated table to model inputs: one dtype per feature kind, in config order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.core import frames, training


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


class Fitted:
    """Stands in for a fitted model: all `model_features` reads is `feature_names_in_`."""

    def __init__(self, names):
        self.feature_names_in_ = np.array(names, dtype=object)


def test_model_features_are_the_models_columns_in_its_order(params, loans):
    # The champion was trained before credit_score was dropped from the config and before
    # region was added; it also knew a column the config has never listed.
    loans["segment"] = np.where(loans["age"] > 40, 1, 2)
    loans["branch_code"] = "b" + loans["age"].astype(str)
    model = Fitted(["credit_score", "age", "segment", "branch_code", "home_ownership"])
    x = frames.model_features(loans, model, params.data)
    assert list(x.columns) == ["credit_score", "age", "segment", "branch_code", "home_ownership"]
    assert x.index.equals(loans.index)
    assert x["credit_score"].dtype == "float64" and x["age"].dtype == "float64"
    assert x["segment"].dtype == "float64"  # not in the config: numeric because its dtype is
    assert x["branch_code"].dtype == "object" and x["branch_code"].iloc[0].startswith("b")
    assert x["home_ownership"].dtype == "object"
    assert {type(v) for v in x["home_ownership"]} == {str}
    # Same coercion as features() for the columns both know.
    pd.testing.assert_frame_equal(x[["credit_score", "age", "home_ownership"]],
                                  frames.features(loans, params.data)[["credit_score", "age", "home_ownership"]])


def test_model_features_use_the_configured_type_over_the_dtype(params, loans):
    # Numbers stored as text in a new data version still reach a numeric feature as numbers,
    # and a categorical stored as numbers reaches the model as text.
    loans["age"] = loans["age"].astype(str)
    loans["region"] = loans["region"].map({"north": 1, "south": 2, "east": 3, "west": 4})
    x = frames.model_features(loans, Fitted(["age", "region"]), params.data)
    assert x["age"].dtype == "float64"
    assert x["region"].dtype == "object"
    assert set(x["region"]) == {"1", "2", "3", "4"}


def test_model_features_name_the_missing_columns(params, loans):
    model = Fitted(["age", "fico_score", "credit_score", "tenure"])
    with pytest.raises(KeyError) as info:
        frames.model_features(loans, model, params.data)
    assert info.value.args[0] == "model needs columns missing from the data: fico_score, tenure"


def test_model_features_of_a_trained_model(make_params, loans):
    # feature_names_in_ is there on the FixedThresholdClassifier train() returns.
    p = make_params("training.estimator={kind: logistic_regression}")
    model = training.train(loans, p)
    x = frames.model_features(loans.head(50), model, p.data)
    pd.testing.assert_frame_equal(x, frames.features(loans.head(50), p.data))
    np.testing.assert_array_equal(model.predict_proba(x), model.predict_proba(frames.features(loans.head(50), p.data)))
