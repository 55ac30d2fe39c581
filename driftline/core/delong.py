"""DeLong's interval for the difference of two correlated ROC AUCs on the same rows (DeLong,
DeLong and Clarke-Pearson 1988), computed with midranks as in Sun and Xu (2014): O(n log n), no
resampling. `evaluation.comparison.method: delong` uses it instead of the paired bootstrap; it is
the bootstrap's large-sample answer (tests/unit/core/test_comparison.py compares the two).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, rankdata


def components(positive: np.ndarray, score: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The AUC and its structural components: V10 per positive row (the share of negatives it
    outranks, ties counting half) and V01 per negative row (the share of positives outranking it)."""
    pos, neg = score[positive], score[~positive]
    m, n = len(pos), len(neg)
    if not m or not n:
        raise ValueError("DeLong's interval needs both classes among the rows")
    within_pos, within_neg = rankdata(pos), rankdata(neg)
    overall = rankdata(np.concatenate([pos, neg]))
    v10 = (overall[:m] - within_pos) / n
    v01 = 1.0 - (overall[m:] - within_neg) / m
    return float(v10.mean()), v10, v01


def interval(positive: np.ndarray, first: np.ndarray, second: np.ndarray, confidence: float) -> tuple[float, float]:
    """The `confidence` interval of AUC(first) - AUC(second), both scored on the same rows."""
    positive = np.asarray(positive, dtype=bool)
    auc_a, a10, a01 = components(positive, np.asarray(first, dtype="float64"))
    auc_b, b10, b01 = components(positive, np.asarray(second, dtype="float64"))
    s10 = np.cov(np.vstack([a10, b10]))
    s01 = np.cov(np.vstack([a01, b01]))
    contrast = np.array([1.0, -1.0])
    variance = contrast @ (s10 / len(a10) + s01 / len(a01)) @ contrast
    half = float(norm.ppf(0.5 + confidence / 2) * np.sqrt(max(variance, 0.0)))
    delta = auc_a - auc_b
    return delta - half, delta + half
