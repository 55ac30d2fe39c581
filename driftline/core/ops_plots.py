"""Pictures of what runs in production, as matplotlib figures (no I/O): the drift monitor's
per-column scores against their thresholds, and a rollout step's evidence."""

from __future__ import annotations

import numpy as np

from driftline.core.drift import ColumnDrift
from driftline.core.plots import subplots


def drift_scores(columns: list[ColumnDrift], status: str, rows: int):
    """Each column's drift score as a share of its own threshold (1 = the threshold: the
    methods differ in scale), drifted ones in red."""
    ordered = sorted(columns, key=lambda c: c.score / c.threshold if c.threshold else 0.0)
    ratios = [c.score / c.threshold if c.threshold else 0.0 for c in ordered]
    fig, ax = subplots(figsize=(8, 0.32 * len(ordered) + 1.6))
    ax.barh([f"{c.column} ({c.method})" for c in ordered], ratios,
            color=["tab:red" if c.drifted else "tab:blue" for c in ordered])
    ax.axvline(1.0, color="black", linestyle="--", label="threshold")
    for i, c in enumerate(ordered):
        ax.text(ratios[i], i, f" {c.score:.3g}", va="center", fontsize=7)
    ax.set(xlabel="drift score / its threshold (red: drifted)",
           title=f"Drift per column on {rows:,} live rows: {status}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def rollout_step(step: str, champion, challenger, checks: list, accuracy=None) -> object:
    """A rollout step's evidence, the challenger beside the champion: error rate, p95 latency,
    cumulative score distributions and live accuracy (with its 95% interval and the drop's bound), and the
    verdict of each check in the title."""
    fig, (a, b, c, d) = subplots(1, 4, figsize=(18, 4))
    frames = {"champion": champion, "challenger": challenger}
    # As the analysis counts them: failed requests ("error"), not rows, and not rows no model answered.
    errors = [f.loc[f["status"] == "error", "request_id"].nunique() / f["request_id"].nunique() if len(f) else 0.0
              for f in frames.values()]
    a.bar(list(frames), errors, color=["tab:blue", "tab:orange"])
    a.set(ylabel="failed requests (share)", title="Errors", ylim=(0, max(max(errors) * 1.2, 0.01)))
    latency = [float(np.percentile(f.loc[f["status"] == "ok", "latency_ms"], 95)) if (f["status"] == "ok").any()
               else 0.0 for f in frames.values()]
    b.bar(list(frames), latency, color=["tab:blue", "tab:orange"])
    b.set(ylabel="p95 latency (ms)", title="Latency")
    _scores(c, frames)
    _live_accuracy(d, accuracy)
    verdicts = "; ".join(f"{k.name} {'ok' if k.passed else 'FAILED'}" for k in checks) or "no verdict yet"
    fig.suptitle(f"Rollout step {step}: {verdicts}", fontsize=10)
    fig.tight_layout()
    return fig


def _scores(ax, frames: dict) -> None:
    """Each model's scores as a cumulative distribution on one 0-1 scale. Densities on a shared
    axis hid the champion: a challenger answering one score for every request drew a spike 30
    times the champion's tallest bar. Cumulative, a pile-up is one vertical step and the other
    curve keeps its full height."""
    for (name, f), color in zip(frames.items(), ("tab:blue", "tab:orange"), strict=True):
        scores = np.sort(f.loc[f["status"] == "ok", "score"].to_numpy(float))
        if len(scores):
            share = np.arange(1, len(scores) + 1) / len(scores)
            values, counts = np.unique(scores, return_counts=True)
            pile = f"; {counts.max() / len(scores):.0%} at {values[counts.argmax()]:.3g}" \
                if counts.max() >= 0.2 * len(scores) else ""
            ax.step(np.r_[scores[0], scores], np.r_[0.0, share], where="post", color=color,
                    label=f"{name} ({len(scores):,}{pile})")
    ax.set(xlabel="score", ylabel="share of requests scored at most x", ylim=(0, 1.02),
           title="Score distributions (cumulative)")
    ax.legend(loc="lower right", fontsize=8)


def _live_accuracy(ax, live) -> None:
    """Each variant's live accuracy with a 95% interval; the title says whether it was judged
    and the drop's 95% lower bound against the tolerance."""
    ax.set(ylabel="accuracy on labelled requests", title="Live accuracy")
    if live is None or min(live.challenger_labels, live.champion_labels) == 0:
        ax.text(0.5, 0.5, "no labels yet", ha="center", va="center", transform=ax.transAxes)
        return
    values = [live.champion, live.challenger]
    counts = [live.champion_labels, live.challenger_labels]
    half = [1.96 * np.sqrt(max(v * (1 - v), 1e-12) / n) for v, n in zip(values, counts, strict=True)]
    ax.bar(["champion", "challenger"], values, yerr=half, capsize=6, color=["tab:blue", "tab:orange"])
    for x, (v, n) in enumerate(zip(values, counts, strict=True)):
        ax.annotate(f"{v:.3f}\n{n:,} labels", (x, v), xytext=(0, -28), textcoords="offset points",
                    ha="center", fontsize=8, color="white")
    ax.axhline(live.champion - live.max_drop, color="tab:red", linestyle="--", linewidth=1,
               label=f"champion - {live.max_drop:g} (tolerance)")
    ax.set_ylim(max(0.0, min(values) - max(half) - live.max_drop - 0.05), min(1.0, max(values) + max(half) + 0.05))
    ax.legend(loc="lower right", fontsize=8)
    if live.drop_bound is None:
        ax.set_title(f"Live accuracy\nnot judged (needs {live.min_labels} labels a side)", fontsize=10)
    else:
        ax.set_title(f"Live accuracy\ndrop >= {live.drop_bound:+.3f} at 95% (at most {live.max_drop:g})", fontsize=10)
