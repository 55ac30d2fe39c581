"""Pictures of what runs in production, as matplotlib figures (no I/O): the drift monitor's
per-column scores against their thresholds, and a rollout step's evidence."""

from __future__ import annotations

import numpy as np

from driftline.core.drift import ColumnDrift
from driftline.core.plots import pyplot


def drift_scores(columns: list[ColumnDrift], status: str, rows: int):
    """Each column's drift score as a share of its own threshold (1 = the threshold: the
    methods differ in scale), drifted ones in red."""
    plt = pyplot()
    ordered = sorted(columns, key=lambda c: c.score / c.threshold if c.threshold else 0.0)
    ratios = [c.score / c.threshold if c.threshold else 0.0 for c in ordered]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(ordered) + 1.6))
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


def rollout_step(step: str, champion, challenger, checks: list) -> object:
    """A rollout step's evidence, the challenger beside the champion: error rate, p95 latency,
    score distributions and live accuracy, and the verdict of each check in the title."""
    plt = pyplot()
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 4))
    frames = {"champion": champion, "challenger": challenger}
    errors = [float((f["status"] != "ok").mean()) if len(f) else 0.0 for f in frames.values()]
    a.bar(list(frames), errors, color=["tab:blue", "tab:orange"])
    a.set(ylabel="error rate", title="Errors")
    latency = [float(np.percentile(f.loc[f["status"] == "ok", "latency_ms"], 95)) if (f["status"] == "ok").any()
               else 0.0 for f in frames.values()]
    b.bar(list(frames), latency, color=["tab:blue", "tab:orange"])
    b.set(ylabel="p95 latency (ms)", title="Latency")
    for (name, f), color in zip(frames.items(), ("tab:blue", "tab:orange"), strict=True):
        scores = f.loc[f["status"] == "ok", "score"].to_numpy(float)
        if len(scores):
            c.hist(scores, bins=30, alpha=0.5, density=True, color=color, label=f"{name} ({len(scores):,})")
    c.set(xlabel="score", ylabel="density", title="Score distributions")
    c.legend(loc="best", fontsize=8)
    verdicts = "; ".join(f"{k.name} {'ok' if k.passed else 'FAILED'}" for k in checks) or "no verdict yet"
    fig.suptitle(f"Rollout step {step}: {verdicts}", fontsize=10)
    fig.tight_layout()
    return fig
