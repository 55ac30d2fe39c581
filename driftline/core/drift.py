"""Per-column drift statistics, computed directly with NumPy/SciPy on the whole window.

The statistics and their default choice are Evidently's (`DataDriftPreset`'s defaults in
0.7): with more than 1,000 reference values, the normed Wasserstein distance for numeric
columns with more than 5 distinct values and the Jensen-Shannon distance otherwise (drift
when the distance is >= 0.1); with 1,000 or fewer, the Kolmogorov-Smirnov test for numeric
columns, chi-square (more than 2 values) or a two-proportion z-test (2 values) otherwise
(drift when p < 0.05, KS: p <= 0.05). Evidently itself then only renders the report, on a
sample: at a 1,000,000-row window its preset costs minutes and gigabytes, and this costs
seconds, with the same numbers (see `benchmarks/monitor.py`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

DISTANCE_THRESHOLD = 0.1
P_VALUE_THRESHOLD = 0.05
SMALL_REFERENCE = 1000


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    method: str
    score: float
    threshold: float
    drifted: bool
    noise: float | None = None  # the score two samples of the reference reach at this window's size


def sampling_noise(reference: pd.Series, n: int, numeric: bool, draws: int = 5, seed: int = 0) -> float | None:
    """The largest score of `draws` seeded splits of the reference into n rows against the rest:
    what sampling alone gives a window of n rows (the idea of the rollout's PSI floor). None when
    the reference is too small to split that way."""
    ref = _clean(reference).reset_index(drop=True)
    if len(ref) < 2 * n:
        return None
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(draws):
        pick = np.zeros(len(ref), dtype=bool)
        pick[rng.choice(len(ref), n, replace=False)] = True
        scores.append(column_drift("", ref[~pick], ref[pick], numeric).score)
    return float(max(scores))


def with_noise(c: ColumnDrift, reference: pd.Series, n: int, numeric: bool) -> ColumnDrift:
    """A drifted distance column with its sampling noise (p-value tests already account for n)."""
    if not c.drifted or c.method not in ("wasserstein", "jensenshannon"):
        return c
    return dataclasses.replace(c, noise=sampling_noise(reference, n, numeric))


def _clean(values: pd.Series) -> pd.Series:
    if values.dtype.kind in "fiu":
        values = values.astype("float64")
        return values[np.isfinite(values.to_numpy())]
    return values.dropna()


def shares(reference: pd.Series, current: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Each value's share of its side's non-missing values, both keyed by every value either
    side holds. Categoricals count their unseen categories as zeros: only observed values are keys."""
    reference, current = reference.dropna(), current.dropna()
    ref, cur = reference.value_counts(), current.value_counts()
    ref, cur = ref[ref > 0], cur[cur > 0]
    keys = ref.index.astype(object).union(cur.index.astype(object))
    ref.index, cur.index = ref.index.astype(object), cur.index.astype(object)
    return (ref.reindex(keys, fill_value=0) / max(len(reference), 1),
            cur.reindex(keys, fill_value=0) / max(len(current), 1))


def _jensen_shannon(reference: pd.Series, current: pd.Series, numeric: bool) -> float:
    if numeric and reference.nunique() > 20:
        edges = np.histogram_bin_edges(np.concatenate([reference.to_numpy(), current.to_numpy()]), bins="sturges")
        ref = np.histogram(reference, edges)[0] / len(reference)
        cur = np.histogram(current, edges)[0] / len(current)
    else:
        ref, cur = (s.to_numpy() for s in shares(reference, current))
    return float(distance.jensenshannon(ref, cur))


def _chi_square(reference: pd.Series, current: pd.Series) -> float:
    ref, cur = (s.to_numpy() for s in shares(reference, current))
    return float(stats.chisquare(cur * len(current), ref * len(current)).pvalue)


def _z_test(reference: pd.Series, current: pd.Series) -> float:
    keys = sorted(set(reference.unique()) | set(current.unique()))
    if len(keys) == 1:
        return 1.0
    p1, p2 = float((reference != keys[0]).mean()), float((current != keys[0]).mean())
    n1, n2 = len(reference), len(current)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    spread = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 1.0 if spread == 0 else float(2 * stats.norm.sf(abs((p1 - p2) / spread)))


def _distinct(reference: pd.Series, current: pd.Series) -> int:
    """Distinct values of both together, as Evidently counts them to choose a test; only the
    answer's side of 5 matters, and concatenating a million values costs more than the test."""
    seen = reference.nunique()
    return seen if seen > 5 else len(set(reference.unique()).union(current.unique()))


def _wasserstein(u: np.ndarray, v: np.ndarray) -> float:
    """scipy.stats.wasserstein_distance: the integral of |F_u - F_v| between consecutive values
    of both samples. Tied values add zero-width steps, so the steps are taken between distinct
    values only; most logged features take few distinct values, which makes this fast."""
    u, v = np.sort(u), np.sort(v)
    both = np.sort(np.concatenate((u, v)), kind="mergesort")
    grid = both[np.r_[True, both[1:] != both[:-1]]]
    deltas = np.diff(grid)
    u_cdf = u.searchsorted(grid[:-1], "right") / u.size
    v_cdf = v.searchsorted(grid[:-1], "right") / v.size
    return float(np.sum(np.multiply(np.abs(u_cdf - v_cdf), deltas)))


def column_drift(name: str, reference: pd.Series, current: pd.Series, numeric: bool) -> ColumnDrift:
    """Drift of one column, by Evidently's default test for its type and the reference size."""
    reference, current = _clean(reference), _clean(current)
    if reference.empty or current.empty:
        return ColumnDrift(name, "empty", float("nan"), DISTANCE_THRESHOLD, False)
    distinct = _distinct(reference, current)
    if len(reference) > SMALL_REFERENCE:
        if numeric and distinct > 5:
            norm = max(float(np.std(reference.to_numpy())), 0.001)
            score = _wasserstein(reference.to_numpy(), current.to_numpy()) / norm
            method = "wasserstein"
        else:
            score, method = _jensen_shannon(reference, current, numeric), "jensenshannon"
        return ColumnDrift(name, method, score, DISTANCE_THRESHOLD, score >= DISTANCE_THRESHOLD)
    if numeric and distinct > 5:
        p = float(stats.ks_2samp(reference.to_numpy(), current.to_numpy()).pvalue)
        return ColumnDrift(name, "ks", p, P_VALUE_THRESHOLD, p <= P_VALUE_THRESHOLD)
    p, method = (_chi_square(reference, current), "chisquare") if distinct > 2 else (_z_test(reference, current), "z")
    return ColumnDrift(name, method, p, P_VALUE_THRESHOLD, p < P_VALUE_THRESHOLD)


def scipy_data_drift(current: pd.DataFrame, reference: pd.DataFrame, numeric: list[str],
                     categorical: list[str]) -> list[ColumnDrift]:
    """Every column's drift by the statistics above, computed here (Evidently's own run is
    `adapters.evidently_drift.evidently_data_drift`)."""
    return ([column_drift(c, reference[c], current[c], True) for c in numeric]
            + [column_drift(c, reference[c], current[c], False) for c in categorical])


@dataclass(frozen=True)
class QualityRow:
    column: str
    missing_reference: float
    missing_current: float
    unknown_share: float  # categorical: values outside the configured categories; numeric: outside min/max


def quality(current: pd.DataFrame, reference: pd.DataFrame, features: list) -> list[QualityRow]:
    """The data-quality summary: missing values and values outside what the config allows."""
    rows = []
    for f in features:
        cur = current[f.name]
        if f.type == "categorical" and f.categories:
            outside = cur.notna() & ~cur.isin(f.categories)
        elif f.type == "numeric":
            values = pd.to_numeric(cur, errors="coerce")
            outside = ((values < f.min) if f.min is not None else False) | \
                      ((values > f.max) if f.max is not None else False)
        else:
            outside = pd.Series(False, index=cur.index)
        rows.append(QualityRow(f.name, float(reference[f.name].isna().mean()) if len(reference) else 0.0,
                               float(cur.isna().mean()) if len(cur) else 0.0,
                               float(np.mean(outside)) if len(cur) else 0.0))
    return rows
