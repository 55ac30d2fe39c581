"""The hyperparameter search: each trial a Prefect task on a Dask cluster (prefect-dask's
DaskTaskRunner), a temporary local one by default or an existing one by address, so the same
flow runs on a laptop and on a cluster of many machines.

The training flow calls `search_best` after the split. The trials see the training part only;
the best values are then fitted on the whole training part and gated as usual.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from driftline.adapters.registry import search_runs, training_run
from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.registry.training_run import Lineage
from driftline.config import Params
from driftline.core import search
from driftline.core.search import Trial
from driftline.errors import PipelineFailure


class Shipped:
    """A table handed to the search subflow as it is. Prefect records a subflow's parameters as
    JSON; encoding a training table costs seconds, and this holder is recorded as a placeholder."""

    __slots__ = ("frame",)

    def __init__(self, frame):
        self.frame = frame

    def __getstate__(self):
        return self.frame

    def __setstate__(self, frame):
        self.frame = frame


@task(name="cv-trial", cache_policy=NONE)
def cv_trial(train: Shipped, p: Params, values: dict, folds: int) -> Trial:
    started = time.perf_counter()
    score = search.cv_score(train.frame, p, values, folds)
    return Trial(0, values, score, time.perf_counter() - started, _worker())


def _worker() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


@flow(name="hyperparameter-search", validate_parameters=False)
def hyperparameter_search(train: Shipped, p: Params, cached: dict[str, float], base: str) -> list[Trial]:
    """Ask, run each batch's uncached trials on the cluster (two batches under way, see
    `search.run`), tell in trial order."""
    cfg = p.training.search
    log, began, seen = get_run_logger(), time.perf_counter(), []
    goal = search.direction(p)

    def submit(batch: list[dict]):
        futures = {i: cv_trial.submit(train, p, values, cfg.folds) for i, values in enumerate(batch)
                   if search.trial_key(base, values) not in cached}

        def wait() -> list[Trial]:
            out = [_outcome(futures.get(i), values) for i, values in enumerate(batch)]
            seen.extend(out)
            scored = [t for t in seen if t.score is not None]
            lead = f"best so far {search.best(seen, goal).score:.4f}" if scored else "none scored yet"
            log.info(f"search: {len(seen)} of {cfg.trials} trials done ({sum(t.cached for t in out)} of this "
                     f"batch from the cache), {lead}; {time.perf_counter() - began:.0f} s")
            return out
        return wait

    def _outcome(future, values: dict) -> Trial:
        if future is None:
            return Trial(0, values, cached[search.trial_key(base, values)], cached=True)
        result = future.result(raise_on_failure=False)
        return result if isinstance(result, Trial) else \
            Trial(0, values, None, note=f"{type(result).__name__}: {result}")

    return search.run(cfg, p.training.seed, goal, submit, start=search.starting_values(p))


def task_runner(p: Params, address: str | None):
    """An existing cluster by address, else a temporary local one: worker processes of one thread
    each (OMP_NUM_THREADS=1: a tree learner's own threads would oversubscribe the cores)."""
    import logging

    from prefect_dask import DaskTaskRunner

    # The scheduler's and nannies' INFO lines (about 40 a search) would bury the run's own log.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": p.training.search.workers, "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": None,
                                          "env": {"OMP_NUM_THREADS": "1"}})


def search_best(store: MlflowStore, run_id: str, train_df, p: Params, trail: Lineage,
                address: str | None) -> tuple[Params, str]:
    """The search's trials on Dask, recorded as child runs; the params with the best values, and
    the report's line on what the search found."""
    base = training_run.search_key(trail, p)
    runner = hyperparameter_search.with_options(task_runner=task_runner(p, address))
    trials = runner(Shipped(train_df), p, search_runs.cached(store, base), base)
    goal, metric = search.direction(p), p.evaluation.primary_metric
    try:
        best = search.best(trials, goal)
    except ValueError as err:
        raise PipelineFailure("search", f"{err}. Nothing was trained or registered.") from None
    written = search.written_trial(trials, p)
    search_runs.log_trials(store, run_id, trials, base, metric)
    search_runs.log_summary(store, run_id, trials, best, metric, goal, written)
    against = "; " + search.written_outcome(written)
    found = (f"best cross-validated {metric} {best.score:.4f} (trial {best.number} of {len(trials)}, "
             f"{sum(t.cached for t in trials)} from the trial cache) with {search.shown(best.values)}{against}")
    get_run_logger().info(f"search: {found}; fitting it on the whole training part")
    return search.with_values(p, best.values), found
