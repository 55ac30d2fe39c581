"""`training.estimator`: every kind a user may write, and every mistake named by its dotted key
before any work (no fit, no project code run)."""

from __future__ import annotations

import sys

import pytest
import yaml

from driftline.config import ConfigError, load_params
from driftline.config.load import code_changes


@pytest.fixture
def project(tmp_path, raw_params):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "credit.py").write_text(
        "def make_model(n_estimators=100, max_depth=3):\n    raise SystemExit('never run at load')\n"
        "def anything(**params):\n    raise SystemExit('never run at load')\n")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params))
    return tmp_path


def _load(project, estimator: str, *more: str):
    return load_params(project / "params.yaml", [f"training.estimator={estimator}", *more])


def _problem(project, estimator: str, *more: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(project, estimator, *more)
    return str(info.value)


@pytest.mark.parametrize("estimator", [
    "{kind: xgboost, params: {n_estimators: 400, learning_rate: 0.05, max_depth: 6}}",
    "{kind: lightgbm, params: {n_estimators: 400, num_leaves: 31, min_child_samples: 40}, "
    "early_stopping: {rounds: 30, validation_share: 0.1}}",
    "{kind: lightgbm, params: {min_data_in_leaf: 40, feature_fraction: 0.8}}",  # LightGBM's own names
    "{kind: sklearn, class: sklearn.ensemble.ExtraTreesClassifier, params: {n_estimators: 100}}",
    "{kind: custom, factory: 'models.credit:make_model', params: {max_depth: 4}}",
    "{kind: custom, factory: 'models.credit:anything', params: {whatever: 1}, preprocessing: none}",
    "{kind: hist_gradient_boosting, max_iter: 100, params: {max_bins: 63}}",
    "{kind: random_forest, n_estimators: 50}",
])
def test_each_kind_as_a_user_writes_it(project, estimator):
    p = _load(project, estimator)
    assert p.training.estimator.kind in estimator


def test_the_sklearn_class_round_trips_under_its_yaml_key(project):
    est = _load(project, "{kind: sklearn, class: sklearn.ensemble.ExtraTreesClassifier}").training.estimator
    assert est.model_dump()["class"] == "sklearn.ensemble.ExtraTreesClassifier"
    assert type(est).model_validate(est.model_dump()) == est


@pytest.mark.parametrize(("estimator", "needle"), [
    ("{kind: lightgbm, params: {num_leafs: 31}}",
     "training.estimator.params.num_leafs: LGBMClassifier has no parameter 'num_leafs' (valid: "),
    ("{kind: xgboost, params: {random_state: 1}}",
     "training.estimator.params.random_state: driftline sets the seed from training.seed; remove it"),
    ("{kind: lightgbm, params: {n_jobs: 4}}", "training.estimator.params.n_jobs: threads come from training.n_jobs"),
    ("{kind: xgboost, params: {early_stopping_rounds: 4}}", "training.estimator.params.early_stopping_rounds: early "
     "stopping is the early_stopping key"),
    ("{kind: hist_gradient_boosting, max_iter: 100, params: {max_iter: 50}}",
     "training.estimator.params.max_iter: given both as training.estimator.max_iter and under params; keep one"),
    ("{kind: sklearn, class: subprocess.Popen}", "training.estimator.class: subprocess.Popen is not a scikit-learn "
     "estimator class"),
    ("{kind: sklearn, class: sklearn.linear_model.Ridge}",
     "training.estimator.class: sklearn.linear_model._ridge.Ridge is not a classifier, which a binary task needs"),
    ("{kind: sklearn, class: driftline.core.features.DerivedFeatures}", "training.estimator.class: 'driftline' is not "
     "an installed package"),
    ("{kind: sklearn, class: sklearn.ensemble.NoSuchForest}", "training.estimator.class: cannot import "
     "sklearn.ensemble.NoSuchForest"),
    ("{kind: ridge}", "training.estimator.kind: ridge cannot do binary; use logistic_regression"),
    ("{kind: custom, factory: 'models.credit:make_model', params: {depth: 3}}",
     "training.estimator.params.depth: models.credit:make_model takes no parameter 'depth' (it takes: n_estimators, "
     "max_depth)"),
    ("{kind: custom, factory: 'models.nowhere:make_model'}", "training.estimator.factory: module 'models.nowhere' "
     "should be"),
    ("{kind: custom, factory: 'models.credit:missing'}", "training.estimator.factory: "),
    ("{kind: catboost}", "training.estimator: kind 'catboost' is not one of"),
])
def test_a_mistake_is_named_by_its_key_before_any_work(project, estimator, needle):
    assert needle in _problem(project, estimator)


def test_the_search_space_names_params_keys_of_any_kind(project):
    space = "training.search={space: {num_leaves: {low: 4, high: 64, int: true}}}"
    assert _load(project, "{kind: lightgbm}", space).training.search.space
    problem = _problem(project, "{kind: lightgbm}", "training.search={space: {leaves: {low: 4, high: 64}}}")
    assert "training.search.space.leaves: lightgbm has no parameter 'leaves' (" in problem
    assert "num_leaves" in problem
    # A scikit-learn class checks the values a search may give before any fit.
    problem = _problem(project, "{kind: hist_gradient_boosting}",
                       "training.search={space: {max_bins: {choices: [63, 1000]}}}")
    assert "training.search.space.max_bins: 1000 is not a valid max_bins" in problem


def test_a_missing_library_names_the_package_to_install(project, monkeypatch):
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # what an environment without it answers
    problem = _problem(project, "{kind: lightgbm}")
    assert "training.estimator.kind: lightgbm needs the package lightgbm, which is not installed" in problem
    assert "uv add lightgbm" in problem


def test_a_factory_module_outside_the_project_is_refused(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "evil.py").write_text("def make_model(**params):\n    pass\n")
    (project / "evil.py").symlink_to(outside / "evil.py")
    assert "training.estimator.factory: module 'evil' resolves to" in _problem(
        project, "{kind: custom, factory: 'evil:make_model'}")


def test_the_factory_source_is_read_and_never_run_at_load(project):
    est = _load(project, "{kind: custom, factory: 'models.credit:make_model'}").training.estimator
    assert "never run at load" in est._source and est._path == str(project / "models" / "credit.py")


@pytest.mark.parametrize(("override", "changed"), [
    ("training.estimator={kind: random_forest}", ["training.estimator.kind"]),
    ("training.estimator={kind: sklearn, class: sklearn.ensemble.ExtraTreesClassifier}",
     ["training.estimator.kind", "training.estimator.class"]),
    ("training.estimator={kind: custom, factory: 'models.credit:make_model'}",
     ["training.estimator.kind", "training.estimator.factory"]),
    ("training={estimator: {kind: lightgbm}}", ["training.estimator.kind"]),
    ("training.estimator.learning_rate=0.2", []),
    ("training.seed=7", []),
])
def test_overrides_that_change_the_code_a_run_executes_are_named(project, override, changed):
    written = load_params(project / "params.yaml")
    assert code_changes(written, load_params(project / "params.yaml", [override])) == changed
