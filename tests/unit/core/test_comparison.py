"""Champion vs challenger: weighted metrics equal sklearn's, and the paired bootstrap decides sensibly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn import metrics as skm

from driftline.core.comparison import paired_bootstrap, weighted_metric
from driftline.core.evaluation import Predictions

N = 600


def _binary(rng: np.random.Generator, strength: float = 0.35, classes=(0, 1)):
    """Labels and a classifier's predictions; scores are rounded to two decimals, so they tie."""
    classes = np.array(classes)
    y_idx = rng.integers(0, 2, N)
    score = np.round(np.clip(strength * y_idx + rng.random(N) * (1 - strength), 0, 1), 2)
    labels = classes[(score >= 0.5).astype(int)]
    return classes[y_idx], Predictions(labels, np.column_stack([1 - score, score]), classes)


def _multiclass(rng: np.random.Generator):
    classes = np.array(["low", "medium", "high"])
    y_idx = rng.integers(0, 3, N)
    proba = rng.dirichlet([1, 1, 1], N)
    proba[np.arange(N), y_idx] += rng.random(N) * 0.6  # better than chance
    proba /= proba.sum(axis=1, keepdims=True)
    return classes[y_idx], Predictions(classes[proba.argmax(axis=1)], proba, classes)


def _regression(rng: np.random.Generator, noise: float = 0.5):
    y = rng.normal(3.0, 1.0, N)
    return y, Predictions(y + rng.normal(0, noise, N))


def _sk_binary(metric, y, pred, w=None):
    pos = pred.classes[1]
    if metric == "roc_auc":
        return skm.roc_auc_score(y == pos, pred.proba[:, 1], sample_weight=w)
    if metric == "accuracy":
        return skm.accuracy_score(y, pred.labels, sample_weight=w)
    fn = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[metric]
    return fn(y, pred.labels, pos_label=pos, sample_weight=w)


def _sk_multiclass(metric, y, pred, w=None):
    if metric == "accuracy":
        return skm.accuracy_score(y, pred.labels, sample_weight=w)
    fn = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[metric]
    return fn(y, pred.labels, average="macro", sample_weight=w)


def _sk_regression(metric, y, pred, w=None):
    fn = {"rmse": skm.root_mean_squared_error, "mae": skm.mean_absolute_error, "r2": skm.r2_score}[metric]
    return fn(y, pred.labels, sample_weight=w)


# --- weighted metrics -----------------------------------------------------------------------------


@pytest.mark.parametrize("classes", [(0, 1), ("no", "yes")])
@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1", "roc_auc"])
def test_binary_weighted_metric_with_unit_weights_equals_sklearn(metric, classes):
    y, pred = _binary(np.random.default_rng(0), classes=classes)
    fn = weighted_metric(metric, y, pred, "binary")
    assert fn(np.ones(N)) == pytest.approx(_sk_binary(metric, y, pred), rel=1e-12)


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1"])
def test_multiclass_weighted_metric_with_unit_weights_equals_sklearn(metric):
    y, pred = _multiclass(np.random.default_rng(1))
    fn = weighted_metric(metric, y, pred, "multiclass")
    assert fn(np.ones(N)) == pytest.approx(_sk_multiclass(metric, y, pred), rel=1e-12)


@pytest.mark.parametrize("metric", ["rmse", "mae", "r2"])
def test_regression_weighted_metric_with_unit_weights_equals_sklearn(metric):
    y, pred = _regression(np.random.default_rng(2))
    fn = weighted_metric(metric, y, pred, "regression")
    assert fn(np.ones(N)) == pytest.approx(_sk_regression(metric, y, pred), rel=1e-12)


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize(
    ("task", "metric"),
    [("binary", "roc_auc"), ("binary", "accuracy"), ("binary", "f1"), ("multiclass", "f1"),
     ("regression", "rmse"), ("regression", "mae"), ("regression", "r2")],
)
def test_weighted_metric_equals_sklearn_with_sample_weight(task, metric, seed):
    rng = np.random.default_rng(seed)
    y, pred = {"binary": _binary, "multiclass": _multiclass, "regression": _regression}[task](rng)
    w = rng.integers(0, 5, N).astype("float64")  # bootstrap-like: some rows drop out, some repeat
    reference = {"binary": _sk_binary, "multiclass": _sk_multiclass, "regression": _sk_regression}[task]
    fn = weighted_metric(metric, y, pred, task)
    assert fn(w) == pytest.approx(reference(metric, y, pred, w), rel=1e-12)
    # Weights are not ignored: they change the value.
    assert fn(w) != pytest.approx(fn(np.ones(N)), rel=1e-9)


