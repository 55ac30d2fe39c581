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


# Below this many rows the trees are walked in one call (`forest`), on one thread: the stacked
# batch (rows x trees x inputs) stays small.
SMALL_BATCH = 512


def hist_gradient_boosting(est, classification: bool) -> FastPath:
    """The fitted predictors and the loss, as `_raw_predict` and `predict_proba` use them, with the
    known-category bitsets made once instead of on every call. A small batch walks every tree in
    one call of scikit-learn's own tree walk (`forest`); a large one tree by tree, as sklearn does."""
    from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    if getattr(est, "_in_fit", False):
        raise NoFastPath("the estimator is still fitting")
    bitsets, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
    trees = [[(p.nodes, p.raw_left_cat_bitsets) for p in iteration] for iteration in est._predictors]
    baseline, k, loss, threads = est._baseline_prediction, est.n_trees_per_iteration_, est._loss, \
        _openmp_effective_n_threads()
    walk_all = forest([t for iteration in trees for t in iteration], f_idx_map)

    def raw(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        out = np.zeros(shape=(n, k), dtype=baseline.dtype, order="F")  # as _raw_predict makes it
        out += baseline
        if n < SMALL_BATCH:
            leaves = walk_all(x, bitsets).reshape(-1, k, n)
            for j in range(k):
                # Added tree by tree in sklearn's order, from the baseline: accumulate's running
                # sum is that sequence of additions (0.03 ms for 200 trees, a loop of += 0.33 ms).
                out[:, j] = np.add.accumulate(np.concatenate([out[None, :, j], leaves[:, j, :]]), axis=0)[-1]
            return out
        tree_out = np.empty(n, dtype=np.float64)
        for iteration_trees in trees:
            for j, (nodes, cat_bitsets) in enumerate(iteration_trees):
                _predict_from_raw_data(nodes, x, cat_bitsets, bitsets, f_idx_map, threads, tree_out)
                out[:, j] += tree_out
        return out

    if classification:
        def predict(x: np.ndarray) -> np.ndarray:
            return loss.predict_proba(raw(x))
    else:
        def predict(x: np.ndarray) -> np.ndarray:
            return loss.link.inverse(raw(x).ravel())
    return FastPath(predict, _recode(est._preprocessor))


def forest(trees: list[tuple[np.ndarray, np.ndarray]], f_idx_map: np.ndarray):
    """Every tree in one node array under a router: a balanced binary tree of numeric splits on an
    extra input column holding the tree's number, whose leaves are the trees' roots. One call of
    sklearn's `_predict_from_raw_data` on the batch stacked once per tree then walks each row of
    each tree exactly as a call per tree would (the same nodes, the same comparisons), without
    200 calls' overhead: a 16-row batch of the demo's 200 trees took 1.4 ms tree by tree (most of
    it acquiring the arguments' buffers, per call) and about a quarter of that in one call.
    Returns (x, known category bitsets) -> the leaf values, tree after tree."""
    from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data

    count = len(trees)
    sizes = [len(nodes) for nodes, _ in trees]
    starts = np.cumsum([count - 1, *sizes[:-1]])  # the router's count - 1 nodes come first
    cat_starts = np.cumsum([0, *[len(b) for _, b in trees[:-1]]])
    nodes = np.zeros(count - 1 + sum(sizes), dtype=trees[0][0].dtype)
    for (tree, _), start, cat_start in zip(trees, starts, cat_starts, strict=True):
        part = tree.copy()
        inner = part["is_leaf"] == 0
        part["left"][inner] += np.uint32(start)
        part["right"][inner] += np.uint32(start)
        part["bitset_idx"][part["is_categorical"] == 1] += np.uint32(cat_start)
        nodes[start:start + len(part)] = part
    feature = len(f_idx_map)
    free = iter(range(1, count - 1))

    def route(lo: int, hi: int, at: int) -> None:  # node `at` sends trees lo..mid-1 left, mid..hi-1 right
        mid = (lo + hi) // 2
        nodes[at]["feature_idx"], nodes[at]["num_threshold"] = feature, mid - 0.5
        for side, (a, b) in (("left", (lo, mid)), ("right", (mid, hi))):
            if b - a == 1:
                nodes[at][side] = starts[a]
            else:
                nodes[at][side] = child = next(free)
                route(a, b, child)

    if count > 1:
        route(0, count, 0)
    cat_bitsets = np.ascontiguousarray(np.concatenate([b for _, b in trees]))
    f_map = np.append(f_idx_map, np.uint32(0)).astype(f_idx_map.dtype)
    which = np.arange(count, dtype=np.float64)

    def walk(x: np.ndarray, known: np.ndarray) -> np.ndarray:
        n, width = x.shape
        stacked = np.empty((count * n, width + 1), dtype=np.float64)
        stacked[:, :width] = np.tile(x, (count, 1))
        stacked[:, width] = np.repeat(which, n)
        out = np.empty(count * n, dtype=np.float64)
        _predict_from_raw_data(nodes, stacked, cat_bitsets, known, f_map, 1, out)
        return out

    if count == 1:  # no router: the one tree is the forest
        nodes = trees[0][0]
    return walk


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
