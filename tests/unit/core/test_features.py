"""Derived features (`data.derived`): each kind's values, what is learned from the training part
only, target encoding that never reads a training row's own label, and the model that computes
them from raw rows."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import yaml

from driftline.config import ConfigError, load_params
from driftline.core import demo_data, features, frames, training
from driftline.core.features import DerivedFeatures
from tests.unit.conftest import PARAMS_FILE

# The demo's time column as a datetime feature as well: date parts and days-since read it.
_FEATURES = yaml.safe_load(PARAMS_FILE.read_text())["data"]["features"]
WITH_DATE = "data.features=" + json.dumps([*_FEATURES, {"name": "application_date", "type": "datetime"}])
DERIVED = ("data.derived=["
              "{kind: ratio, name: loan_to_income, numerator: loan_amount, denominator: annual_income},"
              "{kind: difference, name: score_minus_age, left: credit_score, right: age},"
              "{kind: log1p, name: log_income, column: annual_income},"
              "{kind: clip, name: dti_clipped, column: debt_to_income, quantiles: [0.05, 0.95]},"
              "{kind: clip, name: accounts_capped, column: open_accounts, upper: 20},"
              "{kind: quantile_bins, name: score_band, column: credit_score, bins: 4},"
              "{kind: interaction, name: amount_x_rate, columns: [loan_amount, interest_rate]},"
              "{kind: frequency, name: purpose_share, column: loan_purpose},"
              "{kind: target_encoding, name: region_risk, column: region},"
              "{kind: date_part, name: applied_month, column: application_date, part: month},"
              "{kind: date_part, name: applied_on_weekend, column: application_date, part: weekend},"
              "{kind: days_since, name: days_since_launch, column: application_date, date: '2023-12-01'}]")
# A function of the project's own: its module sits next to params.yaml (written there by a test).
USER_MODULE = """import numpy as np

SHARE = {"north": 1.0, "south": 0.8}


def affordability(frame):
    share = frame["region"].map(SHARE).fillna(0.9).to_numpy(float)
    return share * frame["annual_income"].to_numpy(float) / (1.0 + frame["loan_amount"].to_numpy(float))
