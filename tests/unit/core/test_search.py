"""The search's plain parts: the space checked at load naming the key, trials scored by K-fold
cross-validation on the training part only, and the ask-in-batches loop whose trials do not
depend on the order a batch's results come back in."""

from __future__ import annotations

import random

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from driftline.config import ConfigError, load_params
from driftline.core import demo_data, training
from driftline.core import search as hpo
from driftline.core.search import Trial
from tests.unit.conftest import PARAMS_FILE

SPACE = ("training.search={trials: 6, batch: 3, folds: 2, space: {learning_rate: {low: 0.02, high: 0.3, log: true}, "
         "max_leaf_nodes: {low: 4, high: 32, int: true}, l2_regularization: {choices: [0.0, 1.0]}}}")


@pytest.mark.parametrize(("space", "message"), [
    ("{depth: {low: 1, high: 3}}", "training.search.space.depth: hist_gradient_boosting has no parameter 'depth'"),
    ("{max_leaf_nodes: {low: 4, high: 32}}", "training.search.space.max_leaf_nodes: max_leaf_nodes is a whole "
                                             "number: set int: true"),
    ("{min_samples_leaf: {choices: [0, 5]}}", "training.search.space.min_samples_leaf: 0 is not a valid"),
    ("{learning_rate: {low: 0.3, high: 0.1}}", "low (0.3) must be below high (0.1)"),
    ("{learning_rate: {low: 0, high: 0.1, log: true}}", "a log scale needs low > 0"),
])
def test_a_bad_search_space_fails_at_load_naming_the_key(space, message):
    with pytest.raises(ConfigError) as err:
        load_params(PARAMS_FILE, [f"training.search={{space: {space}}}"])
    assert message in str(err.value), str(err.value)


def test_a_trial_is_scored_on_the_training_part_only():
    p = load_params(PARAMS_FILE, [SPACE, "training.estimator.max_iter=20"])
    parts = training.split(demo_data.generate(3000, 3), p)
    values = {"learning_rate": 0.1, "max_leaf_nodes": 8, "l2_regularization": 0.0}
    score = hpo.cv_score(parts.train, p, values, 2)
    assert 0.6 < score < 1.0
    # The cross-validation reads the rows it is given: the holdout's labels cannot move it.
    assert hpo.cv_score(parts.train, p, values, 2) == score
    shuffled = parts.train.assign(defaulted=np.random.default_rng(0).permutation(parts.train["defaulted"].to_numpy()))
    assert hpo.cv_score(shuffled, p, values, 2) < score - 0.1  # and it does read the training labels
    assert hpo.with_values(p, values).training.estimator.max_leaf_nodes == 8
    assert hpo.with_values(p, values).training.search is None


def test_the_trials_do_not_depend_on_the_order_a_batch_finishes_in():
    p = load_params(PARAMS_FILE, [SPACE])

    def score(values):  # a deterministic stand-in for cross-validation
        return -abs(np.log(values["learning_rate"] / 0.1)) - abs(values["max_leaf_nodes"] - 12) / 10

    def in_order(batch):
        return [Trial(0, v, score(v)) for v in batch]

    def scrambled(batch):  # computed in another order, as workers finish; handed back by position
        order = list(range(len(batch)))
        random.Random(len(batch)).shuffle(order)
        out = [None] * len(batch)
        for i in order:
            out[i] = Trial(0, batch[i], score(batch[i]), worker=f"w{i}")
        return out

    a = hpo.run(p.training.search, 42, "maximize", now(in_order))
    b = hpo.run(p.training.search, 42, "maximize", now(scrambled))
    assert [(t.number, t.values, t.score) for t in a] == [(t.number, t.values, t.score) for t in b]
    assert [t.number for t in a] == list(range(6))
    assert hpo.run(p.training.search, 7, "maximize", now(in_order))[0].values != a[0].values  # the seed matters


def now(score_batch):
    """A `submit` for `hpo.run` that scores the batch at once and hands back its trials on waiting."""
    def submit(batch):
        trials = score_batch(batch)
        return lambda: trials
    return submit


