"""Hyperparameter-search benchmark: the same search three ways, in one run, on the demo data.

    make bench-search     # or: uv run python -m benchmarks.search --rows 50000 --trials 16

1. the named baseline: the whole search as a plain loop in this process (`core.search.in_process`,
   what the DVC stage does), one trial after another;
2. the search flow on a running local Dask cluster of 1 worker process (Prefect tasks on Dask:
   the cost of the machinery alone; the cluster's start is reported apart);
3. the same on 2 worker processes (this machine's two cores).

Prints wall times, the ratios against the baseline, and whether all three found the same trials;
then what params.yaml's own (smaller) search finds on the same data, against the written values.
A Prefect test server is started first (about 20 s, not timed).
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--trials", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ["OMP_NUM_THREADS"] = "1"  # the baseline gets what each worker gets: one thread
    from prefect.testing.utilities import prefect_test_harness

    from driftline.config import load_params
    from driftline.core import demo_data, training
    from driftline.core import search as hpo
    from flows.search import Shipped, hyperparameter_search, task_runner

    search = (f"training.search={{trials: {args.trials}, batch: 4, folds: 3, space: {{"
              "learning_rate: {low: 0.02, high: 0.3, log: true}, max_leaf_nodes: {low: 8, high: 64, int: true}, "
              "l2_regularization: {choices: [0.0, 1.0, 10.0]}}}")
    p = load_params("params.yaml", [search, "training.estimator.max_iter=100"])
    parts = training.split(demo_data.generate(args.rows, 7), p)
    train, holdout = parts.train, parts.holdout
    print(f"{args.trials} trials x 3 folds on {len(train):,} training rows, HistGradientBoosting, 100 iterations")

    began = time.perf_counter()
    baseline = hpo.in_process(train, p)
    times = {"in process (baseline)": time.perf_counter() - began}
    found = {"in process (baseline)": baseline}
    from distributed import LocalCluster

    starts = {}
    with prefect_test_harness(server_startup_timeout=180):
        for workers in (1, 2):
            # A cluster that is already up, as a team's is: its start is reported, not counted.
            began = time.perf_counter()
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                              env={"OMP_NUM_THREADS": "1"}) as cluster:
                starts[workers] = time.perf_counter() - began
                flow = hyperparameter_search.with_options(task_runner=task_runner(p, cluster.scheduler_address))
                began = time.perf_counter()
                name = f"Dask, {workers} worker{'s' if workers > 1 else ''}"
                found[name] = flow(Shipped(train), p, {}, "bench")
                times[name] = time.perf_counter() - began
    base = times["in process (baseline)"]
    same = {name: [(t.values, t.score) for t in trials] == [(t.values, t.score) for t in baseline]
            for name, trials in found.items()}
    print(f"{'':24} {'wall':>8} {'/ baseline':>11}  same trials")
    for name, seconds in times.items():
        print(f"{name:24} {seconds:7.1f}s {seconds / base:10.2f}x  {same[name]}")
    _result(train, holdout)
    print(f"2 workers / 1 worker: {times['Dask, 2 workers'] / times['Dask, 1 worker']:.2f}x; "
          f"Prefect + Dask per trial: +{(times['Dask, 1 worker'] - base) / args.trials:.2f} s "
          f"({times['Dask, 1 worker'] / base:.2f}x the bare loop); a local cluster's start, not counted: "
          + ", ".join(f"{w} worker{'s' if w > 1 else ''} {t:.1f} s" for w, t in starts.items()))


def _result(train, holdout) -> None:
    """What params.yaml's own search (the demo's) finds on this data: the written configuration
    (trial 0) and the best one, each scored by cross-validation and, fitted on the whole training
    part, on the holdout the gates read."""
    from driftline.config import load_params
    from driftline.core import evaluation, frames, training
    from driftline.core import search as hpo

    p = load_params("params.yaml", ["training.search.enabled=true"])
    trials = hpo.in_process(train, p)
    print(f"params.yaml's search ({len(trials)} trials, {p.training.search.folds} folds, in process):")

    metric = p.evaluation.primary_metric
    best = hpo.best(trials, hpo.direction(p))
    written = hpo.written_trial(trials, p)
    for name, trial in (("as written (trial 0)", written), (f"best (trial {best.number})", best)):
        if trial is None:
            print(f"{name}: not tried (outside the space)")
            continue
        q = hpo.with_values(p, trial.values)
        pred = evaluation.predict(training.train(train, q), frames.features(holdout, p.data), q)
        score = evaluation.metrics(frames.target(holdout, p.data), pred, p.data.task)[metric]
        print(f"{name:22} cv {metric} {trial.score:.4f}  holdout {metric} {score:.4f}  {trial.values}")


if __name__ == "__main__":
    main()
