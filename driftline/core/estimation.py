"""A model's performance on a window of its answers: estimated without labels, and realized with
the labels that came back.

Classifiers (confidence-based performance estimation, NannyML's CBPE): with calibrated class
probabilities p_i, a row predicted class k adds p_i to column k of the expected confusion matrix;
accuracy, precision, recall and F1 (binary: of the positive class; more classes: macro) follow
from it, and ROC AUC from the expected true and false positive rates along the score. Regression
(direct loss estimation): the mean of each row's expected absolute and squared error.

The band is the sampling noise of the value the labels would give if the calibration holds: the
confusion matrix's cells drawn from their (normal) distribution given every row's probabilities,
and the delta method for AUC and the regression errors. It is not the calibration's own error; the
estimation error recorded when labels arrive measures that. One-sided 95% (z = 1.645) either way,
as the live accuracy's Wilson bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftline.core.calibration import Calibrator, expected_loss

Z = 1.645
DRAWS = 400
BINS = 1 << 16  # scores are binned for AUC: pairs within one bin (width 1.5e-5) count as ties


@dataclass(frozen=True)
class Value:
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Estimate:
    rows: int
    metrics: dict[str, Value]
    calibrated: bool
    source: str  # in a few words: calibrated scores, raw scores (no calibrator), the loss estimator
    band_rows: np.ndarray  # rows per score band (`edges`)
    band_expected: np.ndarray  # per band: mean chance of being right (classifier), expected |error| (regression)


@dataclass(frozen=True)
class Realized:
    rows: int  # the window's rows
    labelled: int
    metrics: dict[str, Value]
    band_labelled: np.ndarray  # labelled rows per score band
    band_realized: np.ndarray  # per band: share right (classifier), mean |error| (regression); NaN: no label

    @property
    def coverage(self) -> float:
        return self.labelled / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class Window:
    """The champion's answers as arrays: `predicted` (class index; the value for regression), `raw`
    (n, k) probabilities (None for two classes: `score` is the second's), `score` (the logged
    score), `x` (features, regression only)."""

    predicted: np.ndarray
    raw: np.ndarray | None
    score: np.ndarray
    x: object = None

    def band(self, edges: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(edges, self.score, side="right") - 1, 0, len(edges) - 2)


def _bounded(v: float, sigma: float, lo: float = 0.0, hi: float = 1.0) -> Value:
    if not np.isfinite(sigma):
        sigma = 0.0
    return Value(float(v), float(max(lo, v - Z * sigma)), float(min(hi, v + Z * sigma)))


def wilson(successes: int, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson's bounds of a proportion, one-sided 95% each."""
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float(max(0.0, (centre - spread) / (1 + z * z / n))), float(min(1.0, (centre + spread) / (1 + z * z / n)))


def _open(v: float, sigma: float) -> Value:
    return _bounded(v, sigma, -np.inf, np.inf)


def confusion_metrics(c: np.ndarray, positive: int, task: str) -> dict[str, np.ndarray]:
    """Accuracy, precision, recall and F1 of confusion matrices `c` (..., true, predicted), as
    evaluation.metrics computes them (zero_division=0)."""
    total = c.sum(axis=(-2, -1))
    out = {"accuracy": np.trace(c, axis1=-2, axis2=-1) / np.where(total > 0, total, 1)}
    columns = [positive] if task == "binary" else range(c.shape[-1])
    per: dict[str, list] = {"precision": [], "recall": [], "f1": []}
    for j in columns:
        tp, predicted, actual = c[..., j, j], c[..., :, j].sum(-1), c[..., j, :].sum(-1)
        per["precision"].append(np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1), 0.0))
        per["recall"].append(np.where(actual > 0, tp / np.where(actual > 0, actual, 1), 0.0))
        both = predicted + actual
        per["f1"].append(np.where(both > 0, 2 * tp / np.where(both > 0, both, 1), 0.0))
    return {**out, **{k: np.mean(v, axis=0) for k, v in per.items()}}


def _bins(score: np.ndarray) -> np.ndarray:
    # Scores are finite here (window() leaves out the rest); clipped, as a custom kind's may stray.
    return np.clip(score * (BINS - 1), 0, BINS - 1).astype(np.int64)


