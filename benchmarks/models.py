"""Estimator kinds against HistGradientBoosting (the demo's), in one run on one machine:

- fit: each kind's fit on the training part of N demo rows (default 1,000,000), in its own
  process (imports before the clock, peak memory its own), two threads for every kind
  (training.n_jobs=2), and its holdout ROC AUC;
- serving: each kind's model (fitted on 50,000 rows with the same settings) as @champion of its
  own `driftline serve`, driven by wrk (16 connections, single-row requests, OMP_NUM_THREADS=1).

Rounds are interleaved (round 1: every kind, round 2: every kind, ...), each round's ratio is
against HistGradientBoosting in the same round, every round is printed, and the summary is the
median of the rounds' ratios.

    make bench-models        # or: uv run python -m benchmarks.models --rows 1000000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = "hist_gradient_boosting"
# Comparable budgets: 200 boosting rounds at the demo's learning rate for the boosted kinds, and
# forests bounded in depth and size so that a 1M-row run stays within minutes on 2 cores.
KINDS = {
    "hist_gradient_boosting": "{kind: hist_gradient_boosting, max_iter: 200, learning_rate: 0.05, "
                              "min_samples_leaf: 40, l2_regularization: 1.0}",
    "xgboost": "{kind: xgboost, params: {n_estimators: 200, learning_rate: 0.05, max_depth: 6, min_child_weight: 5}}",
    "lightgbm": "{kind: lightgbm, params: {n_estimators: 200, learning_rate: 0.05, num_leaves: 31, "
                "min_child_samples: 40}}",
    "random_forest": "{kind: random_forest, n_estimators: 50, max_depth: 12, min_samples_leaf: 50}",
    "logistic_regression": "{kind: logistic_regression}",
    "sklearn (ExtraTrees)": "{kind: sklearn, class: sklearn.ensemble.ExtraTreesClassifier, "
                            "params: {n_estimators: 50, max_depth: 12, min_samples_leaf: 50}}",
    "custom (examples.models.credit:make_model)": "{kind: custom, factory: 'examples.models.credit:make_model'}",
}


def project(root: Path, rows: int) -> Path:
    """params.yaml, the example factories and N rows of demo data (no DVC: a fit reads the file)."""
    from driftline.app.project import write_demo_data

    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "examples", root / "examples", dirs_exist_ok=True)
    write_demo_data(root / "data" / "loans.parquet", rows=rows)
    return root


def _overrides(kind: str) -> list[str]:
    return [f"training.estimator={KINDS[kind]}", "training.n_jobs=2", "training.search=null"]


def fit_child(kind: str, root: Path) -> dict:
    """One kind's fit, timed in this process (run by `fit`)."""
    import pandas as pd

    from benchmarks.phase import peak_rss_mb
    from driftline.config import load_params
    from driftline.core import evaluation, frames, training

    p = load_params(root / "params.yaml", _overrides(kind))
    parts = training.split(pd.read_parquet(root / "data" / "loans.parquet"), p)
    started = time.perf_counter()
    model = training.train(parts.train, p)
    seconds = time.perf_counter() - started
    holdout = evaluation.predict(model, frames.features(parts.holdout, p.data), p)
    auc = evaluation.metrics(frames.target(parts.holdout, p.data), holdout, p.data.task)["roc_auc"]
    return {"seconds": seconds, "roc_auc": auc, "peak_rss_mb": peak_rss_mb(), "rows": len(parts.train)}


def fit(kind: str, root: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "benchmarks.models", "--child", kind, str(root)], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def register(kind: str, root: Path) -> None:
    """The kind fitted on `root`'s data and registered as @champion of `root`'s own store."""
    import pandas as pd

    from driftline import services
    from driftline.config import Settings, load_params
    from driftline.core import evaluation, frames, training

    p = load_params(root / "params.yaml", _overrides(kind))
    store = services.build_services(Settings(project_dir=root), p).start().registry
    parts = training.split(pd.read_parquet(root / "data" / "loans.parquet"), p)
    model = training.train(parts.train, p)
    run_id = store.start_run("bench-models", {})
    example = frames.features(parts.train.head(5), p.data)
    uri = store.log_model(run_id, model, example, model.predict(example), training.code_files(p))
    store.log_frame(run_id, evaluation.reference_sample(parts.train, model, p), "reference/reference.parquet")
    store.finish(run_id)
    store.register(uri, run_id, {}, "champion", "benchmark")


