"""Holdout metrics, slices and behavioural tests.

Behavioural tests are pure functions of a model's scores, so most tests here use small fake
models whose dependence on each feature is known by construction.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from driftline.core import demo_data, evaluation, frames, rollout, slices, training
from driftline.core.evaluation import Predictions


class ScoreModel:
    """A binary classifier whose P(class 1) is `score(x)`: the smallest thing `predict` accepts."""

    classes_ = np.array([0, 1])

    def __init__(self, score: Callable[[pd.DataFrame], np.ndarray]):
        self.score = score

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        s = np.asarray(self.score(x), dtype="float64")
        return np.column_stack([1 - s, s])


def _sigmoid(z):
    return 1 / (1 + np.exp(-np.asarray(z, dtype="float64")))


def _features(loans, params) -> pd.DataFrame:
    return frames.features(loans, params.data)


# --- metrics --------------------------------------------------------------------------------------


def test_binary_metrics_match_sklearn_and_use_the_decision_threshold(params):
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    score = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.6, 0.9, 0.05])
    pred = evaluation.predict(ScoreModel(lambda x: score), pd.DataFrame(index=range(8)), params)
    # params.yaml's decision threshold is 0.3, so 0.35 and 0.4 are positive.
    assert params.evaluation.decision_threshold == 0.3
    np.testing.assert_array_equal(pred.labels, [0, 1, 1, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(pred.score, score)

    m = evaluation.metrics(y, pred, "binary")
    # TP 3, FP 2, FN 1, TN 2
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred.labels))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred.labels))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))
    assert m["roc_auc"] == pytest.approx(12 / 16)  # 12 of 16 positive-negative pairs ordered right


def test_binary_metrics_with_string_classes(params):
    y = np.array(["no", "yes", "yes", "no"])
    model = ScoreModel(lambda x: np.array([0.2, 0.7, 0.1, 0.9]))
    model.classes_ = np.array(["no", "yes"])
    pred = evaluation.predict(model, pd.DataFrame(index=range(4)), params)
    m = evaluation.metrics(y, pred, "binary")
    assert m["recall"] == pytest.approx(0.5)
    assert m["precision"] == pytest.approx(0.5)
    assert m["roc_auc"] == pytest.approx(0.25)


def test_roc_auc_is_nan_when_the_holdout_has_one_class(params):
    pred = evaluation.predict(ScoreModel(lambda x: np.array([0.2, 0.7])), pd.DataFrame(index=range(2)), params)
    assert np.isnan(evaluation.metrics(np.array([1, 1]), pred, "binary")["roc_auc"])


class ThresholdModel(ScoreModel):
    """A ScoreModel that carries its own decision threshold, as a `FixedThresholdClassifier` does."""

    def __init__(self, score, threshold, pos_label=None):
        super().__init__(score)
        self.threshold, self.pos_label = threshold, pos_label


SCORES = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.6, 0.9, 0.05])


def test_a_model_with_its_own_threshold_is_scored_at_it(params):
    # params.yaml says 0.3; the model was gated (and serves) at 0.5.
    pred = evaluation.predict(ThresholdModel(lambda x: SCORES, 0.5), pd.DataFrame(index=range(8)), params)
    np.testing.assert_array_equal(pred.labels, [0, 0, 0, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(pred.score, SCORES)


def test_a_model_with_its_own_positive_class_decides_for_it(params):
    # Thresholding P(class 0) at 0.5 is what the model's predict does; the score stays P(class 1).
    model = ThresholdModel(lambda x: SCORES, 0.5, pos_label=0)
    pred = evaluation.predict(model, pd.DataFrame(index=range(8)), params)
    np.testing.assert_array_equal(pred.labels, np.where(1 - SCORES >= 0.5, 0, 1))
    np.testing.assert_array_equal(pred.score, SCORES)


def test_a_trained_champion_keeps_its_threshold_under_new_params(make_params, loans):
    old = make_params("training.estimator={kind: logistic_regression}", "evaluation.decision_threshold=0.6")
    new = make_params("training.estimator={kind: logistic_regression}", "evaluation.decision_threshold=0.2")
    s = training.split(loans, old)
    champion = training.train(s.train, old)
    x = _features(s.holdout, new)
    pred = evaluation.predict(champion, x, new)
    np.testing.assert_array_equal(pred.labels, champion.predict(x))
    np.testing.assert_array_equal(pred.labels, (pred.score >= 0.6).astype(int))
    assert (pred.score >= 0.2).sum() > (pred.score >= 0.6).sum()  # the new threshold would differ
    # A bare pipeline has no threshold of its own: the params decide.
    bare = champion.estimator_
    assert getattr(bare, "threshold", None) is None
    np.testing.assert_array_equal(evaluation.predict(bare, x, new).labels, (pred.score >= 0.2).astype(int))


@pytest.mark.parametrize(
    ("classes", "positive_class", "index"),
    [
        ([0, 1], None, 1),
        (["no", "yes"], None, 1),
        ([0, 1], 0, 0),
        (np.array([0, 1]), 1, 1),
        (np.array(["0", "1"]), 1, 1),        # YAML int, text labels
        (np.array([0, 1]), "0", 0),          # YAML text, integer labels
        (np.array([0.0, 1.0]), 1, 1),        # a float target column
        (np.array(["bad", "good"], dtype=object), "bad", 0),
    ],
)
def test_positive_index(make_params, classes, positive_class, index):
    value = "null" if positive_class is None else repr(positive_class)
    p = make_params(f"data.positive_class={value}")
    assert evaluation.positive_index(classes, p) == index


def test_positive_index_names_the_key_when_the_class_is_unknown(make_params):
    p = make_params("data.positive_class=default")
    with pytest.raises(ValueError, match=r"data\.positive_class: 'default' is not one of the classes \(0, 1\)"):
        evaluation.positive_index(np.array([0, 1]), p)


def test_metrics_are_about_the_positive_class(make_params):
    p = make_params("data.positive_class=0")
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    pred = evaluation.predict(ScoreModel(lambda x: SCORES), pd.DataFrame(index=range(8)), p)
    assert pred.positive == 0
    np.testing.assert_array_equal(pred.score, 1 - SCORES)  # P(class 0)
    m = evaluation.metrics(y, pred, "binary")
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred.labels, pos_label=0))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred.labels, pos_label=0))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred.labels, pos_label=0))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y == 0, 1 - SCORES))
    assert m["recall"] != pytest.approx(skm.recall_score(y, pred.labels, pos_label=1))


def test_slice_metrics_are_about_the_positive_class():
    y = np.array([1, 1, 0, 0, 0])
    labels = np.array([1, 0, 0, 0, 1])
    proba = np.column_stack([1 - labels, labels]).astype(float)
    for positive, expected in [(1, {"selection_rate": 2 / 5, "recall": 1 / 2, "precision": 1 / 2}),
                               (0, {"selection_rate": 3 / 5, "recall": 2 / 3, "precision": 2 / 3})]:
        pred = Predictions(labels, proba, np.array([0, 1]), positive)
        for metric, value in expected.items():
            assert slices.slice_metric(y, pred, metric, "binary") == pytest.approx(value), (positive, metric)


def test_score_is_the_probability_of_the_positive_class(make_params):
    x = pd.DataFrame(index=range(8))
    assert np.array_equal(evaluation.predict(ScoreModel(lambda x: SCORES), x, make_params()).score, SCORES)
    assert np.array_equal(evaluation.predict(ScoreModel(lambda x: SCORES), x,
                                             make_params("data.positive_class=0")).score, 1 - SCORES)


def test_the_one_score_rule_answers_what_the_four_score_functions_did():
    """`row_scores` replaced `Predictions.score`'s own rule, `evaluation.score`, the server's
    `live_scores` and the rollout analysis's `_score_of`: the old rules, written out, agree with it."""
    rng = np.random.default_rng(0)
    two = rng.dirichlet([1, 1], size=50)
    three = rng.dirichlet([1, 1, 1], size=50)
    values = rng.normal(size=50)
    for positive in (0, 1):  # Predictions.score and evaluation.score: the configured positive column
        np.testing.assert_array_equal(evaluation.row_scores(two, positive=positive), two[:, positive])
    np.testing.assert_array_equal(evaluation.row_scores(two), two[:, -1])  # live_scores: the last class
    np.testing.assert_array_equal(evaluation.row_scores(three), three.max(axis=1))
    np.testing.assert_array_equal(evaluation.row_scores(None, values), values.astype("float64"))
    for row in [*two[:5], *three[:5]]:  # _score_of, on one answer's {class: probability}
        answer = {f"c{i}": float(v) for i, v in enumerate(row)}
        old = list(answer.values())[-1] if len(answer) == 2 else max(answer.values())
        assert rollout._score_of(answer) == old