def binned_auc(pos: np.ndarray, count: np.ndarray, var: np.ndarray | None = None) -> tuple[float, float]:
    """ROC AUC from bins in ascending score order: each bin's positive weight (labels, or each
    row's probability of being positive: the expected true and false positive rates, as CBPE) and
    its rows, ties within a bin counted half. Its standard deviation: Hanley and McNeil's for
    labels (`var` None), else the delta method over each row's Bernoulli label (`var`: each bin's
    sum of p(1 - p))."""
    neg = count - pos
    p_total, n_total = float(pos.sum()), float(neg.sum())
    if p_total <= 0 or n_total <= 0:
        return float("nan"), float("nan")
    below = np.cumsum(neg) - neg
    value = float((pos * (below + neg / 2)).sum() / (p_total * n_total))
    if var is None:
        q1, q2 = value / (2 - value), 2 * value ** 2 / (1 + value)
        spread = (value * (1 - value) + (p_total - 1) * (q1 - value ** 2) + (n_total - 1) * (q2 - value ** 2)) \
            / (p_total * n_total)
        return value, float(np.sqrt(max(spread, 0.0)))
    # S = the positives' rank sum, P = their count: AUC = (S - P(P+1)/2) / (P (n - P)).
    n = float(count.sum())
    rank = np.cumsum(count) - count + (count + 1) / 2
    var_s, var_p, cov = float((var * rank ** 2).sum()), float(var.sum()), float((var * rank).sum())
    s, pn = float((pos * rank).sum()), p_total * (n - p_total)
    ds = 1 / pn
    dp = (-(p_total + 0.5) * pn - (s - p_total * (p_total + 1) / 2) * (n - 2 * p_total)) / pn ** 2
    return value, float(np.sqrt(max(ds * ds * var_s + 2 * ds * dp * cov + dp * dp * var_p, 0.0)))


