"""Hyperparameter-search benchmark: the same search three ways, in one run, on the demo data.

    make bench-search     # or: uv run python -m benchmarks.search --rows 50000 --trials 16

1. the named baseline: the whole search as a plain loop in this process (`core.search.in_process`,
   what the DVC stage does), one trial after another;
2. the search flow on a running local Dask cluster of 1 worker process (Prefect tasks on Dask:
   the cost of the machinery alone; the cluster's start and its workers' first imports are
   reported apart, as for a cluster already up);
3. the same on 2 worker processes (this machine's two cores).

The three run in turn, `--rounds` times (3), and the ratios are those of the medians: one run of
each swings by about 10% on these shared machines. Prints the wall times, the ratios against the
baseline, and whether every run found the same trials; then what params.yaml's own (smaller)
search finds on the same data, against the written values. A Prefect test server is started
first (about 20 s, not timed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

# Before Prefect is imported: its settings are read then.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from prefect import flow, task
from prefect.cache_policies import NONE

from benchmarks import results

NAMES = ("in process (baseline)", "Dask, 1 worker", "Dask, 2 workers")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
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

    from distributed import LocalCluster

    times: dict[str, list[float]] = {name: [] for name in NAMES}
    found, starts, warm, latency = {name: [] for name in NAMES}, {1: [], 2: []}, {1: [], 2: []}, None
    with prefect_test_harness(server_startup_timeout=180):
        # Rounds of the three, interleaved: on these shared machines one run of each swings by 10%.
        for _ in range(args.rounds):
            began = time.perf_counter()
            found[NAMES[0]].append(hpo.in_process(train, p))
            times[NAMES[0]].append(time.perf_counter() - began)
            for workers, name in ((1, NAMES[1]), (2, NAMES[2])):
                # A cluster that is already up, as a team's is: its start and its workers' first
                # imports are reported, not counted (the baseline's are not counted either).
                began = time.perf_counter()
                with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env={"OMP_NUM_THREADS": "1"}) as cluster:
                    starts[workers].append(time.perf_counter() - began)
                    warm[workers].append(_warm(cluster.scheduler_address))
                    flow = hyperparameter_search.with_options(task_runner=task_runner(p, cluster.scheduler_address))
                    began = time.perf_counter()
                    found[name].append(flow(Shipped(train), p, {}, "bench"))
                    times[name].append(time.perf_counter() - began)
                    if workers == 1 and latency is None:
                        latency = _task_latency(cluster.scheduler_address, Shipped(train))
    median = {name: statistics.median(t) for name, t in times.items()}
    first = [(t.values, t.score) for t in found[NAMES[0]][0]]
    same = {name: all([(t.values, t.score) for t in trials] == first for trials in runs)
            for name, runs in found.items()}
    print(f"{'':24} {'median':>8} {'/ baseline':>11}  same trials  each round")
    for name in NAMES:
        print(f"{name:24} {median[name]:7.1f}s {median[name] / median[NAMES[0]]:10.2f}x  {same[name]!s:11}  "
              + ", ".join(f"{t:.1f}" for t in times[name]))
    print("one task after another on the 1-worker cluster, submitted and waited for, returning at once: "
          + ", ".join(f"{name} {ms:.0f} ms" for name, ms in latency.items()))
    picked = _result(train, holdout)
    one, two, base = (median[name] for name in (NAMES[1], NAMES[2], NAMES[0]))
    print(f"2 workers / 1 worker: {two / one:.2f}x on the medians (each round: "
          + ", ".join(f"{b / a:.2f}" for a, b in zip(times[NAMES[1]], times[NAMES[2]], strict=True))
          + f"); Prefect + Dask per trial: +{(one - base) / args.trials:.2f} s ({one / base:.2f}x the bare loop; "
          "each round: " + ", ".join(f"{a / b:.2f}" for a, b in zip(times[NAMES[1]], times[NAMES[0]], strict=True))
          + "); not counted, as for a cluster already up: a local cluster's start ("
          + ", ".join(f"{w} worker{'s' if w > 1 else ''} {statistics.median(t):.1f} s" for w, t in starts.items())
          + ") and its workers' first imports of Prefect, scikit-learn and driftline ("
          + ", ".join(f"{statistics.median(t):.1f} s" for t in warm.values()) + ")")
    results.write(
        "search", f"Hyperparameter search: {args.trials} trials as Prefect tasks on Dask against a plain loop",
        "make bench-search", settings={"rows": args.rows, "trials": args.trials, "folds": 3, "batch": 4,
                                       "rounds": args.rounds, "OMP_NUM_THREADS": "1"},
        ratios=[results.ratio("Prefect tasks on Dask, 1 worker / plain loop (medians)", one / base, "<= 1.2"),
                results.ratio("2 workers / 1 worker (medians)", two / one, "<= 0.6")],
        figures={"median_seconds": {name: round(t, 3) for name, t in median.items()},
                 "same_trials_every_round": same,
                 "seconds_per_trial_beyond_the_loop": round((one - base) / args.trials, 3),
                 "task_round_trip_ms": {name: round(ms, 1) for name, ms in latency.items()},
                 "not_counted": {"cluster_start_seconds": _medians(starts),
                                 "worker_first_imports_seconds": _medians(warm)},
                 "params_yaml_search": picked},
        rounds=[{"round": i + 1, **{name: round(times[name][i], 3) for name in NAMES}} for i in range(args.rounds)])


def _medians(by_workers: dict[int, list[float]]) -> dict[str, float]:
    return {f"{w} worker{'s' if w > 1 else ''}": round(statistics.median(t), 2) for w, t in by_workers.items()}


def _warm(address: str) -> float:
    """Import what a trial needs on every worker of a new cluster, as a cluster that has run a
    search before has it (the baseline's process has it too): seconds taken."""
    from distributed import Client

    began = time.perf_counter()
    with Client(address) as client:
        client.run(_imports)
    return time.perf_counter() - began


def _imports() -> None:
    import prefect_dask.client  # noqa: F401  (what unpickling a Prefect task on a worker imports)

    import flows.search  # noqa: F401


@task(cache_policy=NONE)
def _noop(train, n: int) -> int:
    return n


def _task_latency(address: str, shipped, runs: int = 10) -> dict[str, float]:
    """What one trial pays beyond its work: the round trip of a task that returns at once, as a
    Prefect task on Dask and as a plain Dask task, with and without the training part in each
    task (as the search flow's trials carry it)."""
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
        for label, arg in (("Prefect task", None), ("Prefect task carrying the training part", shipped)):
            out[label] = timed(lambda n, arg=arg: _noop.submit(arg, n).result())

    prefect_tasks()
    with Client(address) as client:
        for label, arg in (("plain Dask task", None), ("plain Dask task carrying the training part", shipped)):
            out[label] = timed(lambda n, arg=arg: client.submit(_noop.fn, arg, n, pure=False).result())
    return out


def _result(train, holdout) -> dict:
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
    found: dict = {"trials": len(trials), "folds": p.training.search.folds, "metric": metric}
    for name, trial in (("as written (trial 0)", written), (f"best (trial {best.number})", best)):
        if trial is None:
            print(f"{name}: not tried (outside the space)")
            continue
        q = hpo.with_values(p, trial.values)
        pred = evaluation.predict(training.train(train, q), frames.features(holdout, p.data), q)
        score = evaluation.metrics(frames.target(holdout, p.data), pred, p.data.task)[metric]
        print(f"{name:22} cv {metric} {trial.score:.4f}  holdout {metric} {score:.4f}  {trial.values}")
        found[name] = {"values": trial.values, "cv_score": round(trial.score, 4), "holdout_score": round(score, 4)}
    return found


if __name__ == "__main__":
    main()
