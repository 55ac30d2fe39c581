"""The champion comparison task, through `.fn()`: the like-for-like rule on real models."""

from __future__ import annotations

import pytest

from driftline.core import demo_data, evaluation, training
from driftline.core.comparison import MIN_COMPARISON_ROWS
from tasks.model import compare_with_champion


@pytest.fixture(scope="module")
def trained(params):
    parts = training.split(demo_data.generate(5000, 3), params)
    model = training.train(parts.train, params)
    return parts, model, evaluation.evaluate(model, parts.train, parts.holdout, params)


def _spec(params, test_size: float) -> dict:
    """A champion split by other settings: it never trained on about `test_size` of any table."""
    return {"method": "hash", "test_size": test_size, "seed": 1, "columns": list(params.data.columns)}


def test_too_few_holdout_rows_unseen_by_the_champion_refuse_the_comparison(params, trained):
    parts, model, ev = trained
    score = compare_with_champion.fn(model, _spec(params, 0.1), ev, parts.holdout, params)
    assert score.comparison is None
    unseen = int(training.unseen_by(parts.holdout, _spec(params, 0.1)).sum())
    assert unseen < MIN_COMPARISON_ROWS == 200
    assert score.problem == (f"only {unseen} holdout rows are unseen by the champion (its split settings differ); "
                             "at least 200 are needed")


def test_enough_unseen_rows_compare_on_the_overlap_and_say_so(params, trained):
    parts, model, ev = trained
    score = compare_with_champion.fn(model, _spec(params, 0.5), ev, parts.holdout, params)
    unseen = int(training.unseen_by(parts.holdout, _spec(params, 0.5)).sum())
    assert unseen >= MIN_COMPARISON_ROWS and score.problem is None and score.comparison is not None
    assert score.note == (f"compared on the {unseen} of {len(parts.holdout)} holdout rows the champion never "
                          "trained on (its split settings differ)")


def test_a_champion_whose_split_is_unknown_is_not_compared(params, trained):
    parts, model, ev = trained
    score = compare_with_champion.fn(model, {}, ev, parts.holdout, params)
    assert score.comparison is None and "cannot tell which holdout rows" in score.problem
