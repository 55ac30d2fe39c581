"""Performance estimated without labels (CBPE, direct loss estimation) and realized with them, on
windows whose truth is known: labels drawn from the probabilities the estimate assumes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from driftline.core import calibration, estimation, window_performance
from driftline.core.estimation import Window

EDGES = np.array(window_performance.EDGES)


def _binary(n: int, seed: int, shift: float = 0.0):
    """Scores whose true probability is known (the score squashed: the model is miscalibrated, so a
    calibrator has something to fix), labels drawn from it, answers at 0.3."""
    rng = np.random.default_rng(seed)
    score = np.clip(rng.beta(2, 5, n) + shift, 0.001, 0.999)
    truth_p = score ** 2
    y = (rng.random(n) < truth_p).astype(int)
    return score, truth_p, y, (score >= 0.3).astype(int)


def _fitted(seed: int = 0) -> calibration.Calibrator:
    score, _, y, _ = _binary(20_000, seed)
    return calibration.fit("binary", [0, 1], y, np.column_stack([1 - score, score]))


def test_the_calibrator_learns_the_true_probability_and_round_trips_as_json():
    cal = _fitted()
    grid = np.linspace(0.05, 0.6, 12)  # where the scores are (few are above)
    calibrated = cal.probabilities(np.column_stack([1 - grid, grid]))[:, 1]
    assert np.abs(calibrated - grid ** 2).max() < 0.05  # the raw scores were off by up to 0.25
    back = calibration.from_json(cal.to_json())
    assert back == cal and back.calibrated
    raw = calibration.uncalibrated("binary", [0, 1])
    assert not raw.calibrated and np.array_equal(raw.probabilities(np.column_stack([1 - grid, grid]))[:, 1], grid)


def test_the_confusion_metrics_are_sklearns():
    rng = np.random.default_rng(1)
    y, pred = rng.integers(0, 3, 500), rng.integers(0, 3, 500)
    counts = np.zeros((3, 3))
    np.add.at(counts, (y, pred), 1)
    got = estimation.confusion_metrics(counts, 1, "multiclass")
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        assert got[name] == pytest.approx(fn(y, pred, average="macro", zero_division=0))
    yb, pb = (y == 1).astype(int), (pred == 1).astype(int)
    two = np.array([[np.sum((yb == 0) & (pb == 0)), np.sum((yb == 0) & (pb == 1))],
                    [np.sum((yb == 1) & (pb == 0)), np.sum((yb == 1) & (pb == 1))]], dtype=float)
    assert estimation.confusion_metrics(two, 1, "binary")["f1"] == pytest.approx(skm.f1_score(yb, pb))
    assert estimation.confusion_metrics(two, 0, "binary")["recall"] == pytest.approx(
        skm.recall_score(yb, pb, pos_label=0))


def test_the_binned_auc_is_sklearns_on_labels_and_the_expected_one_on_probabilities():
    score, truth_p, y, _ = _binary(50_000, 2)
    value, sigma = estimation.auc(score, y.astype(float))
    assert value == pytest.approx(skm.roc_auc_score(y, score), abs=1e-4) and 0 < sigma < 0.01
    expected, _ = estimation.auc(score, truth_p)
    draws = [skm.roc_auc_score(np.random.default_rng(s).random(len(score)) < truth_p, score) for s in range(20)]
    assert expected == pytest.approx(np.mean(draws), abs=0.003)


@pytest.mark.parametrize("positive", [1, 0])
def test_a_calibrated_estimate_covers_what_the_labels_then_say(positive):
    cal = _fitted()
    covered = {name: 0 for name in ("accuracy", "precision", "recall", "f1", "roc_auc")}
    for seed in range(40):
        score, _, y, pred = _binary(2000, 100 + seed)
        w = Window(pred, None, score)
        est = estimation.estimate(w, cal, positive, EDGES)
        real = estimation.realized(w, y, positive, "binary", EDGES)
        for name in covered:
            v = est.metrics[name]
            covered[name] += v.low <= real.metrics[name].value <= v.high
    # Two one-sided 95% bounds: about 90% of windows fall inside; far fewer would mean a band too narrow.
    assert all(c >= 32 for c in covered.values()), covered


def test_uncalibrated_scores_estimate_worse_and_say_so():
    score, _, y, pred = _binary(20_000, 3)
    w = Window(pred, None, score)
    real = estimation.realized(w, y, 1, "binary", EDGES).metrics["accuracy"].value
    raw = estimation.estimate(w, calibration.uncalibrated("binary", [0, 1]), 1, EDGES)
    fitted = estimation.estimate(w, _fitted(), 1, EDGES)
    assert raw.source == "raw scores: no calibrator" and fitted.source == "calibrated scores"
    assert abs(fitted.metrics["accuracy"].value - real) < 0.01 < abs(raw.metrics["accuracy"].value - real)


def test_a_shift_towards_the_threshold_lowers_the_estimate_and_the_bands_show_where():
    cal = _fitted()
    calm, *_ , calm_pred = _binary(5000, 4)
    near = np.clip(np.random.default_rng(5).normal(0.3, 0.05, 5000), 0.01, 0.99)
    a = estimation.estimate(Window(calm_pred, None, calm), cal, 1, EDGES)
    b = estimation.estimate(Window((near >= 0.3).astype(int), None, near), cal, 1, EDGES)
    assert b.metrics["accuracy"].high < a.metrics["accuracy"].low
    assert b.band_rows[1] > 0.9 * 5000 and b.band_expected[1] < a.band_expected[0]


def test_multiclass_estimates_from_every_class_probability():
    rng = np.random.default_rng(6)
    k, n = 3, 6000
    logits = rng.normal(0, 1.5, (n, k))
    truth_p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in truth_p])
    raw = truth_p ** 1.3 / (truth_p ** 1.3).sum(axis=1, keepdims=True)  # overconfident
    cal = calibration.fit("multiclass", ["a", "b", "c"], np.array(["a", "b", "c"])[y], raw)
    w = Window(raw.argmax(axis=1), raw, raw.max(axis=1))
    est = estimation.estimate(w, cal, 1, EDGES)
    real = estimation.realized(w, y, 1, "multiclass", EDGES)
    assert real.metrics["accuracy"].value == pytest.approx(skm.accuracy_score(y, raw.argmax(axis=1)))
    assert real.metrics["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, raw, multi_class="ovr"), abs=1e-3)
    for name in ("accuracy", "f1", "roc_auc"):
        assert abs(est.metrics[name].value - real.metrics[name].value) < 0.03, name


def test_the_log_rows_become_a_window_and_multiclass_rows_without_probabilities_are_left_out():
    cal = calibration.Calibrator("multiclass", ["x", "y", "z"], [([0.0, 1.0], [0.0, 1.0])] * 3, 10)
    rows = pd.DataFrame({"prediction": ["y", "x", "z", "w"], "score": [0.5, 0.6, 0.7, 0.4],
                         "proba_0": [0.2, 0.6, 0.1, 0.3], "proba_1": [0.5, 0.3, 0.2, 0.3],
                         "proba_2": [0.3, 0.1, 0.7, 0.4]})
    rows.loc[2, "proba_1"] = None  # logged before the server wrote every class's probability
    w, keep = window_performance.window(rows, cal, [])
    assert keep.tolist() == [True, True, False, False]  # and "w" is no class of the model's
    assert w.predicted.tolist() == [1, 0]
    labels = pd.Series([json.dumps("y"), None, json.dumps("q")], dtype=object)
    assert window_performance.truth(labels, cal).tolist() == [1, -1, -1]


def test_the_direct_loss_estimate_follows_the_rows_where_the_model_errs():
    rng = np.random.default_rng(7)

    def rows(n, wide_share):
        x = pd.DataFrame({"a": rng.normal(0, 1, n), "kind": np.where(rng.random(n) < wide_share, "wide", "narrow")})
        noise = np.where(x["kind"] == "wide", 3.0, 0.5)
        prediction = 2 * x["a"].to_numpy()
        return x, prediction, prediction + rng.normal(0, 1, n) * noise

    x, pred, y = rows(8000, 0.2)
    cal = calibration.fit("regression", [], y, x=x, prediction=pred)
    back = calibration.from_json(cal.to_json(), cal.loss_bytes())
    for share in (0.2, 0.8):
        xs, ps, ys = rows(4000, share)
        w = Window(ps, None, ps, xs)
        cuts = window_performance.edges(w, "regression")
        est = estimation.estimate(w, back, 1, cuts)
        real = estimation.realized(w, ys, 1, "regression", cuts)
        assert est.metrics["mae"].value == pytest.approx(real.metrics["mae"].value, rel=0.08), share
        assert est.metrics["rmse"].value == pytest.approx(real.metrics["rmse"].value, rel=0.1), share