def median_ratio(rounds: list[dict], kind: str, key: str) -> float:
    return statistics.median(r[kind][key] / r[BASELINE][key] for r in rounds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10, help="wrk seconds per server and round")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(fit_child(args.child[0], Path(args.child[1]))))
        return
    from benchmarks import wrk
    from benchmarks.loadgen import sample_records
    from benchmarks.servers import serve_driftline

    if not wrk.available():
        raise SystemExit("wrk is not installed: `make bench-models` installs it (make system-packages)")
    base = Path(tempfile.mkdtemp(prefix="driftline-models-bench-"))
    data = project(base / "fit", args.rows)
    print(f"fit: {args.rows:,} rows, {args.rounds} interleaved rounds, training.n_jobs=2", flush=True)
    fits: list[dict] = []
    for r in range(args.rounds):
        fits.append({kind: fit(kind, data) for kind in KINDS})
        for kind, f in fits[-1].items():
            ratio = f["seconds"] / fits[-1][BASELINE]["seconds"]
            print(f"  round {r + 1}  {kind:<44} {f['seconds']:7.1f} s  {ratio:5.2f}x  roc_auc {f['roc_auc']:.4f}  "
                  f"peak {f['peak_rss_mb']:,.0f} MB", flush=True)

    os.environ["OMP_NUM_THREADS"] = "1"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    servers, records = {}, sample_records()
    try:
        for i, kind in enumerate(KINDS):
            root = project(base / f"serve-{i}", 50_000)
            register(kind, root)
            servers[kind] = serve_driftline(root, env, True)
        served: list[dict] = []
        for r in range(args.rounds):
            served.append({})
            for kind, (_, url) in servers.items():
                wrk.run(url, 16, 2, records)  # warm-up
                served[-1][kind] = wrk.run(url, 16, args.seconds, records)
                s = served[-1][kind]
                print(f"  round {r + 1}  {kind:<44} {s['rps']:7.1f} req/s  p99 {s['p99_ms']:6.1f} ms  "
                      f"errors {s['errors']}", flush=True)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(30)

    rows = []
    print(f"\n{'kind':<44} {'fit / HGB':>10} {'roc_auc':>8} {'- HGB':>8} {'served / HGB':>13} {'req/s':>8}")
    for kind in KINDS:
        auc = statistics.median(r[kind]["roc_auc"] for r in fits)
        row = {"kind": kind, "fit_seconds": statistics.median(r[kind]["seconds"] for r in fits),
               "fit_ratio": median_ratio(fits, kind, "seconds"), "roc_auc": auc,
               "roc_auc_minus_hgb": auc - statistics.median(r[BASELINE]["roc_auc"] for r in fits),
               "peak_rss_mb": max(r[kind]["peak_rss_mb"] for r in fits),
               "served_rps": statistics.median(r[kind]["rps"] for r in served),
               "served_ratio": median_ratio(served, kind, "rps")}
        rows.append(row)
        print(f"{kind:<44} {row['fit_ratio']:9.2f}x {auc:8.4f} {row['roc_auc_minus_hgb']:+8.4f} "
              f"{row['served_ratio']:12.2f}x {row['served_rps']:8.0f}")
    from benchmarks import results

    ratios = [results.ratio(f"{r['kind']}: fit / {BASELINE}", r["fit_ratio"]) for r in rows[1:]]
    ratios += [results.ratio(f"{r['kind']}: served req/s / {BASELINE}", r["served_ratio"]) for r in rows[1:]]
    results.write("models", "Estimator kinds against HistGradientBoosting", "make bench-models", ratios=ratios,
                  figures={"kinds": rows}, rounds=[{"fit": f, "served": s} for f, s in zip(fits, served)],
                  settings={"rows": args.rows, "rounds": args.rounds, "wrk_seconds": args.seconds, "clients": 16,
                            "fit_threads": 2, "serving_rows": 50_000, "estimators": KINDS})
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