"""
FUNCTION = ("{kind: custom, name: affordability, function: 'user_features:affordability', "
            "columns: [annual_income, loan_amount, region]}")
EVERY_KIND = (WITH_DATE, DERIVED)
WITH_FUNCTION = (WITH_DATE, DERIVED[:-1] + "," + FUNCTION + "]")  # every kind, a user function too


def _derive(*specs: dict, **kw) -> DerivedFeatures:
    return DerivedFeatures(list(specs), **kw)


def test_row_wise_kinds_compute_what_they_say_and_missing_where_undefined():
    x = pd.DataFrame({"a": [4.0, 3.0, -2.0, np.nan], "b": [2.0, 0.0, 1.0, 1.0]})
    out = _derive({"kind": "ratio", "name": "r", "numerator": "a", "denominator": "b"},
                  {"kind": "difference", "name": "d", "left": "a", "right": "b"},
                  {"kind": "log1p", "name": "l", "column": "a"},
                  {"kind": "interaction", "name": "i", "columns": ["a", "b"]},
                  {"kind": "clip", "name": "c", "column": "a", "lower": 0.0, "upper": 3.5}).fit_transform(x)
    np.testing.assert_array_equal(out["r"], [2.0, np.nan, -2.0, np.nan])  # x / 0 is missing, not inf
    np.testing.assert_array_equal(out["d"], [2.0, 3.0, -3.0, np.nan])
    np.testing.assert_allclose(out["l"], [np.log(5), np.log(4), np.nan, np.nan])  # log1p(-2) is missing
    np.testing.assert_array_equal(out["i"], [8.0, 0.0, -2.0, np.nan])
    np.testing.assert_array_equal(out["c"], [3.5, 3.0, 0.0, np.nan])
    assert list(out.columns[:2]) == ["a", "b"]  # the raw features stay, the derived ones follow


def test_learned_kinds_learn_from_the_rows_they_are_fitted_on_only():
    train = pd.DataFrame({"v": np.arange(100.0), "c": ["x"] * 75 + ["y"] * 25})
    step = _derive({"kind": "clip", "name": "q", "column": "v", "quantiles": [0.1, 0.9]},
                   {"kind": "quantile_bins", "name": "bin", "column": "v", "bins": 4},
                   {"kind": "frequency", "name": "f", "column": "c"}).fit(train)
    later = pd.DataFrame({"v": [-50.0, 10.0, 60.0, 500.0, np.nan], "c": ["x", "y", "z", "x", "y"]})
    out = step.transform(later)
    np.testing.assert_allclose(out["q"], [9.9, 10.0, 60.0, 89.1, np.nan])  # training's 10th and 90th percentiles
    np.testing.assert_array_equal(out["bin"], [0, 0, 2, 3, np.nan])  # beyond the training range: the end bins
    np.testing.assert_array_equal(out["f"], [0.75, 0.25, 0.0, 0.75, 0.25])  # an unseen category: 0


def test_target_encoding_never_reads_a_training_rows_own_label():
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"c": rng.choice(list("abcd"), 400)})
    y = rng.integers(0, 2, 400)
    step = _derive({"kind": "target_encoding", "name": "te", "column": "c"}, seed=3, target_type="binary")
    before = step.fit_transform(x, y)["te"].to_numpy()
    for row in (0, 57, 399):
        flipped = y.copy()
        flipped[row] = 1 - flipped[row]
        after = step.fit_transform(x, flipped)["te"].to_numpy()
        assert after[row] == before[row], f"row {row}'s encoding moved with its own label"
        assert not np.array_equal(after, before)  # other folds' rows did read it: the test can see a change
    # Served rows are encoded with the whole training part, the same for any later label.
    served = step.fit(x, y).transform(pd.DataFrame({"c": ["a", "zz"]}))["te"].to_numpy()
    assert served[0] == pytest.approx(step.learned_["te"].encodings_[0][list(step.learned_["te"].categories_[0])
                                                                         .index("a")])
    assert served[1] == pytest.approx(step.learned_["te"].target_mean_)  # unseen: the training mean


def test_the_model_computes_every_kind_from_raw_rows_and_survives_pickling():
    p = load_params(PARAMS_FILE, [*EVERY_KIND, "training.estimator.max_iter=30"])
    parts = training.split(demo_data.generate(4000, 3), p)
    model = training.train(parts.train, p)
    raw = frames.features(parts.holdout, p.data)
    assert list(raw.columns) == p.data.feature_names  # the model's input: the raw features only
    derived = model.estimator_.named_steps["derive"].transform(raw)
    names = [d.name for d in p.data.derived]
    assert list(derived.columns[-len(names):]) == names
    assert derived[names].notna().mean().min() > 0.85
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(raw), model.predict_proba(raw))
    plain = training.train(parts.train, load_params(PARAMS_FILE, ["training.estimator.max_iter=30"]))
    assert not np.allclose(plain.predict_proba(raw), model.predict_proba(raw))  # the derived features are used


@pytest.mark.parametrize(("entry", "message"), [
    ("{kind: ratio, name: r, numerator: incme, denominator: age}",
     "data.derived.0.numerator: 'incme' is not a feature"),
    ("{kind: frequency, name: f, column: age}",
     "data.derived.0.column: frequency needs a categorical feature, 'age' is numeric"),
    ("{kind: log1p, name: region, column: age}",
     "data.derived.0.name: 'region' is already a column or another derived feature"),
    ("{kind: clip, name: c, column: age, upper: 3, quantiles: [0.1, 0.9]}",
     "give either fixed bounds (lower/upper) or quantiles, not both"),
    ("{kind: bucket, name: c, column: age}", "data.derived.0"),
])
def test_a_derived_feature_that_cannot_be_computed_fails_at_load_naming_its_key(entry, message):
    with pytest.raises(ConfigError) as err:
        load_params(PARAMS_FILE, [f"data.derived=[{entry}]"])
    assert message in str(err.value), str(err.value)


def test_a_missing_category_is_one_category_whatever_shape_it_arrives_in():
    """Offline a missing category is None; the server reads JSON null as NaN: both must match."""
    train = pd.DataFrame({"c": ["x", "x", None, "y"]})
    y = np.array([0, 1, 1, 0])
    step = _derive({"kind": "frequency", "name": "f", "column": "c"},
                   {"kind": "target_encoding", "name": "te", "column": "c"}, target_type="binary").fit(train, y)
    as_none = step.transform(pd.DataFrame({"c": pd.Series([None], dtype=object)}))
    as_nan = step.transform(pd.DataFrame({"c": pd.Series([np.nan], dtype=object)}))
    assert as_none["f"].item() == as_nan["f"].item() == 0.25
    assert as_none["te"].item() == as_nan["te"].item()
    # A training table takes a vectorized path, a served batch a per-value one: the same values.
    rows = pd.DataFrame({"c": pd.Series(["x", None, "y", np.nan, "never seen"] * 400, dtype=object)})
    assert len(rows) >= features.LARGE
    whole = step.transform(rows)["f"].to_numpy()
    one_by_one = np.concatenate([step.transform(rows.iloc[i:i + 1])["f"].to_numpy() for i in range(5)])
    assert np.array_equal(whole[:5], one_by_one) and list(one_by_one) == [0.5, 0.25, 0.25, 0.25, 0.0]


def test_date_parts_and_days_since_read_iso_dates_and_never_the_clock():
    x = pd.DataFrame({"at": ["2024-03-16", "2024-03-15T22:30:00-03:00", "now", "03/15/2024", None],
                      "due": ["2024-04-15"] * 5})
    out = _derive({"kind": "date_part", "name": "month", "column": "at", "part": "month"},
                  {"kind": "date_part", "name": "hour", "column": "at", "part": "hour"},
                  {"kind": "date_part", "name": "weekend", "column": "at", "part": "weekend"},
                  {"kind": "days_since", "name": "to_due", "column": "at", "until": "due"},
                  {"kind": "days_since", "name": "since", "column": "at", "date": "2024-03-01"}).fit_transform(x)
    np.testing.assert_array_equal(out["month"], [3, 3, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(out["hour"], [0, 1, np.nan, np.nan, np.nan])  # 22:30 at -03:00 is 01:30 UTC
    np.testing.assert_array_equal(out["weekend"], [1, 1, np.nan, np.nan, np.nan])  # the 16th, UTC: a Saturday
    np.testing.assert_allclose(out["to_due"], [30, 29 + 22.5 / 24, np.nan, np.nan, np.nan])
    np.testing.assert_allclose(out["since"], [-15, -(15 + 1.5 / 24), np.nan, np.nan, np.nan])
    # A Parquet datetime column gives the same values as its ISO text (what a client sends).
    stamps = pd.DataFrame({"at": pd.to_datetime(["2024-03-16", None]), "due": pd.to_datetime(["2024-04-15"] * 2)})
    as_text = frames._coerce(stamps["at"], "datetime")
    assert as_text.tolist() == ["2024-03-16T00:00:00.000000+00:00", None]
    step = _derive({"kind": "days_since", "name": "d", "column": "at", "until": "due"})
    np.testing.assert_array_equal(step.fit_transform(stamps)["d"],
                                  step.transform(stamps.assign(at=as_text))["d"])


@pytest.mark.parametrize(("overrides", "message"), [
    ([WITH_DATE], f"data.features.{len(_FEATURES)}.type: datetime feature 'application_date' is read by no "
                  "derived feature"),
    ([WITH_DATE, "data.derived=[{kind: date_part, name: m, column: age, part: month}]"],
     "data.derived.0.column: date_part needs a datetime feature, 'age' is numeric"),
    (["data.derived=[{kind: days_since, name: d, column: application_date, date: '2026-01-01'}]"],
     "data.derived.0.column: 'application_date' is not a feature"),
    ([WITH_DATE, "data.derived=[{kind: days_since, name: d, column: application_date}]"],
     "give exactly one of until (a datetime feature) and date"),
    ([WITH_DATE, "data.derived=[{kind: days_since, name: d, column: application_date, date: 'soon'}]"],
     "date 'soon' is not an ISO 8601 date"),
    (["monitoring.drift_columns=[no_such]"], "monitoring.drift_columns: 'no_such' is not a feature"),
])
def test_date_features_are_checked_at_load_naming_the_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_params(PARAMS_FILE, overrides)
    assert message in str(err.value), str(err.value)


def test_the_time_column_may_be_a_datetime_feature_and_drift_columns_may_name_a_derived_one():
    p = load_params(PARAMS_FILE, [*EVERY_KIND, "monitoring.drift_columns=[days_since_launch]"])
    assert p.data.time_column == "application_date" and "application_date" in p.data.feature_names
    assert p.data.columns.count("application_date") == 1  # hashed and read once


def _project(tmp_path, source: str = USER_MODULE):
    (tmp_path / "params.yaml").write_text(PARAMS_FILE.read_text())
    (tmp_path / "user_features.py").write_text(source)
    return tmp_path / "params.yaml"


def test_a_user_function_runs_from_the_source_the_model_carries(tmp_path):
    p = load_params(_project(tmp_path), [*WITH_FUNCTION, "training.estimator.max_iter=20"])
    parts = training.split(demo_data.generate(3000, 3), p)
    model = training.train(parts.train, p)
    raw = frames.features(parts.holdout, p.data)
    step = features.derive_step(model)
    expected = (raw["region"].map({"north": 1.0, "south": 0.8}).fillna(0.9).to_numpy(float)
                * raw["annual_income"].to_numpy(float) / (1 + raw["loan_amount"].to_numpy(float)))
    np.testing.assert_allclose(step.transform(raw)["affordability"], expected)
    # The model carries the code: the project's file may change or go, the model answers the same.
    (tmp_path / "user_features.py").write_text(USER_MODULE.replace("0.8", "0.1"))
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(raw), model.predict_proba(raw))
    # Two models whose module has one name and different code each keep their own.
    other = training.train(parts.train, load_params(tmp_path / "params.yaml",
                                                    [*WITH_FUNCTION, "training.estimator.max_iter=20"]))
    changed = features.derive_step(pickle.loads(pickle.dumps(other))).transform(raw)["affordability"]
    south = (raw["region"] == "south").to_numpy()
    np.testing.assert_allclose(changed[south], expected[south] / 8)
    np.testing.assert_allclose(features.derive_step(again).transform(raw)["affordability"], expected)
    assert features.code_files(p.data.derived) == [str((tmp_path / "user_features.py").resolve())]


@pytest.mark.parametrize(("source", "function", "message"), [
    (None, "user_features:affordability", "data.derived.0.function: module 'user_features' should be"),
    (USER_MODULE, "user_features:afordability", "defines no 'afordability' at its top level"),
    ("def affordability(frame:\n", "user_features:affordability", "does not parse"),
    (USER_MODULE, "user_features", "data.derived.0.function: String should match pattern"),
])
def test_a_user_function_that_is_not_there_fails_at_load_naming_its_key(tmp_path, source, function, message):
    path = _project(tmp_path, source or "")
    if source is None:
        (tmp_path / "user_features.py").unlink()
    entry = f"data.derived=[{{kind: custom, name: f, function: '{function}', columns: [age]}}]"
    with pytest.raises(ConfigError) as err:
        load_params(path, [entry])
    assert message in str(err.value), str(err.value)


def test_a_user_function_must_answer_one_number_per_row(tmp_path):
    p = load_params(_project(tmp_path, "def affordability(frame):\n    return frame['region']\n"),
                    ["data.derived=[{kind: custom, name: f, function: 'user_features:affordability', "
                     "columns: [region]}]"])
    with pytest.raises(ValueError, match=r"'f': user_features:affordability must return one number per row"):
        features.from_params(p).fit_transform(frames.features(demo_data.generate(50, 1), p.data))


def test_a_change_to_the_user_function_is_a_change_to_the_training_code(tmp_path):
    from driftline.adapters.registry.training_run import lineage

    path = _project(tmp_path)
    before = lineage(tmp_path, load_params(path, [*WITH_FUNCTION]), "md5", "commit", "test")
    (tmp_path / "user_features.py").write_text(USER_MODULE.replace("0.8", "0.7"))
    after = lineage(tmp_path, load_params(path, [*WITH_FUNCTION]), "md5", "commit", "test")
    assert before.keys.train != after.keys.train and before.code != after.code


EDGE_TIMES = ["2024-03-15T22:30:00.123456-03:00", "2024-03-15T22:30:00+00:00", "2024-03-15 22:30:00Z",
              "2024-03-15T22:30:00+0100", "1950-06-01T00:00:00.000001+00:00", "2262-05-01T00:00:00+00:00",
              "2024-03-15T22:30:00.123456789+00:00", "2024-03-15", "2024-03-15T22:30:00", "2024-02-30T00:00:00+00:00",
              "2024-13-01T00:00:00+00:00", " 2024-03-15T22:30:00+00:00", "now", "03/15/2024", "", None]


@pytest.mark.parametrize("value", EDGE_TIMES)
def test_every_time_reads_as_pandas_iso_8601_parser_reads_it_alone_and_in_a_column_of_offsets(value):
    """`when` hands a column whose values all carry offsets to Arrow's parser: whatever it
    accepts must be the instant pandas reads, and whatever it refuses must go to pandas."""
    def pandas_alone(values: list) -> pd.Series:
        text = pd.Series(values, dtype="string")
        iso = text.str.match(features.ISO_DATE).fillna(False).astype(bool)
        return pd.to_datetime(text.where(iso), format="ISO8601", utc=True, errors="coerce")

    column = [value, *["2024-01-01T00:00:00.000000+00:00"] * 3]
    for values in ([value], column):
        got, expected = features.when(pd.Series(values)), pandas_alone(values)
        assert got.isna().tolist() == expected.isna().tolist(), values
        assert got[got.notna()].tolist() == expected[expected.notna()].tolist(), values


def test_a_training_tables_times_take_arrows_parser_and_read_the_same_instants():
    rng = np.random.default_rng(0)
    stamps = pd.Series(pd.to_datetime(rng.integers(-10**18, 4 * 10**18, 5000), unit="ns"),
                       index=rng.permutation(5000) + 10)  # a split's rows: any order, any labels
    stamps.iloc[::7] = pd.NaT
    text = frames._coerce(stamps, "datetime")
    # The text is what strftime writes, value by value, and it carries its offset: the fast path.
    utc = pd.to_datetime(stamps, utc=True)
    assert text.tolist() == utc.dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00").astype(object).where(
        utc.notna(), None).tolist()
    assert features._with_offsets(text.astype("string")) is not None
    read = features.when(text)
    assert read.index.equals(stamps.index) and read.tolist() == utc.dt.floor("us").tolist()  # %f keeps microseconds


def test_target_encoding_in_one_process_is_cross_fitted_on_the_folds_by_row_hash(params):
    """scikit-learn's TargetEncoder on the folds `hash_folds` gives (a row's fold is a hash of its
    features and training.seed), row for row, whatever order the rows come in: what a table held in
    partitions computes. Shuffled KFold folds depend on the rows' positions and fail both."""
    from sklearn.preprocessing import TargetEncoder

    df = demo_data.generate(3000, 4)
    x, y = frames.features(df, params.data), frames.target(df, params.data)
    step = features.from_params(params)
    got = step.fit_transform(x, y)["purpose_default_rate"].to_numpy()
    fold = features.hash_folds(x, params.training.seed)
    assert sorted(set(fold.tolist())) == list(range(features.FOLDS))
    splits = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(features.FOLDS)]
    expected = TargetEncoder(target_type="binary", cv=splits).fit_transform(x[["loan_purpose"]].astype(object), y)
    np.testing.assert_array_equal(got, expected[:, 0])

    order = np.random.default_rng(1).permutation(len(x))
    moved = features.from_params(params).fit_transform(x.iloc[order], y[order])["purpose_default_rate"]
    np.testing.assert_allclose(moved.to_numpy(), got[order], rtol=1e-12)
    # The fitted encoder keeps the folds' count, not this table's row indices (it is pickled in the model).
    assert step.learned_["purpose_default_rate"].cv == features.FOLDS
