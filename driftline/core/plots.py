"""Pictures of a trained model, as matplotlib figures (no I/O): each titled to read on its own,
with the champion drawn on the same axes where there is one. `training_figures` lists what a
training run draws; the adapter logs each, and a figure that fails is skipped.

Curves and histograms use at most `MAX_ROWS` holdout rows (seeded): a picture needs no more,
and on a 200,000-row holdout the drawing would otherwise cost more than the training's gates.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from driftline.config import Params
from driftline.core import model_facts
from driftline.core.comparison import ChampionScore
from driftline.core.evaluation import Evaluation, Predictions

MAX_ROWS = 50_000
IMPORTANCE_ROWS = 1_000
CURVE_POINTS = 2_000  # more vertices than pixels only slow the PNG down


def subplots(*grid: int, figsize: tuple[float, float], **kwargs):
    """A figure and its axes from matplotlib's object API, on its own Agg canvas. pyplot keeps
    every open figure in one global registry that is not thread-safe; a `Figure` made directly
    is in no registry, so pictures drawn in several threads at once (a training run's beside
    its registration, two flow runs in one `serve` process) share nothing, need no lock and no
    close, and are freed like any object."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(*grid, **kwargs)


def _label(value) -> str:
    return str(value.item() if hasattr(value, "item") else value)


