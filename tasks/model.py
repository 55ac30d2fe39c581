"""Prefect tasks over the training, evaluation and comparison functions."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from driftline.config import Params
from driftline.core import comparison, evaluation, pinned, training
from driftline.waiting import heartbeat
from tasks.caching import from_cache_key


@task(name="split-data", cache_policy=NONE)
def split_data(df: pd.DataFrame, params: Params) -> training.Split:
    return training.split(df, params)


@task(name="train-model", cache_key_fn=from_cache_key, persist_result=True)
def train_model(train_df: pd.DataFrame, params: Params, cache_key: str):
    log = get_run_logger()
    log.info(f"fitting {params.training.estimator.kind} on {len(train_df):,} rows, "
             f"{len(params.data.features)} features + {len(params.data.derived)} derived")
    with heartbeat(log.info, "fitting"):
        return training.train(train_df, params)


@task(name="evaluate-model", cache_key_fn=from_cache_key, persist_result=True)
def evaluate_model(model, train_df: pd.DataFrame, holdout_df: pd.DataFrame, params: Params,
                   cache_key: str) -> evaluation.Evaluation:
    with heartbeat(get_run_logger().info, f"evaluating on {len(holdout_df):,} holdout rows"):
        return evaluation.evaluate(model, train_df, holdout_df, params)


@task(name="compare-with-champion", cache_policy=NONE)
def compare_with_champion(champion_model, champion_split: dict | None, challenger: evaluation.Evaluation,
                          holdout_df: pd.DataFrame, params: Params, seen=None) -> comparison.ChampionScore:
    return comparison.score_champion(champion_model, champion_split, challenger, holdout_df, params, seen)


@task(name="read-champion-data", cache_policy=NONE)
def champion_data(old: pd.DataFrame, champion_split: dict, challenger_split: dict, challenger_train: pd.DataFrame,
                  params: Params) -> pinned.ChampionData:
    return pinned.from_champion_data(old, champion_split, challenger_split, challenger_train, params)


@task(name="score-pinned-set", cache_policy=NONE)
def score_pinned(challenger_model, champion_model, rows: pd.DataFrame, params: Params,
                 source: str) -> pinned.PinnedScore:
    return pinned.score(challenger_model, champion_model, rows, params, source)
