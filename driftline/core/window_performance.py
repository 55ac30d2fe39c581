"""The champion's performance on the monitor's window, from the log's rows: estimated from its
scores, realized from the labels that came back, and both per score band (labels rarely come
back evenly: in lending only approved loans that matured have one)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from driftline.core import estimation
from driftline.core.calibration import Calibrator
from driftline.core.estimation import Estimate, Realized, Window

PROBA = "proba_"  # the log's per-class probability columns of a multiclass answer: proba_0, proba_1, ...
EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # score bands of a classifier; quintiles for regression


@dataclass(frozen=True)
class Scoring:
    """What the estimate needs of the champion: its calibrator (or its raw scores), the index of
    the positive class among its classes, and its holdout metrics."""

    calibrator: Calibrator
    positive: int = 1
    holdout: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Band:
    label: str
    rows: int
    labelled: int
    estimated: float | None  # mean chance of being right (classifier) or expected |error| (regression)
    realized: float | None  # the same on the labelled rows

    @property
    def coverage(self) -> float:
        return self.labelled / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class Judged:
    """The window's performance: estimated, realized, and per score band."""

    estimate: Estimate | None
    realized: Realized | None
    bands: list[Band]
    left_out: int = 0  # rows the estimate could not read (no per-class probabilities, an unknown class)


def class_index(values: pd.Series, classes: list) -> np.ndarray:
    """Each value's index in `classes` (-1 when none): as logged, else compared as text."""
    found = pd.Index(classes).get_indexer(pd.Index(values))
    if (found < 0).any():
        as_text = pd.Index([str(c) for c in classes]).get_indexer(pd.Index(values.astype(str)))
        found = np.where(found < 0, as_text, found)
    return found


def window(rows: pd.DataFrame, cal: Calibrator, features: list[str]) -> tuple[Window, np.ndarray]:
    """The rows as the estimate reads them, and which rows of `rows` that is (a mask): a multiclass
    row needs every class's probability (rows logged before the server wrote them are left out)."""
    if cal.task == "regression":
        predicted = pd.to_numeric(rows["prediction"], errors="coerce").to_numpy(dtype="float64")
        keep = np.isfinite(predicted)
        x = rows.loc[keep, [f for f in features if f in rows.columns]]
        x = x.apply(lambda c: c.astype(object) if isinstance(c.dtype, pd.CategoricalDtype) else c)
        return Window(predicted[keep], None, predicted[keep], x), keep
    score = pd.to_numeric(rows["score"], errors="coerce").to_numpy(dtype="float64")
    predicted = class_index(rows["prediction"], cal.classes)
    if cal.task == "binary":
        keep = np.isfinite(score) & (predicted >= 0)
        return Window(predicted[keep], None, score[keep]), keep
    names = [f"{PROBA}{j}" for j in range(cal.columns)]
    raw = rows.reindex(columns=names).apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
    keep = np.isfinite(raw).all(axis=1) & (predicted >= 0)
    return Window(predicted[keep], raw[keep], score[keep]), keep


def truth(labels: pd.Series, cal: Calibrator) -> np.ndarray:
    """The labels (JSON text, None where none came back) as class indices (-1: none), or as numbers
    (NaN: none) for regression. Each distinct text is parsed once."""
    present = labels.notna().to_numpy()
    texts = labels[present]
    parsed = {text: json.loads(text) for text in texts.unique()}
    values = pd.Series(texts.map(parsed).to_numpy(), dtype=object)
    if cal.task == "regression":
        out = np.full(len(labels), np.nan)
        out[present] = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
        return out
    out = np.full(len(labels), -1, dtype=np.int64)
    if present.any():
        out[present] = class_index(values, cal.classes)
    return out


def edges(w: Window, task: str) -> np.ndarray:
    if task != "regression" or not len(w.score):
        return np.array(EDGES)
    found = np.unique(np.quantile(w.score, np.linspace(0, 1, 6)))
    return found if len(found) > 1 else np.array([found[0], found[0] + 1.0])


def bands(cuts: np.ndarray, e: Estimate, r: Realized | None) -> list[Band]:
    """Rows, labels and the estimated and realized accuracy (regression: mean |error|) per band
    of the logged score; empty bands are left out."""
    out = []
    for b in range(len(cuts) - 1):
        rows = round(float(e.band_rows[b]))
        if not rows:
            continue
        got = int(r.band_labelled[b]) if r is not None else 0
        out.append(Band(f"{cuts[b]:.4g}–{cuts[b + 1]:.4g}", rows, got, float(e.band_expected[b]),
                        float(r.band_realized[b]) if got else None))
    return out


def judge(rows: pd.DataFrame, labels: pd.Series, scoring: Scoring, features: list[str]) -> Judged:
    """Estimated and realized performance of the champion's answers `rows`, whose labels (JSON text
    or None, aligned with `rows`) are `labels`: every row, in one pass."""
    cal = scoring.calibrator
    w, keep = window(rows, cal, features)
    cuts = edges(w, cal.task)
    est = estimation.estimate(w, cal, scoring.positive, cuts)
    r = None
    if labels.notna().any():
        y = truth(pd.Series(labels.to_numpy()[keep], dtype=object), cal)
        r = estimation.realized(w, y, scoring.positive, cal.task, cuts)
    return Judged(est, r if r is not None and r.labelled else None, bands(cuts, est, r), int((~keep).sum()))
