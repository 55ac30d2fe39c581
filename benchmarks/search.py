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

# Before Prefect is imported: its settings are read then.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from prefect import flow, task
from prefect.cache_policies import NONE


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--trials", type=int, default=16)
    args = parser.parse_args()
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
                if workers == 1:
                    latency = _task_latency(cluster.scheduler_address, Shipped(train))
    base = times["in process (baseline)"]
    same = {name: [(t.values, t.score) for t in trials] == [(t.values, t.score) for t in baseline]
            for name, trials in found.items()}
    print(f"{'':24} {'wall':>8} {'/ baseline':>11}  same trials")
    for name, seconds in times.items():
        print(f"{name:24} {seconds:7.1f}s {seconds / base:10.2f}x  {same[name]}")
    print("one task after another on the 1-worker cluster, submitted and waited for, returning at once: "
          + ", ".join(f"{name} {ms:.0f} ms" for name, ms in latency.items()))
    _result(train, holdout)
    print(f"2 workers / 1 worker: {times['Dask, 2 workers'] / times['Dask, 1 worker']:.2f}x; "
          f"Prefect + Dask per trial: +{(times['Dask, 1 worker'] - base) / args.trials:.2f} s "
          f"({times['Dask, 1 worker'] / base:.2f}x the bare loop); a local cluster's start, not counted: "
          + ", ".join(f"{w} worker{'s' if w > 1 else ''} {t:.1f} s" for w, t in starts.items()))


@task(cache_policy=NONE)
def _noop(train, n: int) -> int:
    return n


def _task_latency(address: str, shipped, runs: int = 10) -> dict[str, float]:
    """What one trial pays beyond its work: the round trip of a task that returns at once, as a
    Prefect task on Dask and as a plain Dask task, with and without the training part."""
    from distributed import Client
    from prefect_dask import DaskTaskRunner

    def timed(call) -> float:
        call(-1)  # the first call imports and connects
        began = time.perf_counter()
        for n in range(runs):
            call(n)
        return (time.perf_counter() - began) / runs * 1000

    out = {}

    @flow(task_runner=DaskTaskRunner(address=address))
    def prefect_tasks() -> None:
        for label, arg in (("Prefect task", None), ("Prefect task with the training part", shipped)):
            out[label] = timed(lambda n, arg=arg: _noop.submit(arg, n).result())

    prefect_tasks()
    with Client(address) as client:
        for label, arg in (("plain Dask task", None), ("plain Dask task with the training part", shipped)):
            out[label] = timed(lambda n, arg=arg: client.submit(_noop.fn, arg, n, pure=False).result())
    return out


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