def test_score_of_multiclass_and_regression_models(multiclass_case, regression_case):
    x = pd.DataFrame(index=range(2))

    class Three:
        classes_ = np.array(["a", "b", "c"])

        def predict_proba(self, x):
            return np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])

    np.testing.assert_array_equal(evaluation.predict(Three(), x, multiclass_case[0]).score, [0.5, 0.6])

    class Value:
        def predict(self, x):
            return np.array([1, 2])

    result = evaluation.predict(Value(), x, regression_case[0]).score
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, [1.0, 2.0])


def test_multiclass_metrics_match_sklearn(multiclass_case):
    p, _ = multiclass_case
    y = np.array(["a", "b", "c", "a", "b", "c", "a", "b"])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.5, 0.3], [0.4, 0.4, 0.2],
                      [0.3, 0.3, 0.4], [0.1, 0.1, 0.8], [0.5, 0.3, 0.2], [0.2, 0.7, 0.1]])

    class Model:
        classes_ = np.array(["a", "b", "c"])

        def predict_proba(self, x):
            return proba

    pred = evaluation.predict(Model(), pd.DataFrame(index=range(8)), p)
    # argmax; the tie in row 4 goes to the first class
    np.testing.assert_array_equal(pred.labels, ["a", "b", "b", "a", "c", "c", "a", "b"])
    np.testing.assert_allclose(pred.score, proba.max(axis=1))
    m = evaluation.metrics(y, pred, "multiclass")
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred.labels, average="macro"))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred.labels, average="macro"))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred.labels, average="macro"))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))


