"""The search's record in MLflow: one child run per trial under the training run (its values,
cross-validated score, duration and worker), and on the training run itself the trials table,
the best values and a plot of the search history. Child runs are also the trial cache: a trial
whose key (data, params but the gates, code, seed, folds and its values) was scored before is
not run again."""

from __future__ import annotations

import logging
import time

import pandas as pd

from driftline.adapters.registry.pictures import log_figures
from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.registry.tags import (
    CACHED_TAG,
    KIND_TAG,
    NOTE_TAG,
    SEARCH_KEY,
    TRIAL_KEY,
    TRIAL_TAG,
    WORKER_TAG,
)
from driftline.core.search import Trial, trial_key

log = logging.getLogger(__name__)


def cached(store: MlflowStore, base: str) -> dict[str, float]:
    """Scores of the finished trials of any earlier search with this base key, by trial key."""
    runs = store.client.search_runs(
        [store.experiment_id], f"tags.`{SEARCH_KEY}` = '{base}' and attributes.status = 'FINISHED'",
        max_results=10_000)
    return {r.data.tags[TRIAL_KEY]: r.data.metrics["cv_score"] for r in runs
            if TRIAL_KEY in r.data.tags and "cv_score" in r.data.metrics}


def log_trials(store: MlflowStore, parent_run_id: str, trials: list[Trial], base: str, metric: str) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    for t in trials:
        run_id = store.start_run(f"trial-{t.number}", {
            "mlflow.parentRunId": parent_run_id, KIND_TAG: "trial", SEARCH_KEY: base,
            TRIAL_KEY: trial_key(base, t.values), WORKER_TAG: t.worker,
            CACHED_TAG: str(t.cached).lower(), TRIAL_TAG: str(t.number)})
        scores = [Metric("cv_score", t.score, now, 0)] if t.score is not None else []
        store.client.log_batch(run_id, metrics=[*scores, Metric("seconds", t.seconds, now, 0)],
                               params=[Param(k, str(v)) for k, v in t.values.items()],
                               tags=[RunTag(NOTE_TAG, t.note[:4000])] if t.note else [])
        store.finish(run_id, "FINISHED" if t.score is not None else "FAILED")


def table(trials: list[Trial]) -> pd.DataFrame:
    return pd.DataFrame([{"trial": t.number, **t.values, "cv_score": t.score, "seconds": round(t.seconds, 2),
                          "worker": t.worker, "cached": t.cached, "note": t.note} for t in trials])


def log_summary(store: MlflowStore, run_id: str, trials: list[Trial], best: Trial, metric: str, goal: str,
                written: Trial | None = None) -> None:
    """The trials table, the best values (and the written configuration's score, when it was
    trial 0) and the history plot on the training run. A plot that fails is logged as a warning:
    the search's result stands without its picture."""
    computed = sum(not t.cached for t in trials)
    written_score = {"search_written_cv_score": written.score} if written and written.score is not None else {}
    store.log(run_id, params={f"search.best.{k}": v for k, v in best.values.items()},
              metrics={"search_best_cv_score": best.score, "search_trials": len(trials),
                       "search_trials_computed": computed, **written_score})
    store.log_text(run_id, table(trials).to_csv(index=False), "search/trials.csv")
    _, failed = log_figures(store, run_id, {"search/history.png": lambda: history_figure(trials, metric, goal)})
    for line in failed:  # a picture never fails the run
        log.warning("search history plot not logged: %s", line)


def history_figure(trials: list[Trial], metric: str, goal: str):
    from driftline.core.plots import subplots

    scored = [t for t in trials if t.score is not None]
    fig, ax = subplots(figsize=(7, 4))
    ax.scatter([t.number for t in scored], [t.score for t in scored], s=18, label="trial (cross-validated)")
    running, line = None, []
    for t in scored:
        better = running is None or (t.score < running if goal == "minimize" else t.score > running)
        running = t.score if better else running
        line.append(running)
    ax.step([t.number for t in scored], line, where="post", color="tab:orange", label="best so far")
    ax.set(xlabel="trial", ylabel=f"{metric} ({len(scored)} of {len(trials)} trials scored)",
           title=f"Hyperparameter search: {metric}, {'lower' if goal == 'minimize' else 'higher'} is better")
    ax.legend(loc="best")
    fig.tight_layout()
    return fig