def test_the_next_batch_is_asked_before_the_running_one_is_waited_for_and_each_sees_all_but_the_last():
    p = load_params(PARAMS_FILE, [SPACE.replace("trials: 6", "trials: 12")])
    events, told = [], []

    def submit(batch):
        number = len([e for e in events if e[0] == "submit"])
        events.append(("submit", number, len(told)))  # how many trials were told when this batch was asked

        def wait():
            events.append(("wait", number))
            told.extend(batch)
            return [Trial(0, v, -v["learning_rate"]) for v in batch]
        return wait

    trials = hpo.run(p.training.search, 42, "maximize", submit)
    assert [t.number for t in trials] == list(range(12))
    # Two batches are under way at once: batch k is asked after batch k - 2 is told, not k - 1.
    assert events == [("submit", 0, 0), ("submit", 1, 0), ("wait", 0), ("submit", 2, 3), ("wait", 1),
                      ("submit", 3, 6), ("wait", 2), ("wait", 3)]


def test_the_time_budget_stops_between_batches_and_failed_trials_are_not_best():
    p = load_params(PARAMS_FILE, [SPACE.replace("trials: 6", "trials: 9, timeout_minutes: 1")])
    ticks = iter([0, 61])  # the start; before batch 2 (batch 1 always runs): past the budget
    trials = hpo.run(p.training.search, 1, "maximize", now(lambda b: [Trial(0, v, None, note="boom") for v in b]),
                     clock=lambda: next(ticks))
    assert len(trials) == 3  # one batch, then the budget
    with pytest.raises(ValueError, match="all 3 trials failed; first: boom"):
        hpo.best(trials, "maximize")
    tied = [Trial(0, {}, 0.5), Trial(1, {}, 0.7), Trial(2, {}, 0.7), Trial(3, {}, None)]
    assert hpo.best(tied, "maximize").number == 1 and hpo.best(tied, "minimize").number == 0


def test_train_search_without_a_search_section_is_refused_naming_the_key(tmp_path, monkeypatch):
    from driftline.app.cli import app

    raw = yaml.safe_load(PARAMS_FILE.read_text())
    del raw["training"]["search"]  # the committed params carry one, switched off
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["train", "--search"])
    assert result.exit_code == 2
    assert "training.search: --search needs a training.search section" in result.output


def test_the_written_configuration_is_trial_0_when_it_lies_in_the_space():
    p = load_params(PARAMS_FILE, [SPACE])
    written = {"learning_rate": 0.05, "max_leaf_nodes": 31, "l2_regularization": 1.0}  # params.yaml's estimator
    assert hpo.starting_values(p) == written
    trials = hpo.run(p.training.search, 42, "maximize", now(lambda b: [Trial(0, v, 0.5) for v in b]),
                     start=hpo.starting_values(p))
    assert trials[0].values == written and all(t.values != written for t in trials[1:])
    assert hpo.written_trial(trials, p) is trials[0]
    # A value outside the space (here learning_rate 0.05 below low 0.1) is not tried: nothing to report.
    outside = load_params(PARAMS_FILE, [SPACE.replace("low: 0.02", "low: 0.1")])
    assert hpo.starting_values(outside) is None
    unstarted = hpo.run(outside.training.search, 42, "maximize", now(lambda b: [Trial(0, v, 0.5) for v in b]))
    assert hpo.written_trial(unstarted, outside) is None and unstarted[0].values["learning_rate"] >= 0.1


def test_the_report_says_whether_the_written_configuration_scored_failed_or_was_not_tried():
    values = {"learning_rate": 0.05}
    assert hpo.written_outcome(Trial(0, values, 0.83331)) == "training.estimator as written (trial 0): 0.8333"
    failed = hpo.written_outcome(Trial(0, values, None, note="ValueError: bad fold"))
    assert failed == "training.estimator as written (trial 0) failed: ValueError: bad fold"
    assert "outside the space" in hpo.written_outcome(None)


def test_a_switched_off_search_does_not_stop_a_change_of_estimator_until_it_is_switched_on():
    # params.yaml's search space is hist_gradient_boosting's; the section is switched off.
    p = load_params(PARAMS_FILE, ["training.estimator={kind: logistic_regression}"])
    assert p.training.estimator.kind == "logistic_regression" and not p.training.search.enabled
    with pytest.raises(ConfigError) as err:
        load_params(PARAMS_FILE, ["training.estimator={kind: logistic_regression}", "training.search.enabled=true"])
    assert "training.search.space.learning_rate: logistic_regression has no parameter 'learning_rate'" in str(err.value)
