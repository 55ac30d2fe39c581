"""Hyperparameter search as plain functions: a trial's parameters (Optuna, seeded), its score by
K-fold cross-validation on the training part, and the loop that asks trials in fixed-size
batches and tells their scores back in trial order.

Asking a whole batch before telling any, and telling in trial order, makes the sampler's state
a function of the seed and the scores alone: the trials and the best parameters are the same
whether a batch ran on one worker or many, in whatever order they finished. The loop keeps two
batches under way (the next is asked when the one before the running batch has been told), so a
worker that finishes its share of a batch starts on the next instead of waiting for the slowest
trial. The caller runs a batch however it likes (`submit`), here on a Dask cluster.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from driftline.config import Params
from driftline.config.estimators import flat_fields
from driftline.config.search import Range, SearchConfig
from driftline.core import estimators, evaluation, frames, training
from driftline.core.metrics import LOWER_IS_BETTER

Goal = Literal["minimize", "maximize"]


@dataclass(frozen=True)
class Trial:
    number: int
    values: dict
    score: float | None  # None: the trial failed (its error is in `note`)
    seconds: float = 0.0
    worker: str = "-"
    cached: bool = False
    note: str = ""


def direction(p: Params) -> Goal:
    return "minimize" if p.evaluation.primary_metric in LOWER_IS_BETTER else "maximize"


def with_values(p: Params, values: dict) -> Params:
    """The params with the estimator's parameters set to a trial's values (and no search): a flat key
    of a built-in kind where the user wrote it flat (or not at all), a key of `params` otherwise."""
    est = p.training.estimator
    flat = {k: v for k, v in values.items() if k in flat_fields(est) and k not in est.params}
    rest = {k: v for k, v in values.items() if k not in flat}
    estimator = type(est).model_validate({**est.model_dump(), **flat, "params": {**est.params, **rest}})
    if est.__pydantic_private__:  # a factory's source, read from the project at load
        estimator.__pydantic_private__.update(est.__pydantic_private__)
    return p.model_copy(update={"training": p.training.model_copy(update={"estimator": estimator, "search": None})})


def cv_score(train_df: pd.DataFrame, p: Params, values: dict, folds: int) -> float:
    """The mean primary metric over `folds` folds of the training part (stratified for
    classification, shuffled with training.seed): the holdout is never read."""
    from sklearn.model_selection import KFold, StratifiedKFold

    trial = with_values(p, values)
    if trial.training.n_jobs is None:  # one thread a trial: a worker thread each, the same model anywhere
        trial = trial.model_copy(update={"training": trial.training.model_copy(update={"n_jobs": 1})})
    y = frames.target(train_df, p.data)
    seed = p.training.seed
    splitter = KFold(folds, shuffle=True, random_state=seed) if p.data.task == "regression" \
        else StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores = []
    for fit_rows, score_rows in splitter.split(np.zeros(len(y)), y):
        model = training.train(train_df.iloc[fit_rows], trial)
        pred = evaluation.predict(model, frames.features(train_df.iloc[score_rows], p.data), trial)
        scores.append(evaluation.metric(y[score_rows], pred, p.data.task, p.evaluation.primary_metric))
    return float(np.mean(scores))


def suggest(trial, space: dict) -> dict:
    values = {}
    for name, dim in space.items():
        if isinstance(dim, Range) and dim.int:
            values[name] = trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)
        elif isinstance(dim, Range):
            values[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
        else:
            values[name] = trial.suggest_categorical(name, dim.choices)
    return values


def trial_key(base: str, values: dict) -> str:
    """What a trial's score depends on: `base` (data, params but the gates, code, seed, folds)
    and its own values."""
    import hashlib

    return hashlib.sha256(f"{base}\0{json.dumps(values, sort_keys=True)}".encode()).hexdigest()[:32]


def starting_values(p: Params) -> dict | None:
    """training.estimator's own values for the searched parameters, when each lies in the space:
    run as trial 0, so the report can say what the search gained over the written configuration
    (and the pick is never worse than it on the cross-validated score)."""
    est = p.training.estimator
    values = {name: written_value(est, p.data.task, name) for name in p.training.search.space}
    for name, dim in p.training.search.space.items():
        value = values[name]
        inside = (value in dim.choices) if not isinstance(dim, Range) else (
            isinstance(value, int | float) and dim.low <= value <= dim.high and (not dim.int or value == int(value)))
        if not inside:
            return None
    return values


def written_value(est, task: str, name: str):
    """A parameter's value as training.estimator has it: written (flat or under params), else the
    class's own default (what the written estimator is built with)."""
    import inspect

    if name in est.params:
        return est.params[name]
    if name in flat_fields(est):
        return getattr(est, name)
    try:
        cls = estimators.class_for(est, task)
    except estimators.EstimatorError:
        return None
    default = inspect.signature(cls).parameters.get(name) if cls is not None else None
    if default is not None and default.default is not inspect.Parameter.empty:
        return default.default
    return cls().get_params().get(name) if cls is not None and estimators.instantiable(cls) else None


