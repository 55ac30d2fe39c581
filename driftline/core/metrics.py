"""The metric names of each task, and which way each of them improves."""

from __future__ import annotations

from typing import Literal

Task = Literal["binary", "multiclass", "regression"]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = frozenset({"rmse", "mae"})


def metrics_for(task: Task) -> tuple[str, ...]:
    return REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS

