"""The champion comparison's parts on a 200,000-row holdout (what `compare-with-champion` does at
1,000,000 rows), in interleaved rounds, every round printed:

Each ratio is the median of the rounds' own ratios (each round times the two back to back, in an
order that alternates), so a machine whose speed drifts between rounds moves both sides alike.

- the paired bootstrap of ROC AUC (500 replicates) against the named baseline, the same bootstrap
  as it was before its AUC was counted in one pass (commit b82c007, kept below verbatim): the
  intervals must be equal bit for bit, and the ratio is of the medians;
- DeLong's closed-form interval against the same bootstrap;
- scoring the champion: its serving plan against its Pipeline, on the same rows (equal bit for bit).

    make bench-comparison      # or: uv run python -m benchmarks.comparison --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks import results


def _baseline_auc(y_pos: np.ndarray, score: np.ndarray):
    """core.comparison._auc as of b82c007."""
    groups, inverse = np.unique(score, return_inverse=True)
    pos = y_pos.astype("float64")

    def fn(w: np.ndarray) -> float:
        wp = np.bincount(inverse, weights=w * pos, minlength=len(groups))
        wn = np.bincount(inverse, weights=w * (1 - pos), minlength=len(groups))
        below = np.cumsum(wn) - wn
        total = wp.sum() * wn.sum()
        return float(np.sum(wp * (below + 0.5 * wn)) / total) if total else float("nan")

    return fn


def baseline_bootstrap(y_pos, a, b, samples: int, confidence: float, seed: int) -> tuple[float, float]:
    """core.comparison.paired_bootstrap's loop as of b82c007, for roc_auc."""
    chal, champ = _baseline_auc(y_pos, a), _baseline_auc(y_pos, b)
    rng = np.random.default_rng(seed)
    n = len(y_pos)
    deltas = np.empty(samples)
    for i in range(samples):
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype("float64")
        deltas[i] = chal(w) - champ(w)
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(deltas, [alpha, 1 - alpha])
    return float(low), float(high)


def _case(rows: int):
    from driftline.core.evaluation import Predictions

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, rows)
    a = np.clip(0.3 * y + rng.random(rows) * 0.7, 0, 1)  # continuous scores: nearly every row its own group
    b = np.clip(0.28 * y + rng.random(rows) * 0.72, 0, 1)

    def pred(s):
        return Predictions((s >= 0.5).astype(int), np.column_stack([1 - s, s]), np.array([0, 1]))

    return y, pred(a), pred(b)


def _champion(rows: int):
    """The demo model (trained on 50,000 rows) and 200,000 rows to score, with its plan."""
    from driftline.config import load_params
    from driftline.core import demo_data, frames, plan, training

    p = load_params(results.REPO / "params.yaml")
    df = demo_data.generate(50_000 + rows, 7)
    model = training.train(training.split(df.iloc[:50_000], p).train, p)
    x = frames.features(df.iloc[50_000:], p.data)
    columns = {c: "double" if x[c].dtype.kind == "f" else "string" for c in x.columns}
    return model, x, plan.compile_model(model, columns, True)


def main() -> None:
    from driftline.core.comparison import paired_bootstrap

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    y, a, b = _case(args.rows)
    model, x, compiled = _champion(args.rows)
    rounds = []
    for r in range(args.rounds):
        row: dict = {"round": r + 1}
        # Each pair back to back, its order alternating round by round (A B, B A, ...), so that a
        # steady drift in the machine's speed favours neither; a ratio is the median of the rounds'.
        for key, run in (("bootstrap before (s)", lambda: baseline_bootstrap(y == 1, a.score, b.score,
                                                                                args.samples, 0.95, 42)),
                         ("bootstrap now (s)", lambda: paired_bootstrap("roc_auc", y, a, b, "binary", args.samples,
                                                                        0.95, 0.01, 42)))[::1 if r % 2 == 0 else -1]:
            t = time.perf_counter()
            row[key + " result"] = run()
            row[key] = time.perf_counter() - t
        now = row.pop("bootstrap now (s) result")
        if (now.ci_low, now.ci_high) != row.pop("bootstrap before (s) result"):
            raise SystemExit("the interval moved")
        t = time.perf_counter()
        paired_bootstrap("roc_auc", y, a, b, "binary", args.samples, 0.95, 0.01, 42, method="delong")
        row["DeLong (s)"] = time.perf_counter() - t
        timed = {}
        for key, run in (("champion by its Pipeline (s)", lambda: model.predict_proba(x)),
                         ("champion by its plan (s)", lambda: compiled.predict_columns(x)))[::1 if r % 2 == 0 else -1]:
            t = time.perf_counter()
            timed[key] = run()
            row[key] = time.perf_counter() - t
        if timed["champion by its Pipeline (s)"].tobytes() != timed["champion by its plan (s)"].tobytes():
            raise SystemExit("the plan's answers differ from the Pipeline's")
        rounds.append({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
        print("  ".join(f"{k} {v}" for k, v in rounds[-1].items()), flush=True)

    def paired(num: str, den: str) -> tuple[float, str]:
        each = [r[num] / r[den] for r in rounds]
        return statistics.median(each), ", ".join(f"{v:.3f}" for v in each)

    boot, boot_rounds = paired("bootstrap now (s)", "bootstrap before (s)")
    delong, delong_rounds = paired("DeLong (s)", "bootstrap now (s)")
    scoring, scoring_rounds = paired("champion by its plan (s)", "champion by its Pipeline (s)")
    print(f"\nbootstrap now / before (same interval)  = {boot:.3f}  (rounds: {boot_rounds})")
    print(f"DeLong / bootstrap now                  = {delong:.4f}  (rounds: {delong_rounds})")
    print(f"champion scored by its plan / Pipeline  = {scoring:.3f}  (rounds: {scoring_rounds})")

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    results.write(
        "comparison", f"The champion comparison's parts on {args.rows:,} holdout rows", "make bench-comparison",
        settings={"rows": args.rows, "bootstrap_samples": args.samples, "rounds": args.rounds},
        ratios=[results.ratio("bootstrap now / before (the same interval, bit for bit)", boot),
                results.ratio("DeLong's interval / the bootstrap", delong),
                results.ratio("champion scored by its plan / by its Pipeline", scoring)],
        figures={k: median(k) for k in rounds[0] if k != "round"}, rounds=rounds)


if __name__ == "__main__":
    main()
