"""Each estimator kind's fastest predict on a NumPy array, named by the kinds' registry
(`estimators.Kind.fast`) and used by the serving plan (`core.plan`).

A fast path returns exactly what the estimator's own `predict_proba` (a classifier) or `predict`
(a regressor) returns for the same array, bit for bit: it runs the same computation without the
per-call work around it (input validation, feature-name checks, the parameter bookkeeping). The
plan checks that at load, row by row, and serves through the Pipeline when it does not hold;
tests/unit/core/test_fast_predict.py pins the library internals these functions read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FastPath:
    """`predict`: the estimator's input matrix (float64) -> its predict_proba or predict.
    `recode`: the estimator's own transform of that matrix before its trees, column by column
    (HistGradientBoosting's category encoder), which the plan applies once to its lookup tables
    instead of to every batch; None when there is none."""

    predict: Predict
    recode: Predict | None = None


class NoFastPath(ValueError):
    """This fitted estimator cannot be called through its kind's fast path; the message says why."""


# Below this many rows one OpenMP thread answers sooner than a team (measured: a 16-row batch of
# the demo's 200 trees took 0.9 ms on one thread and 2.6 ms on two, as the team wakes per tree).
SMALL_BATCH = 512


def hist_gradient_boosting(est, classification: bool) -> FastPath:
    """The fitted predictors and the loss, as `_raw_predict` and `predict_proba` use them, with the
    known-category bitsets made once instead of on every call."""
    from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    if getattr(est, "_in_fit", False):
        raise NoFastPath("the estimator is still fitting")
    bitsets, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
    trees = [[(p.nodes, p.raw_left_cat_bitsets) for p in iteration] for iteration in est._predictors]
    baseline, k, loss, threads = est._baseline_prediction, est.n_trees_per_iteration_, est._loss, \
        _openmp_effective_n_threads()

    def raw(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        out = np.zeros(shape=(n, k), dtype=baseline.dtype, order="F")  # as _raw_predict makes it
        out += baseline
        tree_out = np.empty(n, dtype=np.float64)
        n_threads = 1 if n < SMALL_BATCH else threads  # each row is its own sum: threads change no bit
        for iteration in trees:
            for j, (nodes, cat_bitsets) in enumerate(iteration):
                _predict_from_raw_data(nodes, x, cat_bitsets, bitsets, f_idx_map, n_threads, tree_out)
                out[:, j] += tree_out
        return out

    if classification:
        def predict(x: np.ndarray) -> np.ndarray:
            return loss.predict_proba(raw(x))
    else:
        def predict(x: np.ndarray) -> np.ndarray:
            return loss.link.inverse(raw(x).ravel())
    return FastPath(predict, _recode(est._preprocessor))


def _recode(pre) -> Predict | None:
    """HistGradientBoosting's own category encoder (a ColumnTransformer: its categorical columns
    through an OrdinalEncoder, the rest checked), when it keeps the columns in their order."""
    if pre is None:
        return None
    order = np.empty(pre.n_features_in_, dtype=np.intp)
    for name, _, mask in pre.transformers_:
        if name in pre.output_indices_:
            out = pre.output_indices_[name]
            mask = np.asarray(mask)
            order[out.start:out.stop] = np.flatnonzero(mask) if mask.dtype == bool else mask.astype(np.intp)
    if not np.array_equal(order, np.arange(len(order))):
        raise NoFastPath("its category encoder reorders the columns")
    return pre.transform


def xgboost(est, classification: bool) -> FastPath:
    """The booster's `inplace_predict`, with the arguments XGBoost's sklearn `predict` passes."""
    from xgboost.sklearn import _cls_predict_proba

    if not est._can_use_inplace_predict() or getattr(est, "objective", None) == "multi:softmax":
        raise NoFastPath(f"booster {est.booster!r} with objective {est.objective!r} has no in-place predict")
    booster, rounds, missing = est.get_booster(), est._get_iteration_range(None), est.missing

    def value(x: np.ndarray) -> np.ndarray:
        return booster.inplace_predict(x, iteration_range=rounds, predict_type="value", missing=missing,
                                       validate_features=False)

    if not classification:
        return FastPath(value)
    n_classes = est.n_classes_
    return FastPath(lambda x: _cls_predict_proba(n_classes, value(x), np.vstack))


def lightgbm(est, classification: bool) -> FastPath:
    """The booster's `predict`, with the parameters LightGBM's sklearn `predict` works out on every
    call worked out once."""
    from lightgbm.basic import _choose_param_value, _ConfigAliases

    if callable(est._objective):
        raise NoFastPath("a custom objective: LightGBM answers raw scores")
    params = est._process_params(stage="predict")
    for alias in _ConfigAliases.get_by_alias("data", "X", "raw_score", "start_iteration", "num_iteration",
                                             "pred_leaf", "pred_contrib"):
        params.pop(alias, None)
    params = _choose_param_value("num_threads", params, est.n_jobs)
    params["num_threads"] = est._process_n_jobs(params["num_threads"])
    booster = est._Booster

    def value(x: np.ndarray) -> np.ndarray:
        return booster.predict(x, raw_score=False, start_iteration=0, num_iteration=None, pred_leaf=False,
                               pred_contrib=False, validate_features=False, **params)

    if not classification or est.n_classes_ > 2:
        return FastPath(value)

    def proba(x: np.ndarray) -> np.ndarray:
        result = value(x)
        return np.vstack((1.0 - result, result)).transpose()

    return FastPath(proba)
