"""Per-slice metrics for the fairness gates: each gate's groups of the holdout, the metric in
each group, and the gap between the groups large enough to compare. Apart from `evaluation`, which
puts them into an `Evaluation`: they read only a `Predictions` (named here for type checking alone,
so nothing imports back), and `evaluation` stays under 300 lines."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from driftline.config import Params

if TYPE_CHECKING:
    from driftline.core.evaluation import Predictions


def slice_metric(y: np.ndarray, pred: Predictions, metric: str, task: str) -> float:
    if metric == "selection_rate":
        return float(np.mean(pred.labels == pred.positive_label)) if task == "binary" else float("nan")
    if metric == "mae" or task == "regression":
        return float(np.mean(np.abs(y - pred.labels)))
    avg = dict(pos_label=pred.positive_label) if task == "binary" else dict(average="macro")
    fn = {"accuracy": skm.accuracy_score, "recall": skm.recall_score, "precision": skm.precision_score}[metric]
    if metric == "accuracy":
        return float(fn(y, pred.labels))
    return float(fn(y, pred.labels, zero_division=0, **avg))


@dataclass(frozen=True)
class SliceResult:
    attribute: str
    metric: str
    groups: dict[str, dict[str, float]]  # group -> {"n": rows, metric: value}
    gap: float  # NaN when fewer than two groups are large enough to compare
    max_gap: float
    min_group_size: int

    @property
    def counted(self) -> dict[str, dict[str, float]]:
        """The groups with at least `min_group_size` rows: the ones the gap is taken over."""
        return {g: v for g, v in self.groups.items() if v["n"] >= self.min_group_size}

    @property
    def evaluable(self) -> bool:
        return len(self.counted) >= 2

    @property
    def passed(self) -> bool:
        # A gate that cannot be evaluated fails: no evidence of fairness is not evidence of it.
        return self.evaluable and self.gap <= self.max_gap


def slices(holdout: pd.DataFrame, y: np.ndarray, pred: Predictions, p: Params) -> list[SliceResult]:
    results = []
    for gate in p.evaluation.fairness:
        groups: dict[str, dict[str, float]] = {}
        values = holdout[gate.attribute].astype(object).fillna("(missing)").astype(str).to_numpy()
        for group in sorted(set(values)):
            mask = values == group
            sub = replace(pred, labels=pred.labels[mask],
                          proba=None if pred.proba is None else pred.proba[mask])
            groups[group] = {"n": float(mask.sum()),
                             gate.metric: slice_metric(y[mask], sub, gate.metric, p.data.task)}
        big = [g[gate.metric] for g in groups.values() if g["n"] >= gate.min_group_size]
        gap = float(max(big) - min(big)) if len(big) >= 2 else float("nan")
        results.append(SliceResult(gate.attribute, gate.metric, groups, gap, gate.max_gap,
                                   gate.min_group_size))
    return results
