"""Estimator kinds (driftline.core.estimators): every kind fitted into the same registered shape,
seeded and threaded from training.*, bit-identical when fitted twice, early-stopped on a slice of
the training part, and a custom factory's model loadable where the project is not."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline

from driftline.config import load_params
from driftline.core import estimators, frames, model_facts, training
from driftline.core.search import cv_score, starting_values, with_values

KINDS = {
    "hist_gradient_boosting": ("{kind: hist_gradient_boosting, max_iter: 30}", "HistGradientBoostingClassifier"),
    "random_forest": ("{kind: random_forest, n_estimators: 20}", "RandomForestClassifier"),
    "logistic_regression": ("{kind: logistic_regression}", "LogisticRegression"),
    "xgboost": ("{kind: xgboost, params: {n_estimators: 30, max_depth: 4}}", "XGBClassifier"),
    "lightgbm": ("{kind: lightgbm, params: {n_estimators: 30, num_leaves: 15}}", "LGBMClassifier"),
    "sklearn": ("{kind: sklearn, class: sklearn.ensemble.ExtraTreesClassifier, params: {n_estimators: 20}}",
                "ExtraTreesClassifier"),
    "custom": ("{kind: custom, factory: 'models.credit:make_model', params: {n_estimators: 20}}",
               "GradientBoostingClassifier"),
}

FACTORY = textwrap.dedent("""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.base import BaseEstimator, ClassifierMixin


    def make_model(n_estimators=50, random_state=None):
        return GradientBoostingClassifier(n_estimators=n_estimators, max_depth=2, random_state=random_state)


    class Blend(ClassifierMixin, BaseEstimator):
        # A class of the team's own, defined only in this module: pickled by value with the model.
        def __init__(self, weight=0.5, random_state=None):
            self.weight, self.random_state = weight, random_state

        def fit(self, x, y):
            from sklearn.linear_model import LogisticRegression
            self.inner_ = LogisticRegression(max_iter=500).fit(x, y)
            self.classes_ = self.inner_.classes_
            return self

        def predict_proba(self, x):
            return self.inner_.predict_proba(x) * self.weight + (1 - self.weight) * 0.5

        def predict(self, x):
            return self.classes_[self.predict_proba(x).argmax(axis=1)]


    def blend(weight=0.5):
        return Blend(weight=weight)


    def broken(**params):
        raise RuntimeError("no model today")


    def not_a_model(**params):
        return "a string"


    def own_pipeline(max_iter=20):
        # A team's own Pipeline that does its own encoding of the raw columns.
        from sklearn.compose import make_column_selector, make_column_transformer
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OrdinalEncoder

        codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        encode = make_column_transformer((codes, make_column_selector(dtype_include=object)), remainder="passthrough")
        return make_pipeline(encode, HistGradientBoostingClassifier(max_iter=max_iter))
""")


@pytest.fixture
def project(tmp_path, raw_params):
    """A params file in a folder of its own with the team's module beside it."""
    import yaml

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    (tmp_path / "models" / "credit.py").write_text(FACTORY)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params))
    return tmp_path


def _params(project, estimator: str, *more: str):
    return load_params(project / "params.yaml", [f"training.estimator={estimator}", *more])


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_is_the_same_registered_shape_and_refits_bit_identically(project, loans, kind):
    p = _params(project, KINDS[kind][0])
    parts = training.split(loans, p)
    first, second = training.train(parts.train, p), training.train(parts.train, p)
    assert isinstance(first, FixedThresholdClassifier) and isinstance(first.estimator_, Pipeline)
    assert [name for name, _ in first.estimator_.steps] == ["derive", "preprocess", "model"]
    assert type(first.estimator_.steps[-1][1]).__name__ == KINDS[kind][1]
    x = frames.features(parts.holdout, p.data)
    np.testing.assert_array_equal(first.predict_proba(x), second.predict_proba(x))
    assert first.predict_proba(x)[:, 1].std() > 0.01  # it learned something
    params = model_facts.final_estimator(first).get_params()
    assert params.get("random_state") == p.training.seed  # the seed comes from training.seed


def test_xgboost_and_lightgbm_answer_an_unknown_category_as_a_missing_one(project, loans):
    for estimator in (KINDS["xgboost"][0], KINDS["lightgbm"][0]):
        p = _params(project, estimator)
        model = training.train(training.split(loans, p).train, p)
        x = frames.features(loans.head(30), p.data)
        unknown, missing = x.copy(), x.copy()
        unknown["home_ownership"], missing["home_ownership"] = "COOPERATIVE", None
        np.testing.assert_array_equal(model.predict_proba(unknown), model.predict_proba(missing))
        assert not np.array_equal(model.predict_proba(unknown), model.predict_proba(x))
        # Codes follow data.features' declared categories, in their order.
        encoder = model.estimator_.named_steps["preprocess"].named_transformers_["cat_home_ownership"]
        assert list(encoder.categories_[0]) == ["RENT", "MORTGAGE", "OWN", "OTHER"]