def auc(score: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """binned_auc of rows: `positive` is 1/0 (labels) or each row's probability of being positive."""
    b = _bins(score)
    labels = bool(np.all((positive == 0) | (positive == 1)))
    return binned_auc(np.bincount(b, weights=positive, minlength=BINS),
                      np.bincount(b, minlength=BINS).astype(float),
                      None if labels else np.bincount(b, weights=positive * (1 - positive), minlength=BINS))


def _source(cal: Calibrator) -> str:
    if cal.task == "regression":
        return "the loss estimator"
    return "calibrated scores" if cal.calibrated and cal.tables else "raw scores: no calibrator"


def _metrics(mean: np.ndarray, draws: np.ndarray, positive: int, task: str) -> dict[str, Value]:
    values, spread = confusion_metrics(mean, positive, task), confusion_metrics(draws, positive, task)
    return {name: _bounded(float(values[name]), float(np.std(spread[name]))) for name in values}


def estimate(w: Window, cal: Calibrator, positive: int, edges: np.ndarray, seed: int = 0) -> Estimate:
    """The expected performance of the window's answers (see the module's docstring), overall and
    per band of the score between `edges`."""
    n, bands = len(w.predicted), len(edges) - 1
    if n == 0:
        return Estimate(0, {}, cal.calibrated, _source(cal), np.zeros(bands), np.full(bands, np.nan))
    if cal.task == "regression":
        return _regression(w, cal, edges)
    if cal.task == "binary":
        return _binary(w, cal, positive, edges, seed)
    p = cal.probabilities(w.raw)
    k, predicted = p.shape[1], w.predicted.astype(np.int64)
    mean, covs = np.zeros((k, k)), []
    for j in range(k):
        rows = p[predicted == j]
        mean[:, j] = rows.sum(axis=0)
        covs.append(np.diag(mean[:, j]) - rows.T @ rows)
    rng = np.random.default_rng(seed)
    draws = np.stack([rng.multivariate_normal(mean[:, j], covs[j], DRAWS, check_valid="ignore", method="eigh")
                      for j in range(k)], axis=-1).clip(min=0)
    metrics = _metrics(mean, draws, positive, cal.task)
    scores = [auc(w.raw[:, j], p[:, j]) for j in range(k)]
    metrics["roc_auc"] = _bounded(float(np.mean([v for v, _ in scores])),
                                  float(np.sqrt(sum(s * s for _, s in scores)) / k))
    band = w.band(edges)
    rows_in = np.bincount(band, minlength=bands).astype(float)
    right = np.bincount(band, weights=p[np.arange(n), predicted], minlength=bands)
    return Estimate(n, metrics, cal.calibrated, _source(cal), rows_in, right / np.where(rows_in > 0, rows_in, 1))


def _binary(w: Window, cal: Calibrator, positive: int, edges: np.ndarray, seed: int) -> Estimate:
    """Two classes, over a histogram of the score (one pass over the rows, then 65,536 bins): each
    bin's rows by predicted class, calibrated at the bin's mean score."""
    b = _bins(w.score)
    predicted = w.predicted.astype(np.int64)
    h = np.bincount(b + BINS * predicted, minlength=2 * BINS).reshape(2, BINS).astype(float)
    count = h.sum(axis=0)
    mean_score = np.bincount(b, weights=w.score, minlength=BINS) / np.where(count > 0, count, 1)
    one = cal.probabilities(np.column_stack([1 - mean_score, mean_score]))[:, 1]
    ones, totals, var = h @ one, h.sum(axis=1), h @ (one * (1 - one))
    mean = np.array([totals - ones, ones])  # (true, predicted)
    drawn = np.random.default_rng(seed).normal(ones, np.sqrt(var), (DRAWS, 2)).clip(0, totals)
    draws = np.stack([totals - drawn, drawn], axis=1)
    metrics = _metrics(mean, draws, positive, "binary")
    spread = count * one * (1 - one)
    if positive == 1:
        metrics["roc_auc"] = _bounded(*binned_auc(count * one, count, spread))
    else:  # the positive class's score is 1 - score: the bins in the other order
        metrics["roc_auc"] = _bounded(*binned_auc((count * (1 - one))[::-1], count[::-1], spread[::-1]))
    band = np.clip(np.searchsorted(edges, mean_score, side="right") - 1, 0, len(edges) - 2)
    rows_in = np.bincount(band, weights=count, minlength=len(edges) - 1)
    right = np.bincount(band, weights=h[1] * one + h[0] * (1 - one), minlength=len(edges) - 1)
    return Estimate(len(predicted), metrics, cal.calibrated, _source(cal), rows_in,
                    right / np.where(rows_in > 0, rows_in, 1))


def _regression(w: Window, cal: Calibrator, edges: np.ndarray) -> Estimate:
    n = len(w.predicted)
    a, s = expected_loss(cal, w.x, w.predicted)
    mse = float(s.mean())
    rmse = np.sqrt(mse)
    sigma_mse = np.sqrt((2 * s * s).sum()) / n  # a normal residual: Var(r^2) = 2 sigma^4
    sst = float(((w.predicted - w.predicted.mean()) ** 2).sum() + s.sum())
    metrics = {"mae": _open(float(a.mean()), np.sqrt(np.clip(s - a * a, 0, None).sum()) / n),
               "rmse": _open(rmse, sigma_mse / (2 * rmse) if rmse > 0 else 0.0),
               "r2": _open(1 - s.sum() / sst if sst > 0 else float("nan"), n * sigma_mse / sst if sst > 0 else 0.0)}
    band = w.band(edges)
    rows_in = np.bincount(band, minlength=len(edges) - 1).astype(float)
    expected = np.bincount(band, weights=a, minlength=len(edges) - 1) / np.where(rows_in > 0, rows_in, 1)
    return Estimate(n, metrics, True, _source(cal), rows_in, expected)


def _per_band(band: np.ndarray, values: np.ndarray, bands: int) -> tuple[np.ndarray, np.ndarray]:
    got = np.bincount(band, minlength=bands).astype(float)
    total = np.bincount(band, weights=values, minlength=bands)
    return got, np.where(got > 0, total / np.where(got > 0, got, 1), np.nan)


def realized(w: Window, truth: np.ndarray, positive: int, task: str, edges: np.ndarray,
             seed: int = 0) -> Realized:
    """The window's performance on its labelled rows, overall and per score band: `truth` is each
    row's true class index (-1: no label) or, for regression, its true value (NaN: no label)."""
    n, bands = len(w.predicted), len(edges) - 1
    known = np.isfinite(truth) if task == "regression" else truth >= 0
    m = int(known.sum())
    if m == 0:
        return Realized(n, 0, {}, np.zeros(bands), np.full(bands, np.nan))
    band = w.band(edges)[known]
    if task == "regression":
        y, pred = truth[known], w.predicted[known]
        err = y - pred
        sq, rmse = err ** 2, float(np.sqrt((err ** 2).mean()))
        sst = float(((y - y.mean()) ** 2).sum())
        metrics = {"mae": _open(float(np.abs(err).mean()), float(np.abs(err).std()) / np.sqrt(m)),
                   "rmse": _open(rmse, float(sq.std()) / np.sqrt(m) / (2 * rmse) if rmse > 0 else 0.0),
                   "r2": _open(1 - sq.sum() / sst if sst > 0 else float("nan"),
                               float(sq.std()) * np.sqrt(m) / sst if sst > 0 else 0.0)}
        return Realized(n, m, metrics, *_per_band(band, np.abs(err), bands))
    k = 2 if w.raw is None else w.raw.shape[1]
    y, pred = truth[known].astype(np.int64), w.predicted[known].astype(np.int64)
    counts = np.bincount(y * k + pred, minlength=k * k).reshape(k, k).astype(float)
    draws = np.random.default_rng(seed).multinomial(m, counts.ravel() / m, DRAWS).reshape(DRAWS, k, k)
    metrics = _metrics(counts, draws.astype(float), positive, task)
    right = int(np.trace(counts))
    metrics["accuracy"] = Value(right / m, *wilson(right, m))
    if w.raw is None:
        score = w.score[known] if positive == 1 else 1 - w.score[known]
        metrics["roc_auc"] = _bounded(*auc(score, (y == positive).astype(float)))
    else:
        scores = [auc(w.raw[known, j], (y == j).astype(float)) for j in range(k)]
        metrics["roc_auc"] = _bounded(float(np.nanmean([v for v, _ in scores])),
                                      float(np.sqrt(np.nansum([s * s for _, s in scores])) / k))
    return Realized(n, m, metrics, *_per_band(band, (y == pred).astype(float), bands))