def test_regression_metrics_match_sklearn():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = Predictions(np.array([1.5, 2.0, 2.0, 5.0]))
    m = evaluation.metrics(y, pred, "regression")
    assert m == pytest.approx({"rmse": 0.75, "mae": 0.625, "r2": 0.55})
    assert m["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred.labels))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred.labels))
    np.testing.assert_array_equal(pred.score, pred.labels)


# --- slices ----------------------------------------------------------------------------------------


def _slice_case():
    holdout = pd.DataFrame({"gender": ["f", "f", "f", "f", "m", "m", "m", "x"]})
    y = np.array([1, 1, 1, 0, 1, 1, 0, 1])
    labels = np.array([1, 0, 1, 0, 1, 1, 1, 0])
    return holdout, y, Predictions(labels, np.column_stack([1 - labels, labels]), np.array([0, 1]))


def test_slices_compute_per_group_values_and_the_gap(make_params):
    p = make_params("evaluation.fairness=[{attribute: gender, metric: recall, max_gap: 0.2, min_group_size: 2}]")
    (result,) = slices.slices(*_slice_case(), p)
    assert result.groups["f"] == pytest.approx({"n": 4, "recall": 2 / 3})
    assert result.groups["m"] == pytest.approx({"n": 3, "recall": 1.0})
    assert result.groups["x"] == pytest.approx({"n": 1, "recall": 0.0})
    # The one-row group is reported but too small to count toward the gap.
    assert result.gap == pytest.approx(1 / 3)
    assert result.passed is False


@pytest.mark.parametrize("min_group_size", [5, 100])
def test_a_gate_with_fewer_than_two_large_groups_fails(make_params, min_group_size):
    p = make_params("evaluation.fairness=[{attribute: gender, metric: recall, max_gap: 1, "
                    f"min_group_size: {min_group_size}}}]")
    (result,) = slices.slices(*_slice_case(), p)
    assert result.groups["f"]["n"] == 4  # groups are still reported
    assert result.evaluable is False
    assert np.isnan(result.gap)
    assert result.passed is False  # max_gap 1 would pass anything: no evidence is not a pass


def test_one_large_group_is_not_enough(make_params):
    p = make_params("evaluation.fairness=[{attribute: gender, metric: recall, max_gap: 1, min_group_size: 4}]")
    (result,) = slices.slices(*_slice_case(), p)
    assert list(result.counted) == ["f"]
    assert result.passed is False


def test_the_demo_fairness_gate_can_be_evaluated_on_the_test_data(params):
    # The integration tests train on 6,000 rows: each counted group needs min_group_size rows in
    # the 20% holdout, or the gate fails as not evaluable.
    (gate,) = params.evaluation.fairness
    for seed in (7, 11):
        holdout = training.split(demo_data.generate(6000, seed), params).holdout
        counts = holdout[gate.attribute].value_counts()
        assert counts["female"] >= gate.min_group_size + 100, (seed, counts.to_dict())
        assert counts["male"] >= gate.min_group_size + 100, (seed, counts.to_dict())


def test_small_groups_count_when_the_minimum_allows(make_params):
    p = make_params("evaluation.fairness=[{attribute: gender, metric: recall, max_gap: 0.2, min_group_size: 1}]")
    (result,) = slices.slices(*_slice_case(), p)
    assert result.gap == pytest.approx(1.0)


def test_gap_within_the_limit_passes(make_params):
    p = make_params("evaluation.fairness=[{attribute: gender, metric: accuracy, max_gap: 0.5, min_group_size: 2}]")
    (result,) = slices.slices(*_slice_case(), p)
    assert result.groups["f"]["accuracy"] == pytest.approx(3 / 4)
    assert result.groups["m"]["accuracy"] == pytest.approx(2 / 3)
    assert result.gap == pytest.approx(1 / 12)
    assert result.passed is True


def test_selection_rate_and_missing_groups(make_params):
    p = make_params(
        "evaluation.fairness=[{attribute: gender, metric: selection_rate, max_gap: 1, min_group_size: 1}]")
    holdout, y, pred = _slice_case()
    holdout.loc[7, "gender"] = None
    (result,) = slices.slices(holdout, y, pred, p)
    assert set(result.groups) == {"f", "m", "(missing)"}
    assert result.groups["f"]["selection_rate"] == pytest.approx(0.5)
    assert result.groups["m"]["selection_rate"] == pytest.approx(1.0)


def test_regression_slices_use_mean_absolute_error(regression_case):
    p, _ = regression_case
    holdout = pd.DataFrame({"gender": ["f", "f", "m", "m"]})
    y = np.array([0.10, 0.20, 0.10, 0.20])
    pred = Predictions(np.array([0.11, 0.19, 0.15, 0.25]))
    (result,) = slices.slices(holdout, y, pred, p)
    assert result.groups["f"]["mae"] == pytest.approx(0.01)
    assert result.groups["m"]["mae"] == pytest.approx(0.05)
    assert result.gap == pytest.approx(0.04)
    assert result.passed is False  # max_gap 0.01


# --- behavioural tests ----------------------------------------------------------------------------------


def _dti(x: pd.DataFrame) -> np.ndarray:
    return x["debt_to_income"].fillna(0.3).to_numpy()


def _run(model, x: pd.DataFrame, p, kind: str):
    """Run every behavioural test in `p` and return the one of `kind`."""
    results = evaluation.behavioral(model, x, frames.typical_record(x, p.data), p)
    assert [r.name for r in results] == [t.name for t in p.evaluation.behavioral]
    (r,) = [r for r in results if r.kind == kind]
    return r


def test_invariance_passes_for_a_model_that_ignores_the_feature(params, loans):
    x = _features(loans, params)
    model = ScoreModel(lambda x: _sigmoid(4 * _dti(x) - 2))
    r = _run(model, x, params, "invariance")
    assert r.passed is True
    assert r.value == 0.0
    assert r.limit == 0.02


def test_invariance_fails_for_a_model_that_depends_on_the_feature(params, loans):
    x = _features(loans, params)
    model = ScoreModel(lambda x: 0.2 + 0.3 * (x["application_channel"] == "web").to_numpy())
    r = _run(model, x, params, "invariance")
    assert r.passed is False
    assert r.value > 0.1
    assert "application_channel" in r.detail


def test_directional_passes_when_the_score_moves_the_right_way(params, loans):
    x = _features(loans, params)
    r = _run(ScoreModel(lambda x: _sigmoid(4 * _dti(x) - 2)), x, params, "directional")
    assert r.passed is True
    assert r.value == 0.0


def test_directional_detects_violations(params, loans):
    x = _features(loans, params)
    r = _run(ScoreModel(lambda x: _sigmoid(2 - 4 * _dti(x))), x, params, "directional")
    assert r.passed is False
    # Every row with a debt-to-income value moves the wrong way (about 2% are missing and do not move).
    assert 0.95 < r.value < 1.0
    assert "debt_to_income should increase" in r.detail


def test_directional_ignores_moves_within_the_tolerance(params, loans):
    x = _features(loans, params)
    # Slightly decreasing: 0.2 more debt lowers the score by 0.005, under the 0.01 tolerance.
    model = ScoreModel(lambda x: 0.5 - 0.025 * _dti(x))
    assert _run(model, x, params, "directional").passed is True


def test_directional_counts_a_share_of_violating_rows(make_params, loans):
    p = make_params("evaluation.behavioral.1.max_violation_rate=0.3")
    x = _features(loans, p)
    # Wrong way only for the web channel (about 55% of rows).
    def score(x):
        sign = np.where(x["application_channel"] == "web", -1, 1)
        return _sigmoid(sign * (4 * _dti(x) - 2))

    model = ScoreModel(score)
    r = _run(model, x, p, "directional")
    assert 0.45 < r.value < 0.65
    assert r.passed is False


def _credit_model() -> ScoreModel:
    return ScoreModel(lambda x: _sigmoid((600 - x["credit_score"].to_numpy()) / 30))


def test_minimum_functionality_passes_the_textbook_cases(params, loans):
    x = _features(loans, params)
    r = _run(_credit_model(), x, params, "minimum_functionality")
    assert r.passed is True
    assert r.value == 1.0
    assert r.failures == []


def test_minimum_functionality_counts_failed_cases(make_params, loans):
    cases = ("[{record: {credit_score: 820}, expect_max: 0.1},"   # score ~0.001: passes
             " {record: {credit_score: 480}, expect: 1},"          # score ~0.98, label 1: passes
             " {record: {credit_score: 700}, expect: 1},"          # label 0: fails
             " {record: {credit_score: 620}, expect_min: 0.5}]")   # score ~0.34: fails
    p = make_params(f"evaluation.behavioral.2.cases={cases}", "evaluation.behavioral.2.min_pass_rate=0.75")
    x = _features(loans, p)
    r = _run(_credit_model(), x, p, "minimum_functionality")
    assert r.value == pytest.approx(0.5)
    assert r.passed is False
    assert len(r.failures) == 2
    assert r.failures[0].startswith("case 3 ")
    assert r.failures[1].startswith("case 4 ")
    assert "2 of 4 hand-written cases" in r.detail


def test_minimum_functionality_with_a_lower_pass_rate(make_params, loans):
    cases = "[{record: {credit_score: 820}, expect: 0}, {record: {credit_score: 700}, expect: 1}]"
    p = make_params(f"evaluation.behavioral.2.cases={cases}", "evaluation.behavioral.2.min_pass_rate=0.5")
    x = _features(loans, p)
    r = _run(_credit_model(), x, p, "minimum_functionality")
    assert r.value == pytest.approx(0.5)
    assert r.passed is True


# --- evaluate: everything together on a real model -------------------------------------------------------


def test_evaluate_a_trained_model(make_params, loans):
    p = make_params("training.estimator={kind: logistic_regression}")
    s = training.split(loans, p)
    model = training.train(s.train, p)
    result = evaluation.evaluate(model, s.train, s.holdout, p)
    assert set(result.metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert result.metrics["roc_auc"] > 0.75
    assert [r.attribute for r in result.slices] == ["gender"]
    assert set(result.slices[0].groups) == {"female", "male", "nonbinary"}
    assert [r.name for r in result.behavioral] == [b.name for b in p.evaluation.behavioral]
    assert len(result.holdout.labels) == len(s.holdout)
