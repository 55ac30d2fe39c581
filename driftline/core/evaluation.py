"""Holdout metrics, per-slice metrics, and behavioural tests of a fitted model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from driftline.config import Directional, Invariance, MinimumFunctionality, Params
from driftline.core import frames


@dataclass(frozen=True)
class Predictions:
    labels: np.ndarray
    proba: np.ndarray | None = None  # (n, n_classes) for classifiers
    classes: np.ndarray | None = None

    @property
    def score(self) -> np.ndarray:
        """One number per row: P(positive) for binary, max probability for multiclass, value for regression."""
        if self.proba is None:
            return self.labels.astype("float64")
        return self.proba[:, 1] if self.proba.shape[1] == 2 else self.proba.max(axis=1)


def predict(model, x: pd.DataFrame, p: Params) -> Predictions:
    if p.data.task == "regression":
        return Predictions(np.asarray(model.predict(x), dtype="float64"))
    proba = model.predict_proba(x)
    classes = model.classes_
    if p.data.task == "binary":
        labels = classes[(proba[:, 1] >= p.evaluation.decision_threshold).astype(int)]
    else:
        labels = classes[proba.argmax(axis=1)]
    return Predictions(labels, proba, classes)


def metrics(y: np.ndarray, pred: Predictions, task: str) -> dict[str, float]:
    if task == "regression":
        return {
            "rmse": float(np.sqrt(skm.mean_squared_error(y, pred.labels))),
            "mae": float(skm.mean_absolute_error(y, pred.labels)),
            "r2": float(skm.r2_score(y, pred.labels)),
        }
    if task == "binary":
        pos = pred.classes[1]
        out = {
            "accuracy": skm.accuracy_score(y, pred.labels),
            "precision": skm.precision_score(y, pred.labels, pos_label=pos, zero_division=0),
            "recall": skm.recall_score(y, pred.labels, pos_label=pos, zero_division=0),
            "f1": skm.f1_score(y, pred.labels, pos_label=pos, zero_division=0),
            "roc_auc": skm.roc_auc_score(y == pos, pred.proba[:, 1]) if len(set(y)) == 2 else float("nan"),
        }
    else:
        out = {
            "accuracy": skm.accuracy_score(y, pred.labels),
            "precision": skm.precision_score(y, pred.labels, average="macro", zero_division=0),
            "recall": skm.recall_score(y, pred.labels, average="macro", zero_division=0),
            "f1": skm.f1_score(y, pred.labels, average="macro", zero_division=0),
            "roc_auc": skm.roc_auc_score(y, pred.proba, multi_class="ovr", labels=pred.classes)
            if len(set(y)) == len(pred.classes) else float("nan"),
        }
    return {k: float(v) for k, v in out.items()}


def slice_metric(y: np.ndarray, pred: Predictions, metric: str, task: str) -> float:
    if metric == "selection_rate":
        return float(np.mean(pred.labels == pred.classes[1])) if task == "binary" else float("nan")
    if metric == "mae" or task == "regression":
        return float(np.mean(np.abs(y - pred.labels)))
    avg = dict(pos_label=pred.classes[1]) if task == "binary" else dict(average="macro")
    fn = {"accuracy": skm.accuracy_score, "recall": skm.recall_score, "precision": skm.precision_score}[metric]
    if metric == "accuracy":
        return float(fn(y, pred.labels))
    return float(fn(y, pred.labels, zero_division=0, **avg))


@dataclass(frozen=True)
class SliceResult:
    attribute: str
    metric: str
    groups: dict[str, dict[str, float]]  # group -> {"n": rows, metric: value}
    gap: float
    max_gap: float
    min_group_size: int

    @property
    def passed(self) -> bool:
        return not self.gap > self.max_gap


def slices(holdout: pd.DataFrame, y: np.ndarray, pred: Predictions, p: Params) -> list[SliceResult]:
    results = []
    for gate in p.evaluation.fairness:
        groups: dict[str, dict[str, float]] = {}
        values = holdout[gate.attribute].astype(object).fillna("(missing)").astype(str).to_numpy()
        for group in sorted(set(values)):
            mask = values == group
            sub = Predictions(pred.labels[mask], None if pred.proba is None else pred.proba[mask],
                              pred.classes)
            groups[group] = {"n": float(mask.sum()),
                             gate.metric: slice_metric(y[mask], sub, gate.metric, p.data.task)}
        big = [g[gate.metric] for g in groups.values() if g["n"] >= gate.min_group_size]
        gap = float(max(big) - min(big)) if len(big) >= 2 else 0.0
        results.append(SliceResult(gate.attribute, gate.metric, groups, gap, gate.max_gap,
                                   gate.min_group_size))
    return results


@dataclass(frozen=True)
class BehavioralResult:
    name: str
    kind: str
    value: float
    limit: float
    passed: bool
    detail: str
    failures: list[str] = field(default_factory=list)


def _invariance(model, x: pd.DataFrame, test: Invariance, p: Params) -> BehavioralResult:
    base = predict(model, x, p).score
    changes = []
    for value in test.values:
        x2 = x.copy()
        x2[test.feature] = value if isinstance(value, str) else float(value)
        changes.append(np.abs(predict(model, x2, p).score - base))
    mean_change = float(np.mean(changes))
    return BehavioralResult(test.name, "invariance", mean_change, test.max_mean_change,
                            mean_change <= test.max_mean_change,
                            f"setting {test.feature} to each of {test.values} moves the score by "
                            f"{mean_change:.4f} on average (at most {test.max_mean_change})")


def _directional(model, x: pd.DataFrame, test: Directional, p: Params) -> BehavioralResult:
    base = predict(model, x, p).score
    x2 = x.copy()
    x2[test.feature] = x2[test.feature] + test.shift
    delta = predict(model, x2, p).score - base
    wrong = delta < -test.tolerance if test.expect == "increase" else delta > test.tolerance
    rate = float(np.mean(wrong))
    return BehavioralResult(test.name, "directional", rate, test.max_violation_rate,
                            rate <= test.max_violation_rate,
                            f"adding {test.shift:g} to {test.feature} should {test.expect} the score; "
                            f"it moved the wrong way for {rate:.1%} of rows (at most {test.max_violation_rate:.1%})")


def _minimum(model, typical: dict, test: MinimumFunctionality, p: Params) -> BehavioralResult:
    rows = [{**typical, **case.record} for case in test.cases]
    x = frames.features(pd.DataFrame(rows), p.data)
    pred = predict(model, x, p)
    failures = []
    for i, case in enumerate(test.cases):
        label, score = pred.labels[i], pred.score[i]
        ok = True
        if case.expect is not None and str(label) != str(case.expect):
            ok = False
        if case.expect_min is not None and score < case.expect_min:
            ok = False
        if case.expect_max is not None and score > case.expect_max:
            ok = False
        if not ok:
            failures.append(f"case {i + 1} {case.record}: got {label} (score {score:.3f})")
    rate = 1 - len(failures) / len(test.cases)
    return BehavioralResult(test.name, "minimum_functionality", rate, test.min_pass_rate,
                            rate >= test.min_pass_rate,
                            f"{len(test.cases) - len(failures)} of {len(test.cases)} hand-written cases "
                            f"answered as expected (at least {test.min_pass_rate:.0%})", failures)


def behavioral(model, x_holdout: pd.DataFrame, typical: dict, p: Params,
               sample_rows: int = 2000) -> list[BehavioralResult]:
    x = x_holdout.sample(min(sample_rows, len(x_holdout)), random_state=p.training.seed)
    results = []
    for test in p.evaluation.behavioral:
        if isinstance(test, Invariance):
            results.append(_invariance(model, x, test, p))
        elif isinstance(test, Directional):
            results.append(_directional(model, x, test, p))
        else:
            results.append(_minimum(model, typical, test, p))
    return results


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    slices: list[SliceResult]
    behavioral: list[BehavioralResult]
    holdout: Predictions


def evaluate(model, train_df: pd.DataFrame, holdout_df: pd.DataFrame, p: Params) -> Evaluation:
    """Everything about the challenger alone: holdout metrics, slices, behavioural tests."""
    x = frames.features(holdout_df, p.data)
    y = frames.target(holdout_df, p.data)
    pred = predict(model, x, p)
    sample = train_df.sample(min(len(train_df), 10_000), random_state=p.training.seed)
    typical = frames.typical_record(frames.features(sample, p.data), p.data)
    return Evaluation(
        metrics=metrics(y, pred, p.data.task),
        slices=slices(holdout_df, y, pred, p),
        behavioral=behavioral(model, x, typical, p),
        holdout=pred,
    )
