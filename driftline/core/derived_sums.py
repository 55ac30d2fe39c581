"""Derived features fitted from sums over partitions (training.distributed).

What a derived kind learns is counts and sums: a frequency is a category's rows over all rows, a
target encoding (scikit-learn's TargetEncoder, smooth="auto") is each category's count, sum and
sum of squares of the target against the whole table's. Each partition adds up its own, per
cross-fitting fold (`features.hash_folds`: a row's fold is a hash of its features, so a partition
knows its rows' folds); the totals make the fitted step, and a training row's out-of-fold value
comes from the totals less its own fold's. The step is the `DerivedFeatures` that `fit_transform`
would have fitted on the same rows in one process, and the values are the ones it would have
given (to rounding: sums instead of two passes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftline.config import Params
from driftline.core import features, frames
from driftline.core.features import FOLDS, DerivedFeatures

LEARNED_FROM_SUMS = ("frequency", "target_encoding")


def _encoded_target(y: np.ndarray, target_type: str, classes: list) -> np.ndarray:
    """The target as TargetEncoder reads it: the index of the class (sorted) for a binary task."""
    if target_type == "continuous":
        return np.asarray(y, dtype="float64")
    return np.searchsorted(np.asarray(classes), np.asarray(y)).astype("float64")


def partition_sums(part: pd.DataFrame, p: Params, classes: list) -> dict[str, pd.DataFrame]:
    """One partition's counts (and target sums by fold) of each learning derived feature."""
    step = features.from_params(p)
    x = frames.features(part, p.data)
    out: dict[str, pd.DataFrame] = {}
    y = fold = None
    for s in step.specs:
        if s["kind"] not in LEARNED_FROM_SUMS:
            continue
        cats = features.category_values(x[s["column"]])
        if s["kind"] == "frequency":
            out[s["name"]] = pd.DataFrame({"cat": cats, "n": 1}).groupby("cat").sum()
            continue
        if y is None:
            y = _encoded_target(frames.target(part, p.data), step.target_type, classes)
            fold = features.hash_folds(x, step.seed)
        frame = pd.DataFrame({"fold": fold, "cat": cats, "n": 1, "s": y, "ss": y * y})
        out[s["name"]] = frame.groupby(["fold", "cat"]).sum()
    return out


def merge_sums(parts: list[dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    names = dict.fromkeys(name for part in parts for name in part)
    return {name: pd.concat([part[name] for part in parts if name in part]).groupby(level=list(
        range(parts[0][name].index.nlevels))).sum() for name in names}


def _encoding(n: np.ndarray, s: np.ndarray, ss: np.ndarray, total: tuple[float, float, float]) -> np.ndarray:
    """TargetEncoder's smooth="auto" encodings from sums (Micci-Barreca's equations 5 and 6, as
    scikit-learn computes them); a category without rows takes the target's mean."""
    tn, ts, tss = total
    mean = ts / tn
    variance = tss / tn - mean * mean
    with np.errstate(divide="ignore", invalid="ignore"):
        cat_mean = s / n
        squared = np.maximum(ss - s * s / n, 0.0)  # sum of squared differences from the category's mean
        lam = variance * n / (variance * n + squared / n)
        return np.where(np.isnan(lam), mean, lam * cat_mean + (1 - lam) * mean)


def fitted(p: Params, sums: dict[str, pd.DataFrame], classes: list, feature_names: list[str]) -> DerivedFeatures:
    """The derive step fitted from the table's sums, as `fit` would leave it."""
    from sklearn.preprocessing import TargetEncoder

    step = features.from_params(p)
    step.feature_names_in_ = np.asarray(feature_names, dtype=object)
    step.learned_ = {}
    for s in step.specs:
        if s["kind"] == "frequency":
            counts = sums[s["name"]]["n"]
            step.learned_[s["name"]] = (counts / counts.sum()).to_dict()
        elif s["kind"] == "target_encoding":
            by_cat = sums[s["name"]].groupby(level="cat").sum()
            cats = np.asarray(sorted(by_cat.index), dtype=object)  # TargetEncoder sorts its categories
            # Fitted on one row a category (so that every attribute a fitted encoder has is there), then
            # given the encodings of the whole table.
            y = (np.resize(np.asarray(classes), len(cats)) if step.target_type != "continuous"
                 else np.arange(len(cats), dtype="float64"))
            if step.target_type != "continuous" and len(cats) < len(classes):
                cats, y = np.resize(cats, len(classes)), np.asarray(classes)
            encoder = TargetEncoder(target_type=step.target_type).fit(pd.DataFrame({s["column"]: cats}), y)
            rows = by_cat.reindex(encoder.categories_[0])
            total = (float(by_cat["n"].sum()), float(by_cat["s"].sum()), float(by_cat["ss"].sum()))
            encoder.encodings_ = [_encoding(rows["n"].to_numpy(float), rows["s"].to_numpy(float),
                                            rows["ss"].to_numpy(float), total)]
            encoder.target_mean_ = total[1] / total[0]
            step.learned_[s["name"]] = encoder
    return step


def out_of_fold(step: DerivedFeatures, sums: dict[str, pd.DataFrame], x: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each training row's target encodings from the table's sums less its own fold's: the values
    `fit_transform` gives in one process."""
    out: dict[str, np.ndarray] = {}
    fold = None
    for s in step.specs:
        if s["kind"] != "target_encoding":
            continue
        fold = features.hash_folds(x, step.seed) if fold is None else fold
        table = sums[s["name"]]
        by_cat = table.groupby(level="cat").sum()
        cats = features.category_values(x[s["column"]])
        values = np.empty(len(x), dtype="float64")
        for k in range(FOLDS):
            rows = fold == k
            if not rows.any():
                continue
            mine = table.xs(k, level="fold") if k in table.index.get_level_values("fold") else by_cat.iloc[:0]
            rest = by_cat.sub(mine.reindex(by_cat.index, fill_value=0), fill_value=0)
            total = (float(rest["n"].sum()), float(rest["s"].sum()), float(rest["ss"].sum()))
            encodings = pd.Series(_encoding(rest["n"].to_numpy(float), rest["s"].to_numpy(float),
                                            rest["ss"].to_numpy(float), total), index=rest.index)
            values[rows] = encodings.reindex(cats[rows]).fillna(total[1] / total[0]).to_numpy()
        out[s["name"]] = values
    return out


def derive(step: DerivedFeatures, sums: dict[str, pd.DataFrame], x: pd.DataFrame, training: bool) -> pd.DataFrame:
    """The raw features with the derived ones appended: out of fold for training rows (what the
    model was fitted on), as the fitted step transforms any other row."""
    return step._derive(x, out_of_fold(step, sums, x) if training else {})


def specs_learn(p: Params) -> bool:
    return any(d.kind in LEARNED_FROM_SUMS for d in p.data.derived)