def test_native_categories_are_passed_to_each_library(project, loans):
    p = _params(project, KINDS["xgboost"][0])
    xgb = model_facts.final_estimator(training.train(training.split(loans, p).train, p))
    assert xgb.get_params()["feature_types"][:4] == ["c"] * 4 and xgb.get_params()["feature_types"][4] == "q"
    p = _params(project, KINDS["lightgbm"][0])
    lgb = model_facts.final_estimator(training.train(training.split(loans, p).train, p))
    assert lgb.booster_.dump_model()["feature_infos"]["Column_0"]["values"]  # a categorical input has values


@pytest.mark.parametrize("kind", ["hist_gradient_boosting", "xgboost", "lightgbm"])
def test_early_stopping_stops_on_a_slice_of_the_training_part_and_records_the_rounds(project, loans, kind):
    many = {"hist_gradient_boosting": "{kind: hist_gradient_boosting, max_iter: 400, learning_rate: 0.3, "
                                      "early_stopping: {rounds: 5}}",
            "xgboost": "{kind: xgboost, params: {n_estimators: 400, learning_rate: 0.3}, early_stopping: {rounds: 5}}",
            "lightgbm": "{kind: lightgbm, params: {n_estimators: 400, learning_rate: 0.3}, "
                        "early_stopping: {rounds: 5}}"}[kind]
    p = _params(project, many)
    train = training.split(loans, p).train
    model = training.train(train, p)
    rounds = model_facts.rounds_kept(model)
    assert rounds is not None and rounds < 400
    assert model_facts.fit_metrics(model) == {"best_iteration": float(rounds)}
    # The same training part gives the same stop; the validation slice is chosen by row hash, so
    # the slice (and the stop) does not depend on where the rows sit in the table.
    assert model_facts.rounds_kept(training.train(train, p)) == rounds
    est = model_facts.final_estimator(model)
    if kind == "hist_gradient_boosting":  # stopped on the slice given as X_val, not its own validation_fraction
        assert est.early_stopping is True and len(est.validation_score_) == est.n_iter_ + 1


def test_the_early_stopping_slice_is_cut_from_the_rows_given_never_others(project, loans):
    p = _params(project, "{kind: lightgbm, params: {n_estimators: 50}, early_stopping: {rounds: 5, "
                         "validation_share: 0.2}}")
    train = training.split(loans, p).train
    val = training.hash_holdout(train, p.data.columns, training._salt(p.training.seed), 0.2)
    assert 0.15 < val.mean() < 0.25
    holdout = training.hash_holdout(loans, p.data.columns, p.split.seed, p.split.test_size)
    assert not holdout[loans.index.isin(train.index[val])].any()


def test_threads_follow_training_n_jobs(project, loans):
    p = _params(project, KINDS["lightgbm"][0], "training.n_jobs=2")
    assert model_facts.final_estimator(training.train(training.split(loans, p).train, p)).n_jobs == 2
    p = _params(project, KINDS["xgboost"][0], "training.n_jobs=2")
    assert model_facts.final_estimator(training.train(training.split(loans, p).train, p)).n_jobs == 2


class _ThreadProbe(ClassifierMixin, BaseEstimator):
    """Records the OpenMP threads it was fitted under."""

    def fit(self, x, y):
        from threadpoolctl import threadpool_info

        self.threads_ = {i["user_api"]: i["num_threads"] for i in threadpool_info()}
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, x):
        return np.full((len(x), 2), 0.5)


def test_a_fit_runs_under_training_n_jobs_threads(project, loans):
    p = _params(project, KINDS["hist_gradient_boosting"][0], "training.n_jobs=2")
    pipeline = training.build_pipeline(p)
    pipeline.steps[-1] = ("model", _ThreadProbe())
    x, y = frames.features(loans, p.data), frames.target(loans, p.data)
    fitted = training._fit(pipeline, x, y, loans, p)
    assert fitted.steps[-1][1].threads_.get("openmp") == 2  # the unit session runs with 1


def test_a_search_trial_runs_on_one_thread_unless_n_jobs_says_otherwise(project, loans):
    p = _params(project, KINDS["lightgbm"][0])
    assert p.training.n_jobs is None  # the final fit: the library's default
    score = cv_score(training.split(loans, p).train, p, {"num_leaves": 7}, 2)
    assert 0.5 < score < 1


def test_the_search_sets_params_keys_and_starts_from_the_written_estimator(project):
    p = _params(project, "{kind: lightgbm, params: {n_estimators: 30, num_leaves: 15}}",
                "training.search={space: {num_leaves: {low: 4, high: 40, int: true}, "
                "min_child_samples: {low: 5, high: 50, int: true}}}")
    # num_leaves as written, min_child_samples at LightGBM's own default: the written estimator.
    assert starting_values(p) == {"num_leaves": 15, "min_child_samples": 20}
    tuned = with_values(p, {"num_leaves": 9, "min_child_samples": 30}).training.estimator
    assert tuned.params == {"n_estimators": 30, "num_leaves": 9, "min_child_samples": 30}
    flat = _params(project, "{kind: hist_gradient_boosting, max_iter: 30}")
    assert with_values(flat, {"max_iter": 10, "max_bins": 63}).training.estimator.max_iter == 10
    assert with_values(flat, {"max_iter": 10, "max_bins": 63}).training.estimator.params == {"max_bins": 63}


