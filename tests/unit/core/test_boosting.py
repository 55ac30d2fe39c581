"""The rounds of a distributed fit, run here by XGBoost's own training loop (the callback is the
same on every Dask worker): early stopping where XGBoost's EarlyStopping stops, a checkpoint
every `every` rounds and at the end, and a fit resumed from a checkpoint that ends as the
uninterrupted fit ended, byte for byte."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost
from xgboost.callback import EarlyStopping

from driftline.core import boosting

PARAMS = {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 3, "learning_rate": 0.3,
          "nthread": 1, "seed": 1}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 5))
    y = (x[:, 0] + rng.normal(size=3000) > 0).astype(float)
    return xgboost.DMatrix(x[:2000], y[:2000]), xgboost.DMatrix(x[2000:], y[2000:])


def _fit(data, rounds: int, callback, start=None):
    train, valid = data
    return xgboost.train(PARAMS, train, num_boost_round=rounds, evals=[(valid, boosting.EVAL_NAME)],
                         callbacks=[callback], verbose_eval=False, xgb_model=start)


def test_it_stops_where_xgboost_early_stopping_stops(data):
    theirs = _fit(data, 200, EarlyStopping(rounds=5))
    mine = _fit(data, 200, boosting.Rounds(5, None, None))
    assert theirs.num_boosted_rounds() < 200  # it did stop early
    assert mine.num_boosted_rounds() == theirs.num_boosted_rounds()
    assert int(mine.attr("best_iteration")) == theirs.best_iteration
    assert boosting.stopped_already(mine, 5) and not boosting.stopped_already(mine, 50)


def test_checkpoints_every_n_rounds_and_at_the_end(data):
    seen = []
    final = _fit(data, 200, boosting.Rounds(5, 4, lambda rounds, raw, done: seen.append((rounds, raw, done))))
    n = final.num_boosted_rounds()
    assert [(r, d) for r, _, d in seen] == [*((r, False) for r in range(4, n, 4)), (n, True)]
    assert boosting.load(seen[-1][1]).num_boosted_rounds() == n
    assert boosting.load(seen[1][1]).num_boosted_rounds() == 8


def test_a_fit_resumed_from_a_checkpoint_ends_as_the_uninterrupted_fit(data):
    seen = []
    whole = _fit(data, 200, boosting.Rounds(5, 4, lambda rounds, raw, done: seen.append((rounds, raw))))
    at_8 = boosting.load(dict(seen)[8])
    assert int(at_8.attr("best_iteration")) <= 7
    resumed = _fit(data, 200 - 8, boosting.Rounds(5, 4, None), start=at_8)
    # The best round stays counted from the first round, not from the resumption.
    assert resumed.attr("best_iteration") == whole.attr("best_iteration")
    assert resumed.num_boosted_rounds() == whole.num_boosted_rounds()
    assert resumed.save_raw("ubj") == whole.save_raw("ubj")


def test_best_prefix_keeps_the_rounds_the_model_predicted_with(data):
    whole = _fit(data, 200, boosting.Rounds(5, None, None))
    best = int(whole.attr("best_iteration"))
    kept = boosting.best_prefix(whole)
    assert kept.num_boosted_rounds() == best + 1 < whole.num_boosted_rounds()
    assert kept.attr("best_iteration") is None
    valid = data[1]
    assert np.array_equal(kept.predict(valid), whole.predict(valid, iteration_range=(0, best + 1)))
