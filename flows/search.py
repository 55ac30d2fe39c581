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

from driftline.config import Params
from driftline.core import search
from driftline.core.search import Trial


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