def test_integer_weights_equal_repeating_rows():
    rng = np.random.default_rng(5)
    y, pred = _binary(rng)
    w = rng.integers(0, 4, N)
    rows = np.repeat(np.arange(N), w)
    repeated = Predictions(pred.labels[rows], pred.proba[rows], pred.classes)
    for metric in ("roc_auc", "f1"):
        expected = weighted_metric(metric, y[rows], repeated, "binary")(np.ones(len(rows)))
        assert weighted_metric(metric, y, pred, "binary")(w.astype("float64")) == pytest.approx(expected)


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1", "roc_auc"])
def test_binary_weighted_metric_follows_the_positive_class(metric):
    rng = np.random.default_rng(11)
    y, pred = _binary(rng)
    negative_first = dataclasses.replace(pred, positive=0)
    w = rng.integers(0, 4, N).astype("float64")
    fn = weighted_metric(metric, y, negative_first, "binary")
    if metric == "roc_auc":
        expected = skm.roc_auc_score(y == 0, pred.proba[:, 0], sample_weight=w)
    elif metric == "accuracy":
        expected = skm.accuracy_score(y, pred.labels, sample_weight=w)
    else:
        sk = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[metric]
        expected = sk(y, pred.labels, pos_label=0, sample_weight=w)
        assert expected != pytest.approx(sk(y, pred.labels, pos_label=1, sample_weight=w))
    assert fn(w) == pytest.approx(expected, rel=1e-12)


def test_roc_auc_is_binary_only():
    y, pred = _multiclass(np.random.default_rng(6))
    with pytest.raises(ValueError, match="binary tasks only"):
        weighted_metric("roc_auc", y, pred, "multiclass")


# --- paired bootstrap -----------------------------------------------------------------------------------


def _compare(metric, y, challenger, champion, task, seed=0, samples=300, margin=0.01):
    return paired_bootstrap(metric, y, challenger, champion, task, samples=samples, confidence=0.95,
                            margin=margin, seed=seed)


def test_identical_predictions_give_a_zero_width_interval_and_pass():
    y, pred = _binary(np.random.default_rng(7))
    c = _compare("roc_auc", y, pred, pred, "binary")
    assert (c.delta, c.ci_low, c.ci_high) == (0.0, 0.0, 0.0)
    assert c.challenger == c.champion
    assert c.passed is True


def test_a_clearly_worse_challenger_fails():
    rng = np.random.default_rng(8)
    y, champion = _binary(rng)
    noise = rng.random(N)
    challenger = Predictions((noise >= 0.5).astype(int), np.column_stack([1 - noise, noise]), np.array([0, 1]))
    c = _compare("roc_auc", y, challenger, champion, "binary")
    assert c.delta < -0.1
    assert c.ci_low <= c.delta <= c.ci_high
    assert c.ci_high < 0
    assert c.passed is False
    assert "worse than the champion" in c.summary()
    assert "not worse" not in c.summary()


def test_a_clearly_better_challenger_passes():
    rng = np.random.default_rng(9)
    y, champion = _binary(rng, strength=0.2)
    _, challenger = _binary(np.random.default_rng(9), strength=0.6)  # same labels, sharper scores
    c = _compare("roc_auc", y, challenger, champion, "binary")
    assert c.ci_low > 0
    assert c.passed is True
    assert "not worse than the champion" in c.summary()


def test_the_margin_decides_a_slightly_worse_challenger():
    rng = np.random.default_rng(10)
    y, champion = _binary(rng)
    # Flip a few correct labels to wrong ones: about 2 points less accurate.
    labels = champion.labels.copy()
    flip = np.flatnonzero(labels == y)[:12]
    labels[flip] = 1 - labels[flip]
    challenger = dataclasses.replace(champion, labels=labels)
    c = _compare("accuracy", y, challenger, champion, "binary")
    assert c.delta == pytest.approx(-12 / N)
    assert c.ci_high < 0  # paired: the same rows in every replicate, so the drop is certain
    assert _compare("accuracy", y, challenger, champion, "binary", margin=0.01).passed is False
    assert _compare("accuracy", y, challenger, champion, "binary", margin=0.05).passed is True


