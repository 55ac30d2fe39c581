"""The calibrator a model version carries beside it, never inside it: fitted on the holdout at
training time, stored as an artifact of the version's run, read only by the drift monitor to
estimate performance on unlabelled traffic. The served model (and so every answer) is the same
with or without it.

Classifiers: one isotonic map per class column from the model's raw probability to the share of
holdout rows of that class (for two classes, only the second column, which the server logs as the
score); rows are renormalised for three classes or more. Kept as JSON: breakpoints, nothing to
unpickle. Regression: a direct loss estimator, two small gradient-boosted models of a row's
absolute and squared error from its features and its prediction, fitted on the holdout residuals
(NannyML's DLE idea); kept as a pickle beside the JSON.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

FORMAT = 1


@dataclass(frozen=True)
class Calibrator:
    task: str  # binary | multiclass | regression
    classes: list = field(default_factory=list)  # the model's classes_, in its order (JSON values)
    # Per calibrated column: isotonic breakpoints (x: raw probability, y: calibrated). Binary: one
    # table, for column 1. Empty: the raw probabilities are taken as they are (uncalibrated).
    tables: list[tuple[list[float], list[float]]] = field(default_factory=list)
    rows: int = 0  # holdout rows it was fitted on
    loss: tuple | None = None  # regression: the (absolute, squared) error models
    calibrated: bool = True

    @property
    def columns(self) -> int:
        return len(self.classes)

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated (n, k) probabilities from the raw (n, k) ones."""
        if not self.tables:
            return raw
        if self.task == "binary":
            p1 = np.interp(raw[:, 1], *self.tables[0])
            return np.column_stack([1 - p1, p1])
        out = np.column_stack([np.interp(raw[:, j], *t) for j, t in enumerate(self.tables)])
        total = out.sum(axis=1, keepdims=True)
        # A row every map sends to 0 keeps its raw probabilities rather than dividing by 0.
        return np.where(total > 0, out / np.where(total > 0, total, 1), raw)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "task": self.task, "classes": self.classes, "rows": self.rows,
                           "kind": "direct_loss" if self.task == "regression" else "isotonic",
                           "tables": [{"x": list(x), "y": list(y)} for x, y in self.tables]})

    def loss_bytes(self) -> bytes | None:
        if self.loss is None:
            return None
        import cloudpickle

        return cloudpickle.dumps(self.loss)


def from_json(text: str, loss: bytes | None = None) -> Calibrator:
    data = json.loads(text)
    if data.get("format") != FORMAT:
        raise ValueError(f"calibrator format {data.get('format')!r}, this driftline reads {FORMAT}")
    model = None
    if loss is not None:
        import cloudpickle

        model = cloudpickle.load(io.BytesIO(loss))
    return Calibrator(data["task"], list(data["classes"]), [(t["x"], t["y"]) for t in data["tables"]],
                      int(data["rows"]), model)


def uncalibrated(task: str, classes: list) -> Calibrator:
    """For a version registered without a calibrator: its raw probabilities, said to be raw."""
    return Calibrator(task, list(classes), [], 0, None, calibrated=False)


def plain(values) -> list:
    """Class values as JSON keeps them (numpy scalars to Python)."""
    return [v.item() if hasattr(v, "item") else v for v in values]


def fit(task: str, classes, y: np.ndarray, proba: np.ndarray | None = None, x: pd.DataFrame | None = None,
        prediction: np.ndarray | None = None, seed: int = 0) -> Calibrator:
    """The calibrator of a model from its holdout: `proba` (n, k) for a classifier, the features
    `x` and `prediction` for a regression model, and the true `y`."""
    if task == "regression":
        return Calibrator(task, [], [], len(y), fit_loss(x, prediction, y, seed))
    from sklearn.isotonic import IsotonicRegression

    classes = list(classes)
    columns = [1] if task == "binary" else range(len(classes))
    tables = []
    for j in columns:
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(proba[:, j], (np.asarray(y) == classes[j]).astype(float))
        tables.append(([float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_]))
    return Calibrator(task, plain(classes), tables, len(y))


def for_model(model, holdout: pd.DataFrame, predicted, p) -> Calibrator:
    """The calibrator of `model` from its holdout predictions (`evaluation.Predictions`)."""
    from driftline.core import frames

    y = frames.target(holdout, p.data)
    if p.data.task == "regression":
        return fit("regression", [], y, x=frames.features(holdout, p.data), prediction=predicted.labels,
                   seed=p.training.seed)
    return fit(p.data.task, model.classes_, y, predicted.proba)


def loss_frame(x: pd.DataFrame, prediction: np.ndarray) -> pd.DataFrame:
    """What the loss models read: the raw features (text as categories) and the prediction."""
    out = x.copy()
    for name in out.columns:
        if not pd.api.types.is_numeric_dtype(out[name]):
            # Missing as NaN, the rest as text: an encoder refuses pandas' NA among strings.
            text = out[name].astype(object)
            out[name] = text.where(text.isna(), text.astype(str)).where(text.notna(), np.nan).astype("category")
    out["__prediction__"] = np.asarray(prediction, dtype="float64")
    return out


def fit_loss(x: pd.DataFrame, prediction: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple:
    """Two regressors of a row's absolute and squared error. Text columns are categories to them
    (unseen values are missing); one of more than 250 distinct values is left out (its bins)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    frame = loss_frame(x, prediction)
    frame = frame[[c for c in frame.columns if not isinstance(frame[c].dtype, pd.CategoricalDtype)
                   or len(frame[c].cat.categories) <= 250]]
    residual = np.asarray(y, dtype="float64") - np.asarray(prediction, dtype="float64")
    models = []
    for target in (np.abs(residual), residual ** 2):
        model = HistGradientBoostingRegressor(max_iter=100, learning_rate=0.05, min_samples_leaf=40,
                                              categorical_features="from_dtype", random_state=seed)
        models.append(model.fit(frame, target))
    return tuple(models)


def expected_loss(cal: Calibrator, x: pd.DataFrame, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's expected absolute and squared error (never below 0)."""
    if cal.loss is None:
        raise ValueError("this regression model has no loss estimator")
    absolute, squared = cal.loss
    frame = loss_frame(x, prediction)[list(absolute.feature_names_in_)]
    return np.clip(absolute.predict(frame), 0, None), np.clip(squared.predict(frame), 0, None)
