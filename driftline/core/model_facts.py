"""What a fitted model is made of, read from the object itself: its final estimator, the
installed distributions its classes come from (with versions: the model's pip requirements and
its card), the boosting rounds it kept, and its estimator's own importance, where it has one."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np

from driftline.core import estimators


def final_estimator(model):
    """The last step of the fitted pipeline (inside a threshold wrapper or not)."""
    inner = getattr(model, "estimator_", model)
    steps = getattr(inner, "steps", None)
    return steps[-1][1] if steps else inner


def preprocess_step(model):
    inner = getattr(model, "estimator_", model)
    return getattr(inner, "named_steps", {}).get("preprocess")


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


def libraries(model) -> dict[str, str]:
    """{distribution: version} for every installed package a class inside the model comes from
    (its estimators, transformers and their bases), found by walking the fitted object. Classes
    compiled from a project's code (a custom factory's) belong to no distribution and are left
    out; driftline itself is the server's, not the model's."""
    from importlib.metadata import version

    tops: set[str] = set()
    seen: set[int] = set()

    def visit(obj, depth: int) -> None:
        if id(obj) in seen or depth > 12:
            return
        seen.add(id(obj))
        if isinstance(obj, list | tuple):
            for item in obj:
                visit(item, depth + 1)
            return
        if isinstance(obj, dict):
            for item in obj.values():
                visit(item, depth + 1)
            return
        if not hasattr(obj, "get_params"):
            return
        tops.update(cls.__module__.split(".")[0] for cls in type(obj).__mro__)
        for value in vars(obj).values():
            visit(value, depth + 1)

    visit(model, 0)
    names = {dist for top in tops for dist in _distributions().get(top, []) if dist != "driftline"}
    return {name: version(name) for name in sorted(names)}


def rounds_kept(model) -> int | None:
    return estimators.rounds_used(final_estimator(model))


def fit_metrics(model) -> dict[str, float]:
    """What the fit decided and a run should record: the rounds kept by early stopping."""
    rounds = rounds_kept(model)
    return {"best_iteration": float(rounds)} if rounds is not None else {}


def native_importance(model) -> tuple[list[str], np.ndarray, str] | None:
    """(input names, values, what they measure) from the estimator's own importance: tree
    ensembles' `feature_importances_`, a linear model's absolute coefficients (on standardized
    inputs); None when it has neither (HistGradientBoosting, most custom estimators)."""
    est = final_estimator(model)
    values = getattr(est, "feature_importances_", None)
    what = f"{type(est).__name__}.feature_importances_"
    if getattr(est, "importance_type", None):
        what += f" ({est.importance_type})"
    if values is None and getattr(est, "coef_", None) is not None:
        values = np.abs(np.atleast_2d(est.coef_)).mean(axis=0)
        what = f"|{type(est).__name__}.coef_| on standardized inputs"
    if values is None:
        return None
    values = np.asarray(values, dtype=float)
    pre = preprocess_step(model)
    try:
        names = [str(n) for n in pre.get_feature_names_out()] if pre is not None else \
            [str(n) for n in getattr(est, "feature_names_in_", [])]
    except (AttributeError, ValueError):
        names = []
    if len(names) != len(values):
        names = [f"input {i}" for i in range(len(values))]
    return names, values, what


def describe(model, p) -> dict[str, str]:
    """The model card's lines about the estimator: its class, where it came from, the libraries."""
    est, cfg = final_estimator(model), p.training.estimator
    origin = {"sklearn": f"class {getattr(cfg, 'class_', '')}", "custom": f"factory {getattr(cfg, 'factory', '')}"}
    lines = {"estimator": f"{type(est).__module__.split('.')[0]}.{type(est).__name__}"
             + (f" ({origin[cfg.kind]})" if cfg.kind in origin else ""),
             "libraries": ", ".join(f"{k} {v}" for k, v in libraries(model).items()) or "-"}
    rounds = rounds_kept(model)
    if rounds is not None:
        lines["early stopping"] = f"{rounds} rounds kept (validation slice {cfg.early_stopping.validation_share:.0%} " \
                                  f"of the training part, {cfg.early_stopping.rounds} rounds of patience)"
    return lines