def test_the_bootstrap_is_deterministic_for_a_seed():
    rng = np.random.default_rng(11)
    y, champion = _binary(rng)
    _, challenger = _binary(rng)
    a = _compare("roc_auc", y, challenger, champion, "binary", seed=3)
    b = _compare("roc_auc", y, challenger, champion, "binary", seed=3)
    c = _compare("roc_auc", y, challenger, champion, "binary", seed=4)
    assert a == b
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert a.delta == c.delta  # the point estimate does not depend on the resampling


@pytest.mark.parametrize("metric", ["rmse", "mae"])
def test_lower_is_better_metrics_are_oriented_so_better_is_positive(metric):
    rng = np.random.default_rng(12)
    y, champion = _regression(rng, noise=0.8)
    challenger = Predictions(y + rng.normal(0, 0.2, N))
    c = _compare(metric, y, challenger, champion, "regression")
    assert c.challenger < c.champion  # smaller error
    assert c.delta == pytest.approx(c.champion - c.challenger)
    assert c.delta > 0
    assert c.ci_low > 0
    assert c.passed is True
    # And the other way round: the worse model is the challenger now.
    reverse = _compare(metric, y, champion, challenger, "regression")
    assert reverse.delta < 0
    assert reverse.passed is False


def test_r2_is_higher_is_better():
    rng = np.random.default_rng(13)
    y, champion = _regression(rng, noise=0.8)
    challenger = Predictions(y + rng.normal(0, 0.2, N))
    c = _compare("r2", y, challenger, champion, "regression")
    assert c.challenger > c.champion
    assert c.delta > 0


def test_multiclass_comparison_runs_on_macro_f1():
    rng = np.random.default_rng(14)
    y, pred = _multiclass(rng)
    c = _compare("f1", y, pred, pred, "multiclass")
    assert c.challenger == pytest.approx(skm.f1_score(y, pred.labels, average="macro"))
    assert (c.ci_low, c.ci_high) == (0.0, 0.0)


class _Unfitted:
    """A champion that reads the named columns; only `feature_names_in_` is consulted before a refusal."""

    def __init__(self, *names: str):
        self.feature_names_in_ = np.array(names)


def _time_spec(holdout, unseen: int) -> dict:
    """A champion split by time that trained on every holdout row but the newest `unseen`."""
    when = holdout["application_date"].sort_values()
    return {"method": "time", "time_column": "application_date",
            "train_until": when.iloc[len(when) - unseen - 1].tz_localize("UTC").isoformat()}


def test_a_champion_lacking_a_column_of_its_own_is_refused_with_the_column_named(params, loans):
    from driftline.core.comparison import score_champion

    score = score_champion(_Unfitted("income_band_v0"), {}, None, loans, params)
    assert score.comparison is None and score.metrics == {}
    assert score.problem == ("the champion cannot be scored on this data: model needs columns missing "
                             "from the data: income_band_v0")


def test_a_champion_whose_split_cannot_be_told_is_refused(params, loans):
    from driftline.core.comparison import score_champion

    score = score_champion(_Unfitted("age"), {"method": "hash", "columns": ["gone"]}, None, loans, params)
    assert score.comparison is None
    assert score.problem == ("cannot tell which holdout rows the champion trained on (its split settings are "
                             "unknown or its split columns are gone)")


def test_fewer_than_200_unseen_rows_refuse_the_comparison(params, loans):
    from driftline.core.comparison import MIN_COMPARISON_ROWS, score_champion

    assert MIN_COMPARISON_ROWS == 200
    score = score_champion(_Unfitted("age"), _time_spec(loans, 199), None, loans, params)
    assert score.problem == ("only 199 holdout rows are unseen by the champion (its split settings differ); "
                             "at least 200 are needed")


def test_200_unseen_rows_are_compared_on_exactly_those_rows(params, loans):
    from driftline.core import evaluation, training
    from driftline.core.comparison import score_champion

    parts = training.split(loans, params)
    model = training.train(parts.train, params)
    ev = evaluation.evaluate(model, parts.train, loans, params)
    score = score_champion(model, _time_spec(loans, 200), ev, loans, params)
    assert score.problem is None and score.comparison is not None and score.metrics
    assert score.note == (f"compared on the 200 of {len(loans)} holdout rows the champion never trained on "
                          "(its split settings differ)")


# --- the same interval for the same seed; the resampling bootstrap; DeLong ----------------------------