# Batches under way at once: the running one and the next, asked before the running one is told.
IN_FLIGHT = 2


def run(cfg: SearchConfig, seed: int, goal: Goal, submit: Callable[[list[dict]], Callable[[], list[Trial]]],
        clock: Callable[[], float] = time.monotonic, start: dict | None = None) -> list[Trial]:
    """Ask `cfg.batch` trials at a time until `cfg.trials` (or the time budget, checked before each
    ask), keeping IN_FLIGHT batches under way. `submit` starts a batch and returns what waits for
    its trials, in the batch's order; the scores are told in trial order. `start`, if given, is
    trial 0 (see `starting_values`).

    The asks and tells come in one fixed order (ask 1, ask 2, tell 1, ask 3, tell 2, ...), so
    batch k is asked knowing every batch before k - 1, however the batches ran."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=goal, sampler=optuna.samplers.TPESampler(seed=seed))
    if start is not None:
        study.enqueue_trial(start)
    done: list[Trial] = []
    running: list[tuple[list, Callable[[], list[Trial]]]] = []
    started, asked, spent = clock(), 0, False
    while True:
        while len(running) < IN_FLIGHT and asked < cfg.trials and not spent:
            spent = bool(asked) and cfg.timeout_minutes is not None and clock() - started > cfg.timeout_minutes * 60
            if spent:
                break
            batch = [study.ask() for _ in range(min(cfg.batch, cfg.trials - asked))]
            asked += len(batch)
            running.append((batch, submit([suggest(t, cfg.space) for t in batch])))
        if not running:
            return done
        batch, wait = running.pop(0)
        for asked_trial, result in zip(batch, wait(), strict=True):
            if result.score is None or not np.isfinite(result.score):
                study.tell(asked_trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(asked_trial, result.score)
            done.append(dataclasses.replace(result, number=asked_trial.number))


def written_trial(trials: list[Trial], p: Params) -> Trial | None:
    """Trial 0 when it was training.estimator as written (see `starting_values`)."""
    start = starting_values(p)
    return trials[0] if start is not None and trials and trials[0].values == start else None


def written_outcome(written: Trial | None) -> str:
    """What became of training.estimator as written, for the report (`written_trial`'s answer)."""
    if written is None:
        return "training.estimator's values lie outside the space, so they were not tried"
    if written.score is None:
        return f"training.estimator as written (trial 0) failed: {written.note}"
    return f"training.estimator as written (trial 0): {written.score:.4f}"


def shown(values: dict) -> str:
    """Trial values for a person: floats to 4 significant digits (the exact ones are in MLflow)."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def best(trials: list[Trial], goal: str) -> Trial:
    """The best scored trial; the earliest of equals, so ties do not depend on timing."""
    scored = [t for t in trials if t.score is not None and np.isfinite(t.score)]
    if not scored:
        raise ValueError(f"all {len(trials)} trials failed; first: {trials[0].note if trials else '-'}")
    sign = 1 if goal == "minimize" else -1
    return min(scored, key=lambda t: (sign * t.score, t.number))


def in_process(train_df: pd.DataFrame, p: Params) -> list[Trial]:
    """The whole search as a plain loop here (the DVC stage's way; a cluster gives the same)."""
    cfg = p.training.search

    def submit(batch: list[dict]) -> Callable[[], list[Trial]]:
        return lambda: [Trial(0, values, cv_score(train_df, p, values, cfg.folds)) for values in batch]

    return run(cfg, p.training.seed, direction(p), submit, start=starting_values(p))
