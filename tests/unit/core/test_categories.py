"""A missing category gives one answer whatever pandas calls it: None in an object column (what
driftline's frames and server hold), NaN in pandas' string dtype (what pandas 3 reads from text
and `mlflow models serve` parses JSON into), NaN in an object column, or pd.NA."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.core import frames, training
from driftline.core.categories import CategoryCodes, text_columns

CATEGORICAL = ["home_ownership", "loan_purpose", "region", "application_channel"]
KINDS = {  # one per preprocessing style: ordinal codes, declared categories, one-hot
    "hist_gradient_boosting": "{kind: hist_gradient_boosting, max_iter: 30}",
    "xgboost": "{kind: xgboost, params: {n_estimators: 20, max_depth: 3}}",
    "logistic_regression": "{kind: logistic_regression}",
}


def _forms(x: pd.DataFrame) -> dict[str, pd.DataFrame]:
    strings = x.astype(dict.fromkeys(CATEGORICAL, "str"))
    nan = x.copy()
    for c in CATEGORICAL:
        nan[c] = x[c].where(x[c].notna(), np.nan).astype(object)
    return {"string dtype": strings, "object NaN": nan,
            "pd.NA": x.astype(dict.fromkeys(CATEGORICAL, "string[python]"))}


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_missing_category_gets_one_answer_in_every_pandas_form(make_params, loans, kind):
    p = make_params(f"training.estimator={KINDS[kind]}")
    model = training.train(loans, p)
    x = frames.features(loans, p.data).head(600)
    missing = x["loan_purpose"].isna()
    assert missing.sum() > 5 and x["loan_purpose"].map(type).eq(str).sum() > 100  # the rows the test is about
    expected = model.predict_proba(x)
    for name, form in _forms(x).items():
        assert form["loan_purpose"].isna().equals(missing), name
        np.testing.assert_array_equal(model.predict_proba(form), expected, err_msg=name)


def test_the_codes_are_the_plain_encoders_on_driftlines_frames(params, loans):
    # Models fitted before these steps keep their answers: on driftline's own frames the step
    # changes nothing, and the fitted categories hold None as before.
    from sklearn.preprocessing import OrdinalEncoder

    x = frames.features(loans, params.data)[CATEGORICAL]
    assert text_columns(x) is x
    ours = CategoryCodes(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan)
    plain = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan)
    np.testing.assert_array_equal(ours.fit_transform(x), plain.fit_transform(x))
    assert None in ours.categories_[CATEGORICAL.index("loan_purpose")].tolist()


def test_numbers_in_a_category_column_read_as_their_text():
    column = pd.Series([1, 2, None], dtype="Int64")
    assert frames.as_text(column).tolist() == ["1", "2", None]