def test_a_custom_factorys_model_loads_where_the_project_cannot_be_imported(project, loans, tmp_path_factory):
    p = _params(project, "{kind: custom, factory: 'models.credit:blend', params: {weight: 0.8}}")
    model = training.train(training.split(loans, p).train, p)
    x = frames.features(loans.head(50), p.data)
    blob = tmp_path_factory.mktemp("elsewhere") / "model.pkl"
    import cloudpickle

    blob.write_bytes(cloudpickle.dumps(model))
    probe = ("import pickle, sys, numpy as np, pandas as pd; "
             "m = pickle.load(open(sys.argv[1], 'rb')); x = pd.read_pickle(sys.argv[2]); "
             "assert 'models' not in sys.modules; np.save(sys.argv[3], m.predict_proba(x))")
    x.to_pickle(blob.parent / "x.pkl")
    subprocess.run([sys.executable, "-c", probe, str(blob), str(blob.parent / "x.pkl"), str(blob.parent / "out.npy")],
                   cwd=blob.parent, check=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ""})
    np.testing.assert_array_equal(np.load(blob.parent / "out.npy"), model.predict_proba(x))
    assert training.code_files(p) == [str(project / "models" / "credit.py")]


@pytest.mark.parametrize(("factory", "needle"), [
    ("broken", "custom: the factory models.credit:broken raised RuntimeError: no model today"),
    ("not_a_model", "returned a str, which has no fit, predict, get_params, set_params"),
])
def test_a_failing_factory_is_one_sentence_naming_the_kind_and_the_cause(project, loans, factory, needle):
    p = _params(project, f"{{kind: custom, factory: 'models.credit:{factory}'}}")
    with pytest.raises(estimators.EstimatorError, match="custom") as info:
        training.train(training.split(loans, p).train, p)
    assert needle in str(info.value)


def test_an_estimator_that_fails_to_fit_names_the_kind_and_the_cause(project, loans):
    p = _params(project, "{kind: lightgbm, params: {n_estimators: 5, objective: no_such_objective}}")
    with pytest.raises(estimators.EstimatorError, match=r"^lightgbm: fitting LGBMClassifier failed: \w+"):
        training.train(training.split(loans, p).train, p)


def test_libraries_and_native_importance_are_read_from_the_fitted_model(project, loans):
    p = _params(project, KINDS["xgboost"][0])
    model = training.train(training.split(loans, p).train, p)
    libs = model_facts.libraries(model)
    assert "xgboost-cpu" in libs and "scikit-learn" in libs and "driftline" not in libs
    names, values, what = model_facts.native_importance(model)
    assert len(names) == len(values) and "credit_score" in names and "XGBClassifier" in what
    from driftline.adapters.registry.model_logging import pip_requirements

    assert f"xgboost-cpu=={libs['xgboost-cpu']}" in pip_requirements(model)
    p = _params(project, KINDS["hist_gradient_boosting"][0])
    assert model_facts.native_importance(training.train(training.split(loans, p).train, p)) is None


def test_preprocessing_none_hands_the_estimator_the_raw_and_derived_columns(project, loans):
    p = _params(project, "{kind: custom, factory: 'models.credit:own_pipeline', preprocessing: none}")
    model = training.train(training.split(loans, p).train, p)
    assert [name for name, _ in model.estimator_.steps] == ["derive", "model"]
    team = model_facts.final_estimator(model)
    assert "loan_to_income" in list(team.feature_names_in_) and "region" in list(team.feature_names_in_)
    # driftline seeded the team's Pipeline down to its estimator.
    assert team.get_params()["histgradientboostingclassifier__random_state"] == p.training.seed


def test_a_pickled_model_of_each_new_kind_predicts_the_same(project, loans):
    for kind in ("xgboost", "lightgbm"):
        p = _params(project, KINDS[kind][0])
        model = training.train(training.split(loans, p).train, p)
        x = frames.features(loans.head(200), p.data)
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(x), model.predict_proba(x))


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm"])
def test_multiclass_labels_as_text_and_regression(project, multiclass_case, regression_case, kind):
    estimator = KINDS[kind][0]
    p, df = multiclass_case
    p = p.model_copy(update={"training": _params(project, estimator).training})
    model = training.train(training.split(df, p).train, p)
    x = frames.features(df.head(100), p.data)
    assert list(model.classes_) == ["high", "low", "medium"]
    assert set(model.predict(x)) <= {"high", "low", "medium"}
    proba = model.predict_proba(x)
    np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)], model.predict(x))
    p, df = regression_case
    p = p.model_copy(update={"training": _params(project, estimator).training})
    model = training.train(training.split(df, p).train, p)
    assert model.predict(frames.features(df.head(100), p.data)).std() > 0
