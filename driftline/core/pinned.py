"""The pinned evaluation set, and what the champion's own data says about the new holdout.

A new data version brings its own holdout: poison the version and the holdout is poisoned too,
and a challenger trained on the poison looks better on it than the champion. So both models are
also scored on rows the new version cannot have rewritten: the champion's holdout rows from the
data version it was trained on (as that version labelled them), or a golden set the team
declares. From the same old version come the rows the champion trained on (never to be scored
as unseen) and the fairness groups it could count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftline.config import Params
from driftline.core import evaluation, frames, training, versions
from driftline.core.comparison import Comparison, paired_bootstrap


@dataclass(frozen=True)
class PinnedScore:
    source: str  # what the set is, for the report: "version 3's holdout as its data labelled it"
    rows: int
    comparison: Comparison | None  # None: not judged (`problem` says why)
    problem: str = ""


@dataclass(frozen=True)
class ChampionData:
    """What the champion's data version says about this run: the near-duplicate keys of the rows
    it trained on, its holdout rows neither model trained on (the pinned set), and the fairness
    groups its holdout could count."""

    seen: np.ndarray | None
    holdout: pd.DataFrame
    groups: dict[str, dict[str, int]]


def from_champion_data(old: pd.DataFrame, champion_split: dict, challenger_split: dict,
                       challenger_train: pd.DataFrame, p: Params) -> ChampionData:
    """The pinned set is the champion's holdout rows that the challenger's split also holds out
    and that are no near-copy of a challenger training row. Each row's keys are computed once."""
    columns, digits = versions.identity_columns(p), p.validation.near_duplicate_digits
    near = versions.near_keys(old, columns, digits)
    same = {"columns": columns, "digits": digits}
    def unseen(spec: dict):
        return training.unseen_by(old, spec, near if spec.get("near_duplicates") == same else None)
    champion = unseen(champion_split)
    if champion is None:
        return ChampionData(None, old.iloc[:0], {})
    mine = champion if challenger_split == champion_split else unseen(challenger_split)
    trained = versions.near_keys(challenger_train, columns, digits)
    pinned = champion & (mine if mine is not None else False) & ~np.isin(near, trained)
    return ChampionData(near[~champion], old[pinned], versions.counted_groups(old[champion], p))


def score(challenger_model, champion_model, rows: pd.DataFrame, p: Params, source: str) -> PinnedScore:
    """Both models on `rows`, compared as on the holdout (the paired bootstrap, same metric and seed)."""
    cfg, pinned = p.evaluation.comparison, p.evaluation.pinned
    if len(rows) < pinned.min_rows:
        return PinnedScore(source, len(rows), None, f"{len(rows)} rows, fewer than {pinned.min_rows}: not judged")
    try:
        x = frames.model_features(rows, champion_model, p.data)
    except KeyError as err:
        return PinnedScore(source, len(rows), None, f"the champion cannot be scored on it: {err.args[0]}")
    y = frames.target(rows, p.data)
    margin = cfg.margin if pinned.margin is None else pinned.margin
    comparison = paired_bootstrap(p.comparison_metric, y,
                                  evaluation.predict(challenger_model, frames.features(rows, p.data), p),
                                  evaluation.predict(champion_model, x, p), p.data.task, cfg.bootstrap_samples,
                                  cfg.confidence, margin, p.training.seed, cfg.method)
    return PinnedScore(source, len(rows), comparison)