def _pinned_case():
    rng = np.random.default_rng(2026)
    y = rng.integers(0, 2, 2000)
    a = np.round(np.clip(0.4 * y + rng.random(2000) * 0.6, 0, 1), 3)
    b = np.round(np.clip(0.35 * y + rng.random(2000) * 0.65, 0, 1), 3)

    def pred(s):
        return Predictions((s >= 0.5).astype(int), np.column_stack([1 - s, s]), np.array([0, 1]))

    return y, pred(a), pred(b)


@pytest.mark.parametrize(("metric", "low", "high"), [
    # As the bootstrap gave them before its AUC and macro metrics were counted in one pass
    # (commit b82c007's comparison.py, same data, seed 7, 200 samples): bit for bit.
    ("roc_auc", 0.02862937185923601, 0.05754490249001092),
    ("accuracy", 0.03347499999999998, 0.07799999999999996),
    ("f1", 0.03349918692857497, 0.07839894983442056),
])
def test_the_same_seed_gives_the_same_interval_as_before_the_bootstrap_was_made_faster(metric, low, high):
    y, a, b = _pinned_case()
    c = paired_bootstrap(metric, y, a, b, "binary", samples=200, confidence=0.95, margin=0.01, seed=7)
    assert (c.ci_low, c.ci_high) == (low, high)


@pytest.mark.parametrize("metric", ["roc_auc", "accuracy", "precision", "recall", "f1"])
def test_the_weighted_bootstrap_equals_the_resampling_bootstrap_on_the_same_seed(metric):
    """Each replicate's weights are the counts of rows drawn by rng.integers(0, n, n): the same
    as scoring the drawn rows themselves, repeats and all, with scikit-learn."""
    y, a, b = _pinned_case()
    c = paired_bootstrap(metric, y, a, b, "binary", samples=60, confidence=0.95, margin=0.01, seed=11)
    rng = np.random.default_rng(11)
    resampled = []
    for _ in range(60):
        rows = rng.integers(0, len(y), len(y))
        resampled.append(_sk_binary(metric, y[rows], a.subset(rows)) - _sk_binary(metric, y[rows], b.subset(rows)))
    np.testing.assert_allclose(c.deltas, resampled, rtol=0, atol=1e-12)
    lo, hi = np.quantile(resampled, [0.025, 0.975])
    assert c.ci_low == pytest.approx(lo, abs=1e-12) and c.ci_high == pytest.approx(hi, abs=1e-12)


def test_delongs_interval_agrees_with_the_bootstrap_and_is_an_option_beside_it():
    rng = np.random.default_rng(5)
    n = 4000
    y = rng.integers(0, 2, n)
    a = np.clip(0.45 * y + rng.random(n) * 0.55, 0, 1)
    b = np.clip(0.5 * y + rng.random(n) * 0.5 + rng.normal(0, 0.05, n), 0, 1)

    def pred(s):
        return Predictions((s >= 0.5).astype(int), np.column_stack([1 - s, s]), np.array([0, 1]))

    boot = paired_bootstrap("roc_auc", y, pred(a), pred(b), "binary", samples=2000, confidence=0.95,
                            margin=0.01, seed=3)
    closed = paired_bootstrap("roc_auc", y, pred(a), pred(b), "binary", samples=2000, confidence=0.95,
                              margin=0.01, seed=3, method="delong")
    assert closed.delta == boot.delta == pytest.approx(skm.roc_auc_score(y, a) - skm.roc_auc_score(y, b))
    width = boot.ci_high - boot.ci_low
    assert closed.ci_low == pytest.approx(boot.ci_low, abs=0.1 * width)
    assert closed.ci_high == pytest.approx(boot.ci_high, abs=0.1 * width)
    assert closed.samples == 0 and closed.deltas is None
    with pytest.raises(ValueError, match="DeLong"):
        paired_bootstrap("accuracy", y, pred(a), pred(b), "binary", 100, 0.95, 0.01, 3, method="delong")


def test_delongs_interval_widens_as_the_rows_shrink_and_is_zero_for_one_model_against_itself():
    from driftline.core import delong

    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 3000).astype(bool)
    a, b = 0.3 * y + rng.random(3000), 0.3 * y + rng.random(3000)
    assert delong.interval(y, a, a, 0.95) == (0.0, 0.0)
    small, large = delong.interval(y[:300], a[:300], b[:300], 0.95), delong.interval(y, a, b, 0.95)
    assert small[1] - small[0] > 2 * (large[1] - large[0])
