"""The boosting rounds of a distributed fit: early stopping that a checkpoint can resume, and the
checkpoints themselves, handed from the first worker to whoever stores them.

XGBoost runs a training callback on every worker, each seeing the same evaluation metrics (they
are reduced across workers), so every worker decides to stop at the same round. The first worker
(rank 0) also hands the booster to `sink` every `every` rounds and when training ends; the state
early stopping needs (the best round and score) is kept as the booster's own attributes, as
XGBoost's EarlyStopping keeps it, so a fit resumed from a checkpoint stops where an uninterrupted
one would have.
"""

from __future__ import annotations

import numpy as np
import xgboost
from xgboost.callback import TrainingCallback

# Metric names XGBoost maximizes (as its EarlyStopping decides), the rest are minimized.
MAXIMIZED = ("auc", "aucpr", "map", "ndcg", "pre", "interval-regression-accuracy")
EVAL_NAME = "validation_0"  # the scikit-learn interface's name for the first eval_set


def maximized(metric: str) -> bool:
    return metric.split("@")[0] in MAXIMIZED


class Rounds(TrainingCallback):
    """Early stopping after `stop` rounds without improvement (None: never), and a checkpoint every
    `every` rounds (None: none) and at the end, handed to `sink(round, raw_booster, done)` by the
    first worker. The best round and score so far live on the booster (`best_iteration`,
    `best_score`): a fit resumed from a checkpoint carries on from them."""

    def __init__(self, stop: int | None, every: int | None, sink):
        super().__init__()
        self.stop, self.every, self.sink = stop, every, sink

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        # XGBoost counts `epoch` from 0 in every call of train, a resumed one too: the round is the
        # booster's own count, so that a resumed fit's best round and checkpoints stay absolute.
        current = model.num_boosted_rounds() - 1
        done = False
        if self.stop is not None and EVAL_NAME in evals_log:
            metric, history = list(evals_log[EVAL_NAME].items())[-1]
            score = float(history[-1])
            best = model.attr("best_score")
            better = best is None or (score > float(best) if maximized(metric) else score < float(best))
            if better:
                model.set_attr(best_score=repr(score), best_iteration=str(current))
            done = current - int(model.attr("best_iteration")) >= self.stop
        if self.every and (current + 1) % self.every == 0 and not done:
            self._hand(model, current + 1, False)
        return done

    def after_training(self, model):
        self._hand(model, model.num_boosted_rounds(), True)
        return model

    def _hand(self, model, rounds: int, done: bool) -> None:
        if self.sink is not None and xgboost.collective.get_rank() == 0:
            self.sink(rounds, bytes(model.save_raw("ubj")), done)


def stopped_already(booster, stop: int | None) -> bool:
    """Whether a checkpointed booster had already stopped early (its last round `stop` past its best)."""
    best = booster.attr("best_iteration")
    return stop is not None and best is not None and booster.num_boosted_rounds() - 1 - int(best) >= stop


def load(raw: bytes):
    booster = xgboost.Booster()
    booster.load_model(bytearray(raw))
    return booster


def best_prefix(booster):
    """The booster's rounds up to its best one (all of them when it did not stop early): what a
    warm start continues from, as what the model predicted with."""
    best = booster.attr("best_iteration")
    if best is None:
        return booster
    kept = booster[: int(best) + 1]
    for name in ("best_iteration", "best_score"):
        kept.set_attr(**{name: None})
    return kept


def into_estimator(estimator, booster, classes: list | None):
    """The fitted booster placed into the unfitted estimator every other fit of the kind starts
    from (its parameters, categories and early stopping as built), so the registered model is the
    same Pipeline whichever way it was fitted."""
    booster.feature_names = None  # the Pipeline hands it a NumPy array, as the in-process fit had
    estimator.load_model(bytearray(booster.save_raw("ubj")))
    if classes is not None:
        estimator.labels_ = np.asarray(classes)
    return estimator
