"""Prefect tasks over the training, evaluation and comparison functions."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from prefect import task
from prefect.cache_policies import NONE

from driftline.config import Params
from driftline.core import comparison, evaluation, frames, training
from tasks.caching import from_cache_key


@task(name="split-data", cache_policy=NONE)
def split_data(df: pd.DataFrame, params: Params) -> training.Split:
    return training.split(df, params)


@task(name="train-model", cache_key_fn=from_cache_key, persist_result=True)
def train_model(train_df: pd.DataFrame, params: Params, cache_key: str):
    return training.train(train_df, params)


@task(name="evaluate-model", cache_key_fn=from_cache_key, persist_result=True)
def evaluate_model(model, train_df: pd.DataFrame, holdout_df: pd.DataFrame, params: Params,
                   cache_key: str) -> evaluation.Evaluation:
    return evaluation.evaluate(model, train_df, holdout_df, params)


@dataclass(frozen=True)
class ChampionScore:
    """The champion on the challenger's holdout: its metrics and the paired comparison, or why
    it could not be scored there."""

    metrics: dict[str, float]
    comparison: comparison.Comparison | None
    problem: str | None = None
    note: str = ""


# Below this many rows a bootstrap interval says little; refuse rather than guess.
MIN_COMPARISON_ROWS = 200


@task(name="compare-with-champion", cache_policy=NONE)
def compare_with_champion(champion_model, champion_split: dict | None, challenger: evaluation.Evaluation,
                          holdout_df: pd.DataFrame, params: Params) -> ChampionScore:
    """Score the champion on the challenger's holdout rows that it never trained on, then
    bootstrap the paired difference."""
    cfg = params.evaluation.comparison
    try:
        # The champion's own feature list: it may predate a change to the config.
        x = frames.model_features(holdout_df, champion_model, params.data)
    except KeyError as err:
        return ChampionScore({}, None, f"the champion cannot be scored on this data: {err.args[0]}")
    unseen = training.unseen_by(holdout_df, champion_split or {})
    if unseen is None:
        return ChampionScore({}, None, "cannot tell which holdout rows the champion trained on "
                             "(its split settings are unknown or its split columns are gone)")
    if unseen.sum() < MIN_COMPARISON_ROWS:
        return ChampionScore({}, None, f"only {int(unseen.sum())} holdout rows are unseen by the champion "
                             f"(its split settings differ); at least {MIN_COMPARISON_ROWS} are needed")
    y = frames.target(holdout_df, params.data)[unseen]
    champion = evaluation.predict(champion_model, x[unseen], params)
    result = comparison.paired_bootstrap(
        params.comparison_metric, y, challenger.holdout.subset(unseen), champion, params.data.task,
        cfg.bootstrap_samples, cfg.confidence, cfg.margin, params.training.seed)
    note = "" if unseen.all() else (f"compared on the {int(unseen.sum())} of {len(unseen)} holdout rows the "
                                    "champion never trained on (its split settings differ)")
    return ChampionScore(evaluation.metrics(y, champion, params.data.task), result, note=note)
