"""Seeded split and training: deterministic, stratified, and robust to messy serving inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline

from driftline.core import demo_data, frames, training

# Small estimators keep the unit suite fast; the code paths are the same as the defaults.
SMALL = {
    "hist_gradient_boosting": "{kind: hist_gradient_boosting, max_iter: 40}",
    "random_forest": "{kind: random_forest, n_estimators: 25}",
    "logistic_regression": "{kind: logistic_regression}",
    "ridge": "{kind: ridge}",
}


def _messy(x: pd.DataFrame) -> pd.DataFrame:
    """Serving-time rows: missing values everywhere they can be, and categories never seen."""
    x = x.head(20).copy()
    x.loc[x.index[:5], ["annual_income", "credit_score", "debt_to_income", "employment_years"]] = np.nan
    x.loc[x.index[5:8], "loan_purpose"] = None
    x.loc[x.index[8:10], "loan_purpose"] = "crypto"
    x.loc[x.index[10:12], "home_ownership"] = "COOPERATIVE"
    x.loc[x.index[12], "region"] = None
    return x


# --- split ----------------------------------------------------------------------------------------


def test_split_is_deterministic(params, loans):
    a, b = training.split(loans, params), training.split(loans.copy(), params)
    pd.testing.assert_frame_equal(a.train, b.train)
    pd.testing.assert_frame_equal(a.holdout, b.holdout)


def test_split_partitions_the_rows(params, loans):
    s = training.split(loans, params)
    assert abs(len(s.holdout) / len(loans) - 0.2) < 0.03
    assert s.train.index.intersection(s.holdout.index).empty
    assert s.train.index.union(s.holdout.index).equals(loans.index)


@pytest.mark.parametrize("test_size", [0.1, 0.3])
def test_split_honours_test_size(make_params, loans, test_size):
    s = training.split(loans, make_params(f"split.test_size={test_size}"))
    assert abs(len(s.holdout) / len(loans) - test_size) < 0.03


def test_split_depends_on_the_split_seed(params, make_params, loans):
    a = training.split(loans, params)
    b = training.split(loans, make_params("split.seed=1"))
    assert not a.holdout.index.equals(b.holdout.index)


def test_training_seed_does_not_move_the_holdout(params, make_params, loans):
    a = training.split(loans, params)
    b = training.split(loans, make_params("training.seed=1"))
    assert a.holdout.index.equals(b.holdout.index)


def test_a_row_stays_on_its_side_when_the_data_grows_or_is_reordered(params, loans):
    first = training.split(loans.iloc[:2000], params)
    grown = training.split(loans.sample(frac=1.0, random_state=3), params)
    assert set(first.holdout.index) <= set(grown.holdout.index)
    assert set(first.train.index) <= set(grown.train.index)


CATEGORICAL = ["home_ownership", "loan_purpose", "region", "application_channel", "gender"]


@pytest.mark.parametrize(
    "restore",
    [
        pytest.param(lambda df: df[list(reversed(df.columns))], id="columns reordered"),
        pytest.param(lambda df: df.assign(batch_id="2025-06"), id="extra column"),
        pytest.param(lambda df: df.astype({"age": "float64", "open_accounts": "float64"}), id="ints as floats"),
        pytest.param(lambda df: df.astype(dict.fromkeys(CATEGORICAL, object)), id="text as object"),
        pytest.param(lambda df: df.assign(application_date=df["application_date"].dt.as_unit("ms")),
                     id="time in ms"),
    ],
)
def test_a_row_keeps_its_side_when_the_data_is_stored_differently(params, loans, restore):
    # A new data version written by another tool must not move the champion's training rows
    # into the holdout.
    before = training.split(loans, params)
    after = training.split(restore(loans.copy()), params)
    assert after.holdout.index.equals(before.holdout.index)


def test_split_keeps_class_shares_close(params):
    df = demo_data.generate(20_000)
    s = training.split(df, params)
    overall = df["defaulted"].mean()
    assert abs(s.holdout["defaulted"].mean() - overall) < 0.02
    assert abs(s.train["defaulted"].mean() - overall) < 0.02


def test_time_split_holds_out_the_latest_rows(make_params, loans):
    shuffled = loans.sample(frac=1.0, random_state=0)
    s = training.split(shuffled, make_params("split.method=time", "split.test_size=0.25"))
    assert len(s.holdout) == 750
    assert s.train["application_date"].max() <= s.holdout["application_date"].min()
    assert s.holdout["application_date"].max() == loans["application_date"].max()
    assert set(s.holdout.index) == set(loans.nlargest(750, "application_date").index)


def test_regression_split(regression_case):
    p, df = regression_case
    s = training.split(df, p)
    assert len(s.train) + len(s.holdout) == len(df)
    assert abs(len(s.holdout) / len(df) - 0.2) < 0.03


def test_time_split_sorts_text_dates_as_times(make_params, loans):
    # A CSV gives dates as text; month-first text sorts 12/01/2024 after 03/15/2025.
    shuffled = loans.sample(frac=1.0, random_state=0)
    text = shuffled.assign(application_date=shuffled["application_date"].dt.strftime("%m/%d/%Y %H:%M:%S"))
    s = training.split(text, make_params("split.method=time", "split.test_size=0.25"))
    assert set(s.holdout.index) == set(loans.nlargest(750, "application_date").index)
    assert set(s.train.index) == set(loans.nsmallest(2250, "application_date").index)


def test_time_split_compares_instants_across_utc_offsets(make_params):
    # 09:00+02:00 is 07:00 UTC, earlier than 08:00+00:00, though it sorts later as text.
    df = pd.DataFrame({"application_date": ["2024-01-01T09:00:00+02:00", "2024-01-01T08:00:00+00:00"] * 2,
                       "row": range(4)})
    p = make_params("split.method=time", "split.test_size=0.5")
    s = training.split(df, p)
    assert list(s.train["row"]) == [0, 2]
    assert list(s.holdout["row"]) == [1, 3]


def test_time_split_keeps_the_input_order_of_equal_times(make_params, loans):
    same = loans.assign(application_date=pd.Timestamp("2024-06-01"))
    s = training.split(same, make_params("split.method=time", "split.test_size=0.25"))
    assert s.holdout.index.equals(same.index[2250:])


# --- pipelines ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "model_type"),
    [("hist_gradient_boosting", HistGradientBoostingClassifier), ("random_forest", RandomForestClassifier),
     ("logistic_regression", LogisticRegression)],
)
def test_binary_pipeline_trains_and_predicts_on_raw_features(make_params, loans, kind, model_type):
    p = make_params(f"training.estimator={SMALL[kind]}")
    s = training.split(loans, p)
    model = training.train(s.train, p)
    assert type(model) is FixedThresholdClassifier
    assert type(model.estimator_.named_steps["model"]) is model_type

    x = frames.features(s.holdout, p.data)
    proba = model.predict_proba(x)
    assert proba.shape == (len(x), 2)
    assert list(model.classes_) == [0, 1]
    # Better than chance on the holdout: the pipeline learned something.
    assert np.corrcoef(proba[:, 1], frames.target(s.holdout, p.data))[0, 1] > 0.3

    messy = model.predict_proba(_messy(x))
    assert messy.shape == (20, 2)
    assert np.isfinite(messy).all()
    np.testing.assert_allclose(messy.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    ("kind", "model_type"),
    [("ridge", Ridge), ("hist_gradient_boosting", HistGradientBoostingRegressor),
     ("random_forest", RandomForestRegressor)],
)
def test_regression_pipeline_trains_and_predicts_on_raw_features(regression_case, regression_raw, make_params,
                                                                 kind, model_type):
    _, df = regression_case
    p = make_params(f"training.estimator={SMALL[kind]}", raw=regression_raw)
    s = training.split(df, p)
    model = training.train(s.train, p)
    assert type(model.named_steps["model"]) is model_type

    x = frames.features(s.holdout, p.data)
    y = frames.target(s.holdout, p.data)
    pred = model.predict(x)
    assert pred.shape == (len(x),)
    assert np.mean((pred - y) ** 2) < 0.5 * np.var(y)  # explains most of the variance

    messy = model.predict(_messy(x))
    assert np.isfinite(messy).all()


def test_multiclass_pipeline_trains_and_predicts_on_raw_features(multiclass_case):
    p, df = multiclass_case
    s = training.split(df, p)
    model = training.train(s.train, p)
    assert type(model.named_steps["model"]) is HistGradientBoostingClassifier
    assert sorted(model.classes_) == ["high", "low", "medium"]

    x = frames.features(s.holdout, p.data)
    proba = model.predict_proba(x)
    assert proba.shape == (len(x), 3)
    accuracy = np.mean(model.classes_[proba.argmax(axis=1)] == frames.target(s.holdout, p.data))
    assert accuracy > 0.5  # three balanced classes: chance is 1/3

    messy = model.predict_proba(_messy(x))
    assert np.isfinite(messy).all()
    np.testing.assert_allclose(messy.sum(axis=1), 1.0)


def test_pipeline_uses_the_configured_hyperparameters_and_seed(make_params):
    p = make_params("training.seed=9", "training.estimator={kind: random_forest, n_estimators: 17, max_depth: 4}",
                    "training.n_jobs=2")
    model = training.build_pipeline(p).named_steps["model"]
    assert (model.n_estimators, model.max_depth, model.random_state, model.n_jobs) == (17, 4, 9, 2)

    hgb = training.build_pipeline(make_params("training.seed=3")).named_steps["model"]
    assert (hgb.max_iter, hgb.learning_rate, hgb.min_samples_leaf, hgb.random_state) == (200, 0.05, 40, 3)
    # The ordinal-encoded categoricals come first and are declared categorical.
    assert hgb.categorical_features == [0, 1, 2, 3]


@pytest.mark.parametrize("kind", ["hist_gradient_boosting", "random_forest", "logistic_regression"])
def test_training_twice_with_the_same_seed_is_bit_identical(make_params, loans, kind):
    p = make_params(f"training.estimator={SMALL[kind]}")
    s = training.split(loans, p)
    x = frames.features(s.holdout, p.data)
    first, second = training.train(s.train, p), training.train(s.train.copy(), p)
    assert np.array_equal(first.predict_proba(x), second.predict_proba(x))
    assert np.array_equal(first.predict(x), second.predict(x))


# --- the decision threshold travels with a binary model ------------------------------------------------


def test_build_pipeline_returns_the_bare_pipeline(params):
    assert type(training.build_pipeline(params)) is Pipeline


@pytest.mark.parametrize("threshold", [0.3, 0.7])
def test_binary_model_predicts_at_the_configured_threshold(make_params, loans, threshold):
    p = make_params(f"training.estimator={SMALL['logistic_regression']}",
                    f"evaluation.decision_threshold={threshold}")
    s = training.split(loans, p)
    model = training.train(s.train, p)
    assert (model.threshold, model.pos_label, model.response_method) == (threshold, 1, "predict_proba")
    x = frames.features(s.holdout, p.data)
    proba = model.predict_proba(x)
    np.testing.assert_array_equal(model.predict(x), (proba[:, 1] >= threshold).astype(int))
    # The wrapped pipeline is the one build_pipeline makes, fitted on the same rows.
    bare = training.build_pipeline(p).fit(frames.features(s.train, p.data), frames.target(s.train, p.data))
    np.testing.assert_array_equal(proba, bare.predict_proba(x))
    # Not the pipeline's own 0.5: the gated threshold decides in serving.
    assert not np.array_equal(model.predict(x), bare.predict(x))
    assert list(model.feature_names_in_) == p.data.feature_names


def test_positive_class_is_the_models_pos_label(make_params, loans):
    p = make_params(f"training.estimator={SMALL['logistic_regression']}", "data.positive_class=0")
    s = training.split(loans, p)
    model = training.train(s.train, p)
    assert model.pos_label == 0
    x = frames.features(s.holdout, p.data)
    proba = model.predict_proba(x)
    np.testing.assert_array_equal(model.predict(x), np.where(proba[:, 0] >= 0.3, 0, 1))


def test_positive_class_given_as_text_matches_text_labels(make_params, loans):
    loans["defaulted"] = np.where(loans["defaulted"] == 1, "yes", "no").astype(object)
    p = make_params(f"training.estimator={SMALL['logistic_regression']}", "data.positive_class='no'")
    model = training.train(training.split(loans, p).train, p)
    assert model.pos_label == "no"
    assert type(model.pos_label) is str


def test_positive_class_not_in_the_data_is_a_clear_error(make_params, loans):
    p = make_params(f"training.estimator={SMALL['logistic_regression']}", "data.positive_class='yes'")
    with pytest.raises(ValueError, match=r"data\.positive_class: 'yes' is not one of the classes \(0, 1\)"):
        training.train(training.split(loans, p).train, p)


def test_multiclass_and_regression_models_are_bare_pipelines(multiclass_case, regression_case):
    for p, df in (multiclass_case, regression_case):
        assert type(training.train(df.head(1000), p)) is Pipeline


def test_the_seed_reaches_the_estimator(make_params, loans):
    s = training.split(loans, make_params())
    x = frames.features(s.holdout, make_params().data)
    a = training.train(s.train, make_params(f"training.estimator={SMALL['random_forest']}")).predict_proba(x)
    b = training.train(s.train, make_params(f"training.estimator={SMALL['random_forest']}",
                                            "training.seed=5")).predict_proba(x)
    assert not np.array_equal(a, b)


def test_unseen_by_marks_exactly_the_rows_a_hash_split_model_held_out(params):
    df = demo_data.generate(4000, 5)
    parts = training.split(df, params)
    spec = training.split_spec(params, parts)
    mask = training.unseen_by(df, spec)
    assert set(df.index[mask]) == set(parts.holdout.index)
    # A model whose split hashed a column that is gone cannot be checked.
    assert training.unseen_by(df.drop(columns=["region"]), spec) is None
    assert training.unseen_by(df, {}) is None


def test_unseen_by_for_a_time_split_is_everything_after_its_training_data(params):
    from driftline.config import apply_overrides, parse_params

    raw = params.model_dump(mode="json")
    p = parse_params(apply_overrides(raw, ["split.method=time"]))
    df = demo_data.generate(3000, 5)
    parts = training.split(df, p)
    spec = training.split_spec(p, parts)
    assert set(df.index[training.unseen_by(df, spec)]) == set(parts.holdout.index)


@pytest.mark.parametrize("kind", ["hist_gradient_boosting", "logistic_regression"])
def test_known_categories_are_read_from_the_fitted_encoders(make_params, loans, kind):
    p = make_params(f"training.estimator={SMALL[kind]}")
    model = training.train(loans.head(3000), p)
    known = training.known_categories(model)
    categorical = [f.name for f in p.data.features if f.type == "categorical"]
    assert sorted(known) == sorted(categorical)
    for name in categorical:
        assert known[name] == set(loans.head(3000)[name].dropna().unique())  # no NaN, no imputed marker


def test_known_categories_of_a_model_without_encoders_is_empty():
    assert training.known_categories(LogisticRegression()) == {}


def test_a_cached_model_is_re_pointed_at_a_new_threshold_without_refitting(params):
    model = training.train(demo_data.generate(2000, 3), params)
    other = params.model_copy(update={"evaluation": params.evaluation.model_copy(update={"decision_threshold": 0.6})})
    moved = training.at_threshold(model, other)
    assert moved.threshold == 0.6 and model.threshold == params.evaluation.decision_threshold
    assert moved.estimator_ is model.estimator_  # the fitted pipeline is shared, not refitted
    x = frames.features(demo_data.generate(300, 4), params.data)
    assert np.array_equal(moved.predict(x), (moved.predict_proba(x)[:, 1] >= 0.6).astype(int))
    assert training.at_threshold(model, params) is model


def test_row_hashes_are_those_of_the_values_as_text_whatever_the_column_holds(loans, params):
    """The split's hashes (hash_holdout) equal hashing every value turned into text, the way the
    holdout was chosen before the fast path: a row keeps its side across versions of driftline."""
    def plain(df, columns):
        return pd.DataFrame({c: df[c].astype("float64") if pd.api.types.is_numeric_dtype(df[c])
                             and not pd.api.types.is_bool_dtype(df[c]) else df[c].dt.as_unit("ns")
                             if pd.api.types.is_datetime64_any_dtype(df[c]) else df[c].astype("string")
                             for c in columns}, index=df.index)

    frames_ = [loans, loans.astype({"region": object, "gender": object}),
               pd.DataFrame({"a": pd.Series([1, "1", None, np.nan, True, "x", 2.5, "True"], dtype=object)}),
               pd.DataFrame({"a": pd.Series(["x", None, "y", "x"], dtype="string")})]
    for df in frames_:
        columns = list(params.data.columns) if "age" in df else ["a"]
        expected = pd.util.hash_pandas_object(plain(df, columns), index=False, hash_key="0" * 16).to_numpy()
        got = pd.util.hash_pandas_object(training.hashable(df, columns), index=False, hash_key="0" * 16).to_numpy()
        np.testing.assert_array_equal(got, expected)
