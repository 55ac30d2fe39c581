"""Evaluation on the holdout partitions (training.distributed).

Both models predict where the holdout rows live; what comes back is each row's answers (labels,
probabilities), its target, the fairness attributes and whether the champion never trained on it:
a few numbers a row, where the row itself has dozens. The metrics, the slices and the paired
bootstrap need every row's score and are computed from these as in one process. The behavioural
tests and the permutation importance need whole rows: they run on a hash-chosen sample of the
holdout, whose size the report and the picture state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftline.config import Params
from driftline.core import comparison, evaluation, frames, slices, training, versions
from driftline.core.comparison import ChampionScore
from driftline.core.evaluation import Evaluation, Predictions

BEHAVIORAL_ROWS = 2000  # as evaluation.behavioral samples in one process
SAMPLE_ROWS = 20_000  # whole holdout rows brought here for the behavioural tests and the pictures


def repeated_near_keys(ddf, columns: list[str], digits: int) -> np.ndarray:
    """Near-copy keys (by these columns and digits) that repeat among the given partitions' rows."""
    def keys(part: pd.DataFrame) -> pd.Series:
        return pd.Series(versions.near_keys(part, columns, digits), dtype="uint64")

    counts = ddf.map_partitions(keys, meta=pd.Series(dtype="uint64")).value_counts(
        split_out=max(1, ddf.npartitions // 8))
    return np.sort(counts[counts > 1].compute().index.to_numpy(dtype="uint64"))


def _unseen(part: pd.DataFrame, spec: dict, together: np.ndarray) -> np.ndarray | None:
    """`training.unseen_by` on one partition, near-copies told by the holdout's repeated keys."""
    near = spec.get("near_duplicates")
    if spec.get("method") != "hash" or not near or not set(near["columns"]) <= set(part.columns):
        return training.unseen_by(part, spec)
    plain = {k: v for k, v in spec.items() if k != "near_duplicates"}
    unseen = training.unseen_by(part, plain)
    if unseen is None:
        return None
    keys = versions.near_keys(part, near["columns"], near["digits"])
    grouped = np.isin(keys, together)
    unseen[grouped] &= training.key_side(keys[grouped], spec["seed"], spec["test_size"])
    return unseen


def scored(part: pd.DataFrame, model, champion, champion_spec: dict | None, together: np.ndarray,
           p: Params) -> pd.DataFrame:
    """One holdout partition's answers: `y`, the challenger's `label` and `p0..pk`, the fairness
    attributes, and the champion's `c_label`, `c0..ck` and `unseen` (when there is a champion)."""
    x = frames.features(part, p.data)
    pred = evaluation.predict(model, x, p)
    out = {"y": frames.target(part, p.data), "label": pred.labels}
    out |= {f"p{i}": pred.proba[:, i] for i in range(pred.proba.shape[1])} if pred.proba is not None else {}
    # A category a row, not a string: the answers of every holdout row come to the flow's process.
    out |= {g.attribute: pd.Categorical(part[g.attribute].astype(object)) for g in p.evaluation.fairness}
    if champion is not None:
        unseen = _unseen(part, champion_spec or {}, together)
        out["unseen"] = np.zeros(len(part), bool) if unseen is None else unseen
        try:
            theirs = evaluation.predict(champion, frames.model_features(part, champion, p.data), p)
            out["c_label"] = theirs.labels
            out |= {f"c{i}": theirs.proba[:, i] for i in range(theirs.proba.shape[1])} if theirs.proba is not None \
                else {}
        except KeyError as err:
            out["c_problem"] = np.full(len(part), str(err.args[0]), dtype=object)
    return pd.DataFrame(out, index=part.index)


def evaluate_partitions(client, holdout, model, champion, champion_split: dict | None, sample: pd.DataFrame,
                        typical: dict, p: Params) -> Scored:
    """`scored` on every holdout partition where it lives (both models sent to each worker once),
    then `evaluate` on the answers."""
    near = (champion_split or {}).get("near_duplicates")
    together = repeated_near_keys(holdout, near["columns"], near["digits"]) \
        if champion is not None and near and set(near["columns"]) <= set(holdout.columns) else np.empty(0, "uint64")
    meta = scored(sample.iloc[:1], model, champion, champion_split, together, p).iloc[:0]
    shared = client.scatter([model, champion], broadcast=True)
    frame = holdout.map_partitions(scored, shared[0], shared[1], champion_split, together, p, meta=meta).compute()
    return evaluate(frame, model, champion, champion_split, sample, typical, p)


def _predictions(frame: pd.DataFrame, model, prefix: str, label: str, p: Params) -> Predictions:
    if p.data.task == "regression":
        return Predictions(frame[label].to_numpy(dtype="float64"))
    k = len(model.classes_)
    proba = frame[[f"{prefix}{i}" for i in range(k)]].to_numpy(dtype="float64")
    classes = np.asarray(model.classes_)
    positive = evaluation.positive_index(classes, p) if p.data.task == "binary" else 1
    return Predictions(frame[label].to_numpy(), proba, classes, positive)


@dataclass(frozen=True)
class Scored:
    evaluation: Evaluation
    champion: ChampionScore | None
    rows: int  # holdout rows scored
    y: np.ndarray  # their targets, in the order of the answers (the pictures' curves)


def evaluate(frame: pd.DataFrame, model, champion, champion_split: dict | None, sample: pd.DataFrame,
             typical: dict, p: Params) -> Scored:
    """The challenger's evaluation from every holdout row's answers (`frame`, from `scored`), the
    behavioural tests on `sample` (whole holdout rows chosen by hash); the champion's score on the
    rows it never trained on, as `comparison.score_champion` gives it in one process."""
    y = frame["y"].to_numpy()
    pred = _predictions(frame, model, "p", "label", p)
    x_sample = frames.features(sample, p.data)
    ev = Evaluation(metrics=evaluation.metrics(y, pred, p.data.task), slices=slices.slices(frame, y, pred, p),
                    behavioral=evaluation.behavioral(model, x_sample, typical, p, BEHAVIORAL_ROWS), holdout=pred)
    if champion is None:
        return Scored(ev, None, len(frame), y)
    if "c_problem" in frame:
        return Scored(ev, ChampionScore({}, None, f"the champion cannot be scored on this data: "
                                        f"{frame['c_problem'].iloc[0]}"), len(frame), y)
    if champion_split is None or training.unseen_by(sample.iloc[:0], champion_split) is None:
        unknown = ChampionScore({}, None, "cannot tell which holdout rows the champion trained on "
                                "(its split settings are unknown or its split columns are gone)")
        return Scored(ev, unknown, len(frame), y)
    unseen = frame["unseen"].to_numpy(dtype=bool)
    if unseen.sum() < comparison.MIN_COMPARISON_ROWS:
        return Scored(ev, comparison.too_few(unseen), len(frame), y)
    theirs = _predictions(frame[unseen], champion, "c", "c_label", p)
    return Scored(ev, comparison.score_predictions(y[unseen], theirs, ev, unseen, p), len(frame), y)
