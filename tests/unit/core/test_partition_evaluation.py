"""Evaluation from every holdout row's answers, computed partition by partition, equals the one
in one process: the metrics, the fairness slices, the champion's metrics and the paired bootstrap
on the rows it never trained on (with its own split settings, near-copies included)."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from driftline.core import comparison, demo_data, evaluation, frames, partition_evaluation, training, versions


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set({"scheduler": "synchronous", "dataframe.convert-string": False}):
        yield


def test_the_partitioned_evaluation_is_the_one_process_evaluation(make_params):
    p = make_params("training.estimator.max_iter=30")
    champion_p = make_params("training.estimator.max_iter=20", "split.test_size=0.3")  # other split settings
    df = demo_data.generate(8000, 21)
    copies = df.iloc[:40].assign(annual_income=df["annual_income"].iloc[:40] * 1.0001)
    df = pd.concat([df, copies], ignore_index=True)
    parts = training.split(df, p)
    model = training.train(parts.train, p)
    old = training.split(df, champion_p)
    champion = training.train(old.train, champion_p)
    champion_split = training.split_spec(champion_p, old)

    alone = evaluation.evaluate(model, parts.train, parts.holdout, p)
    alone_score = comparison.score_champion(champion, champion_split, alone, parts.holdout, p)

    holdout = dd.from_pandas(parts.holdout, npartitions=5, sort=False)
    near = champion_split["near_duplicates"]
    together = partition_evaluation.repeated_near_keys(holdout, near["columns"], near["digits"])
    keys = versions.near_keys(parts.holdout, near["columns"], near["digits"])
    assert np.array_equal(together, np.sort(pd.Series(keys)[pd.Series(keys).duplicated()].unique()))
    frame = pd.concat([partition_evaluation.scored(part, model, champion, champion_split, together, p)
                       for part in (parts.holdout.iloc[i:i + 400] for i in range(0, len(parts.holdout), 400))])
    typical = frames.typical_record(frames.features(parts.train, p.data), p.data)
    got = partition_evaluation.evaluate(frame, model, champion, champion_split, parts.holdout.iloc[:3000],
                                        typical, p)

    assert got.evaluation.metrics == alone.metrics
    assert [(s.attribute, s.groups, s.gap) for s in got.evaluation.slices] == \
        [(s.attribute, s.groups, s.gap) for s in alone.slices]
    assert got.champion.metrics == alone_score.metrics
    assert got.champion.note == alone_score.note and "holdout rows the champion never trained on" in got.champion.note
    mine, theirs = got.champion.comparison, alone_score.comparison
    assert (mine.challenger, mine.champion, mine.ci_low, mine.ci_high) == \
        (theirs.challenger, theirs.champion, theirs.ci_low, theirs.ci_high)
    assert np.array_equal(got.champion.unseen, alone_score.unseen)
