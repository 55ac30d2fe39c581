"""A distributed fit's pieces, computed partition by partition (Dask's synchronous scheduler
here; the workers run the same functions): the estimator's inputs equal what the in-process
Pipeline's steps make of the training rows (derived features out of fold, categories coded as
its encoders code them), and the booster fitted on them, placed into the Pipeline, answers as
the booster answers."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pytest
import xgboost

from driftline.core import demo_data, distributed, frames, training

XGB = ("training.estimator={kind: xgboost, params: {n_estimators: 30, max_depth: 3}, early_stopping: {rounds: 5}}",
       "training.distributed={partitions: 4}", "validation.previous.enabled=false", "evaluation.pinned.source=none")


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set({"scheduler": "synchronous", "dataframe.convert-string": False}):
        yield


@pytest.fixture
def case(make_params):
    p = make_params(*XGB)
    df = demo_data.generate(6000, 5)
    df.loc[df.index[:40], "loan_purpose"] = None  # missing is a category of its own
    parts = training.split(df, p)
    classes = sorted(set(frames.target(parts.train, p.data).tolist()))
    return p, parts, classes


def _inputs(frame, prep, p, training_rows):
    ddf = dd.from_pandas(frame, npartitions=4, sort=False)
    return ddf.map_partitions(distributed.model_inputs, prep, p, training_rows).compute()


def test_the_inputs_are_what_the_in_process_steps_make_of_the_rows(case):
    p, parts, classes = case
    prep = distributed.prepare(dd.from_pandas(parts.train, npartitions=4, sort=False), p, classes)
    assert prep.classes == classes and prep.facts.rows == len(parts.train)

    x, y = frames.features(parts.train, p.data), frames.target(parts.train, p.data)
    alone = training.build_pipeline(p)[:-1]  # derive and preprocess, fitted in one process
    expected = alone.fit_transform(x, y)  # target encoding on the folds by row hash, as the partitions'
    got = _inputs(parts.train, prep, p, True)
    features = [c for c in got.columns if c not in (distributed.LABEL, distributed.SLICE)]
    np.testing.assert_allclose(got[features].to_numpy(), np.asarray(expected, dtype="float32"), rtol=1e-6)
    assert np.array_equal(got[distributed.LABEL].to_numpy(), np.searchsorted(classes, y).astype("float32"))
    stopping = training.hash_holdout(parts.train, p.data.columns, training.stopping_salt(p.training.seed),
                                     p.training.estimator.early_stopping.validation_share)
    assert np.array_equal(got[distributed.SLICE].to_numpy(), stopping)

    holdout = _inputs(parts.holdout, prep, p, False)
    np.testing.assert_allclose(holdout[features].to_numpy(),
                               np.asarray(alone.transform(frames.features(parts.holdout, p.data)), dtype="float32"),
                               rtol=1e-6)


def test_the_assembled_pipeline_answers_as_the_booster(case):
    p, parts, classes = case
    prep = distributed.prepare(dd.from_pandas(parts.train, npartitions=4, sort=False), p, classes)
    train = _inputs(parts.train, prep, p, True)
    features = [c for c in train.columns if c not in (distributed.LABEL, distributed.SLICE)]
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": 1},
                            xgboost.DMatrix(train[features], train[distributed.LABEL]), num_boost_round=20)

    model = distributed.assemble(p, prep, booster)
    holdout = _inputs(parts.holdout, prep, p, False)
    x = frames.features(parts.holdout, p.data)
    proba = model.predict_proba(x)[:, list(model.classes_).index(classes[1])]
    np.testing.assert_allclose(proba, booster.predict(xgboost.DMatrix(holdout[features])), rtol=1e-6)
    assert model.threshold == p.evaluation.decision_threshold
    assert list(model.classes_) == classes
