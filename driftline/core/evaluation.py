"""Holdout metrics, per-slice metrics (from `core.slices`), and behavioural tests of a fitted model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from driftline.config import Directional, Invariance, MinimumFunctionality, Params
from driftline.core import calibration, frames
from driftline.core.calibration import Calibrator
from driftline.core.slices import SliceResult, slices


def _label_text(value) -> str:
    """A class label as text, with integral numbers written as integers: 1, 1.0, np.int64(1) and
    '1' all read '1', so a YAML `positive_class: 1` matches a target stored as int, float or text."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    return str(int(value)) if number and float(value).is_integer() else str(value)


def positive_index(classes, p: Params) -> int:
    """Index in a binary model's `classes_` (sorted, as sklearn keeps them) of the positive class:
    `data.positive_class`, or the second class when it is not set (1 of 0/1, 'yes' of no/yes)."""
    classes = list(classes)
    wanted = p.data.positive_class
    if wanted is None:
        return 1
    matches = [i for i, c in enumerate(classes) if _label_text(c) == _label_text(wanted)]
    if len(matches) != 1:
        raise ValueError(f"data.positive_class: {wanted!r} is not one of the classes "
                         f"({', '.join(_label_text(c) for c in classes)})")
    return matches[0]


@dataclass(frozen=True)
class Predictions:
    labels: np.ndarray
    proba: np.ndarray | None = None  # (n, n_classes) for classifiers
    classes: np.ndarray | None = None
    positive: int = 1  # binary: column of the positive class in proba / index in classes

    @property
    def positive_label(self):
        return self.classes[self.positive]

    def subset(self, mask: np.ndarray | slice) -> Predictions:
        return replace(self, labels=self.labels[mask], proba=None if self.proba is None else self.proba[mask])

    @property
    def score(self) -> np.ndarray:
        return row_scores(self.proba, self.labels, self.positive)


def row_scores(proba: np.ndarray | None, values: np.ndarray | None = None, positive: int = 1) -> np.ndarray:
    """The one score rule, one number per row: for two classes the probability in column
    `positive`, for more the largest probability, for regression (no `proba`) the predicted value.

    `positive` is `positive_index` wherever the params are known (evaluation, comparison,
    behavioural tests). The model server logs without them, so its scores, and the rollout
    analysis that checks them, keep the default: the second class, sklearn's positive one."""
    if proba is None:
        return np.array(values, dtype="float64")
    return proba[:, positive] if proba.shape[1] == 2 else proba.max(axis=1)


def predict(model, x: pd.DataFrame, p: Params) -> Predictions:
    """Labels and probabilities of `model` on `x`.

    A binary model decides at its own threshold (the `FixedThresholdClassifier` that `train`
    returns carries the one it was gated with), so a champion trained with another threshold is
    scored as it predicts in production. A bare classifier falls back to
    `evaluation.decision_threshold`. The score and the metrics are about `data.positive_class`.
    """
    if p.data.task == "regression":
        return Predictions(np.asarray(model.predict(x), dtype="float64"))
    proba = model.predict_proba(x)
    classes = model.classes_
    if p.data.task != "binary":
        return Predictions(classes[proba.argmax(axis=1)], proba, classes)
    pos = positive_index(classes, p)
    if getattr(model, "threshold", None) is None:
        t = p.evaluation.decision_threshold
        labels = np.where(proba[:, pos] >= t, classes[pos], classes[1 - pos])
    else:
        labels = labels_at_own_threshold(model, proba)
    return Predictions(labels, proba, classes, pos)


def labels_at_own_threshold(model, proba: np.ndarray) -> np.ndarray:
    """What `model.predict` answers for a `FixedThresholdClassifier`, from probabilities already
    computed: its own positive class (sklearn's default is the second class) against its own
    threshold ("auto" is 0.5 on probabilities). Saves a second pass through the model."""
    classes = model.classes_
    own = getattr(model, "pos_label", None)
    cut = 1 if own is None else list(classes).index(own)
    threshold = 0.5 if model.threshold == "auto" else model.threshold
    return np.where(proba[:, cut] >= threshold, classes[cut], classes[1 - cut])


def metrics(y: np.ndarray, pred: Predictions, task: str) -> dict[str, float]:
    return {name: float(score()) for name, score in _scorers(y, pred, task).items()}


def metric(y: np.ndarray, pred: Predictions, task: str, name: str) -> float:
    """One of `metrics`, computed alone: permutation importance asks for it 40-odd times, and
    the other four cost 20 ms a call."""
    return float(_scorers(y, pred, task)[name]())


def _scorers(y: np.ndarray, pred: Predictions, task: str) -> dict[str, Callable[[], float]]:
    if task == "regression":
        return {
            "rmse": lambda: np.sqrt(skm.mean_squared_error(y, pred.labels)),
            "mae": lambda: skm.mean_absolute_error(y, pred.labels),
            "r2": lambda: skm.r2_score(y, pred.labels),
        }
    if task == "binary":
        pos = pred.positive_label
        return {
            "accuracy": lambda: skm.accuracy_score(y, pred.labels),
            "precision": lambda: skm.precision_score(y, pred.labels, pos_label=pos, zero_division=0),
            "recall": lambda: skm.recall_score(y, pred.labels, pos_label=pos, zero_division=0),
            "f1": lambda: skm.f1_score(y, pred.labels, pos_label=pos, zero_division=0),
            "roc_auc": lambda: skm.roc_auc_score(y == pos, pred.score) if len(set(y)) == 2 else float("nan"),
        }
    return {
        "accuracy": lambda: skm.accuracy_score(y, pred.labels),
        "precision": lambda: skm.precision_score(y, pred.labels, average="macro", zero_division=0),
        "recall": lambda: skm.recall_score(y, pred.labels, average="macro", zero_division=0),
        "f1": lambda: skm.f1_score(y, pred.labels, average="macro", zero_division=0),
        "roc_auc": lambda: skm.roc_auc_score(y, pred.proba, multi_class="ovr", labels=pred.classes)
        if len(set(y)) == len(pred.classes) else float("nan"),
    }


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
    # Fitted on the holdout, registered beside the model (never in it): the drift monitor's
    # performance estimate reads it (core.calibration).
    calibrator: Calibrator | None = None


def evaluate(model, train_df: pd.DataFrame, holdout_df: pd.DataFrame, p: Params) -> Evaluation:
    """Everything about the challenger alone: holdout metrics, slices, behavioural tests, and the
    calibrator of its scores."""
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
        calibrator=calibration.for_model(model, holdout_df, pred, p),
    )


def reference_sample(train_df: pd.DataFrame, model, p: Params) -> pd.DataFrame:
    """What the model was trained on, kept with it: a seeded sample of the training rows (the
    configured columns) and the model's score on them. Validation compares new training data
    with it; the drift monitor compares live traffic with it."""
    sample = train_df.sample(min(len(train_df), p.registry.reference_rows), random_state=p.training.seed)
    sample = sample[[c for c in p.data.columns if c in sample.columns]].copy()
    sample["prediction"] = predict(model, frames.features(sample, p.data), p).score
    return sample