def _thin(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    step = max(1, len(arrays[0]) // CURVE_POINTS)
    return tuple(np.r_[a[::step], a[-1:]] for a in arrays)


def _rows(n: int, seed: int, limit: int = MAX_ROWS) -> np.ndarray:
    return np.arange(n) if n <= limit else np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def roc_pr(y, chal: Predictions, champ: tuple[np.ndarray, Predictions] | None, seed: int):
    """ROC and precision-recall curves of the challenger, the champion's on the same axes."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    fig, (left, right) = subplots(1, 2, figsize=(11, 4.5))
    series = [("challenger", y, chal)] + ([("champion", *champ)] if champ else [])
    for name, truth, pred in series:
        keep = _rows(len(truth), seed)
        positive = truth[keep] == pred.positive_label
        fpr, tpr, _ = roc_curve(positive, pred.score[keep])
        left.plot(*_thin(fpr, tpr), label=f"{name} (AUC {auc(fpr, tpr):.3f}, {len(keep):,} rows)")
        precision, recall, _ = precision_recall_curve(positive, pred.score[keep])
        right.plot(*_thin(recall, precision), label=f"{name} (AUC {auc(recall, precision):.3f})")
    left.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    left.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve on the holdout")
    right.set(xlabel="recall", ylabel="precision", title=f"Precision-recall for class {_label(chal.positive_label)}")
    for ax in (left, right):
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def confusion(y, pred: Predictions, threshold: float | str):
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = subplots(figsize=(5, 4.5))
    ConfusionMatrixDisplay.from_predictions(y, pred.labels, labels=list(pred.classes), ax=ax, colorbar=False)
    ax.set_title(f"Confusion matrix at threshold {threshold} ({len(y):,} holdout rows)")
    fig.tight_layout()
    return fig


def calibration(y, chal: Predictions, champ: tuple[np.ndarray, Predictions] | None, seed: int):
    from sklearn.calibration import calibration_curve

    fig, ax = subplots(figsize=(5.5, 4.5))
    for name, truth, pred in [("challenger", y, chal)] + ([("champion", *champ)] if champ else []):
        keep = _rows(len(truth), seed)
        observed, predicted = calibration_curve(truth[keep] == pred.positive_label, pred.score[keep], n_bins=10,
                                                strategy="quantile")
        ax.plot(predicted, observed, "o-", label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    ax.set(xlabel="predicted probability (deciles)", ylabel="observed share positive",
           title="Calibration on the holdout")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def score_distribution(y, pred: Predictions, threshold: float, seed: int):
    keep = _rows(len(y), seed)
    fig, ax = subplots(figsize=(6, 4))
    for cls in pred.classes:
        ax.hist(pred.score[keep][y[keep] == cls], bins=40, alpha=0.55, density=True, label=f"true class {_label(cls)}")
    ax.axvline(threshold, color="black", linestyle="--", label=f"decision threshold {threshold}")
    ax.set(xlabel=f"score (probability of class {_label(pred.positive_label)})", ylabel="density",
           title="Score distribution per true class")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def regression(y, chal: Predictions, champ: tuple[np.ndarray, Predictions] | None, seed: int):
    """Predicted against actual (champion overlaid), residuals against prediction, their spread."""
    fig, (a, b, c) = subplots(1, 3, figsize=(14, 4.3))
    keep = _rows(len(y), seed, 5_000)
    for name, truth, pred in [("challenger", y, chal)] + ([("champion", *champ)] if champ else []):
        rows = _rows(len(truth), seed, 5_000)
        a.scatter(truth[rows], pred.labels[rows], s=4, alpha=0.4, label=name)
    low, high = float(np.min(y[keep])), float(np.max(y[keep]))
    a.plot([low, high], [low, high], ":", color="grey")
    a.set(xlabel="actual", ylabel="predicted", title="Predicted against actual")
    a.legend(loc="best", fontsize=8)
    residual = y - chal.labels
    b.scatter(chal.labels[keep], residual[keep], s=4, alpha=0.4)
    b.axhline(0, color="grey", linestyle=":")
    b.set(xlabel="predicted", ylabel="actual - predicted", title="Residuals against prediction")
    c.hist(residual[_rows(len(y), seed)], bins=50)
    c.set(xlabel="actual - predicted", ylabel="rows", title=f"Residuals (mean {residual.mean():.3g})")
    fig.tight_layout()
    return fig


def importance(model, x, y, p: Params, repeats: int = 3):
    """Permutation importance on a seeded sample of the holdout: how much the primary metric
    drops when one raw column is shuffled. Every column's repeats go through the model as one
    batch: a model call has a fixed cost (about 55 ms for 3,000 rows against 420 ms for 42,000,
    so 14 columns cost 0.8 s in 14 calls and 0.4 s in one)."""
    import pandas as pd

    from driftline.core.evaluation import metric as score_of
    from driftline.core.evaluation import predict
    from driftline.core.metrics import LOWER_IS_BETTER

    metric, task = p.evaluation.primary_metric, p.data.task
    rows = _rows(len(x), p.training.seed, IMPORTANCE_ROWS)
    sample, truth, n = x.iloc[rows].reset_index(drop=True), y[rows], len(rows)
    base = score_of(truth, predict(model, sample, p), task, metric)
    rng = np.random.default_rng(p.training.seed)
    sign = 1 if metric in LOWER_IS_BETTER else -1
    columns = list(sample.columns)
    shuffled = [sample.assign(**{col: sample[col].to_numpy()[rng.permutation(n)]})
                for col in columns for _ in range(repeats)]
    pred = predict(model, pd.concat(shuffled, ignore_index=True), p)
    drops = {}
    for c, col in enumerate(columns):
        scores = [score_of(truth, pred.subset(slice(i * n, (i + 1) * n)), task, metric)
                  for i in range(c * repeats, (c + 1) * repeats)]
        drops[col] = sign * (np.asarray(scores) - base)
    top = sorted(drops, key=lambda c: drops[c].mean(), reverse=True)[:15][::-1]
    fig, ax = subplots(figsize=(7, 0.35 * len(top) + 1.5))
    ax.barh(top, [drops[c].mean() for c in top], xerr=[drops[c].std() for c in top])
    ax.set(xlabel=f"drop in {metric} when shuffled ({n:,} holdout rows, {repeats} repeats)",
           title="Permutation importance (top features)")
    fig.tight_layout()
    return fig


def native_importance(names: list[str], values: np.ndarray, what: str):
    """The estimator's own importance of each input it saw (after preprocessing: one-hot columns
    one by one), the top 15."""
    order = np.argsort(values)[::-1][:15][::-1]
    fig, ax = subplots(figsize=(7, 0.35 * len(order) + 1.5))
    ax.barh([names[i] for i in order], values[order])
    ax.set(xlabel=what, title="The estimator's own importance (top inputs)")
    fig.tight_layout()
    return fig


def slices(ev: Evaluation):
    """Each sensitive attribute's groups on its metric, the gap against its limit."""
    fig, axes = subplots(1, len(ev.slices), figsize=(5 * len(ev.slices), 4), squeeze=False)
    for ax, s in zip(axes[0], ev.slices, strict=True):
        groups = list(s.groups)
        values = [s.groups[g].get(s.metric, np.nan) for g in groups]
        colors = ["tab:blue" if s.groups[g]["n"] >= s.min_group_size else "lightgrey" for g in groups]
        ax.bar(groups, values, color=colors)
        verdict = "passed" if s.passed else "failed"
        ax.set(ylabel=s.metric, title=f"{s.attribute}: gap {s.gap:.3f} (at most {s.max_gap}, {verdict})")
        for g, v in zip(groups, values, strict=True):
            ax.annotate(f"n={int(s.groups[g]['n'])}", (g, v), ha="center", va="bottom", fontsize=8)
        ax.set_xlabel("grey: fewer rows than min_group_size, not counted", fontsize=8)
    fig.tight_layout()
    return fig


def behavioral(ev: Evaluation):
    """The behavioural tests as a table: each one's outcome and what it found."""
    fig, ax = subplots(figsize=(12, 0.45 * len(ev.behavioral) + 1.2))
    ax.axis("off")
    rows = [[r.name, "passed" if r.passed else "failed", r.detail[:120]] for r in ev.behavioral]
    table = ax.table(cellText=rows, colLabels=["test", "outcome", "what it found"], colWidths=[0.25, 0.08, 0.67],
                     cellLoc="left", loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    for i, r in enumerate(ev.behavioral, start=1):
        table[i, 1].set_facecolor("#c8e6c9" if r.passed else "#ffcdd2")
    ax.set_title(f"Behavioural tests: {sum(r.passed for r in ev.behavioral)} of {len(rows)} passed")
    fig.tight_layout()
    return fig


def bootstrap(score: ChampionScore):
    """The bootstrap distribution of challenger - champion, with the margin and the interval."""
    c = score.comparison
    fig, ax = subplots(figsize=(6.5, 4))
    ax.hist(c.deltas[np.isfinite(c.deltas)], bins=40, color="tab:blue", alpha=0.7)
    ax.axvline(-c.margin, color="tab:red", linestyle="--", label=f"-margin ({-c.margin:g})")
    ax.axvspan(c.ci_low, c.ci_high, color="tab:orange", alpha=0.2, label=f"{c.confidence:.0%} interval")
    ax.axvline(0, color="grey", linestyle=":")
    ax.set(xlabel=f"{c.metric}: challenger - champion (positive is better)", ylabel="bootstrap samples",
           title=f"Paired bootstrap, {c.samples} samples: {'passed' if c.passed else 'failed'}")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def training_figures(model, ev: Evaluation, score: ChampionScore | None, x_holdout, y, p: Params
                     ) -> dict[str, Callable[[], object]]:
    """Artifact path -> a function drawing it, for what this task and run have."""
    seed, task = p.training.seed, p.data.task
    champ = None
    if score is not None and score.predictions is not None and score.unseen is not None:
        champ = (y[score.unseen], score.predictions)
    out: dict[str, Callable[[], object]] = {}
    if task == "binary":
        threshold = p.evaluation.decision_threshold
        out["plots/roc_pr.png"] = lambda: roc_pr(y, ev.holdout, champ, seed)
        out["plots/calibration.png"] = lambda: calibration(y, ev.holdout, champ, seed)
        out["plots/score_distribution.png"] = lambda: score_distribution(y, ev.holdout, threshold, seed)
        out["plots/confusion_matrix.png"] = lambda: confusion(y, ev.holdout, threshold)
    elif task == "multiclass":
        out["plots/confusion_matrix.png"] = lambda: confusion(y, ev.holdout, "argmax")
    else:
        out["plots/regression.png"] = lambda: regression(y, ev.holdout, champ, seed)
    out["plots/permutation_importance.png"] = lambda: importance(model, x_holdout, y, p)
    native = model_facts.native_importance(model)
    if native is not None:
        out["plots/native_importance.png"] = lambda: native_importance(*native)
    if ev.slices:
        out["plots/slices.png"] = lambda: slices(ev)
    if ev.behavioral:
        out["plots/behavioral.png"] = lambda: behavioral(ev)
    if score is not None and score.comparison is not None and score.comparison.deltas is not None:
        out["plots/bootstrap.png"] = lambda: bootstrap(score)
    return out
