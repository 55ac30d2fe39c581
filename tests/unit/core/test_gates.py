"""Promotion gates: thresholds, the champion comparison, and how a failure reads."""

from __future__ import annotations

import pytest

from driftline.core import gates
from driftline.core.comparison import ChampionScore, Comparison
from driftline.core.evaluation import BehavioralResult, Evaluation
from driftline.core.gates import Gate
from driftline.core.slices import SliceResult

GOOD = {"roc_auc": 0.85, "accuracy": 0.8, "recall": 0.6, "precision": 0.5, "f1": 0.55}


def _by_name(gate_list: list[Gate]) -> dict[str, Gate]:
    return {g.name: g for g in gate_list}


def _comparison(ci_low: float, margin: float = 0.01) -> Comparison:
    return Comparison("roc_auc", 0.84, 0.85, -0.01, ci_low, 0.01, margin, 0.95, 500)


# --- metric gates ----------------------------------------------------------------------------------


def test_metric_gates_pass_when_every_minimum_is_met(params):
    result = gates.metric_gates(params, GOOD, None)
    assert [g.name for g in result] == ["holdout roc_auc", "holdout accuracy", "holdout recall"]
    assert all(g.passed for g in result)
    assert all(g.champion is None for g in result)
    assert _by_name(result)["holdout roc_auc"].threshold == ">= 0.8"


@pytest.mark.parametrize(("value", "passed"), [(0.79, False), (0.8, True), (0.95, True)])
def test_metric_gate_minimum_is_inclusive(params, value, passed):
    gate = _by_name(gates.metric_gates(params, {**GOOD, "roc_auc": value}, None))["holdout roc_auc"]
    assert gate.passed is passed
    assert gate.challenger == value


def test_only_the_failing_metric_fails(params):
    result = _by_name(gates.metric_gates(params, {**GOOD, "recall": 0.3}, None))
    assert result["holdout recall"].passed is False
    assert result["holdout roc_auc"].passed is True
    assert result["holdout accuracy"].passed is True


@pytest.mark.parametrize(("value", "passed"), [(0.04, True), (0.05, True), (0.051, False)])
def test_metric_gate_maximum(regression_case, value, passed):
    p, _ = regression_case  # thresholds: rmse <= 0.05, r2 >= 0.5
    gate = _by_name(gates.metric_gates(p, {"rmse": value, "mae": 0.03, "r2": 0.7}, None))["holdout rmse"]
    assert gate.threshold == "<= 0.05"
    assert gate.passed is passed


def test_metric_gate_with_both_bounds(make_params):
    p = make_params("evaluation.thresholds={accuracy: {min: 0.7, max: 0.99}}")
    assert gates.metric_gates(p, {**GOOD, "accuracy": 0.8}, None)[0].passed is True
    assert gates.metric_gates(p, {**GOOD, "accuracy": 0.995}, None)[0].passed is False  # too good: a leak
    assert gates.metric_gates(p, {**GOOD, "accuracy": 0.6}, None)[0].passed is False
    assert gates.metric_gates(p, GOOD, None)[0].threshold == ">= 0.7 and <= 0.99"


@pytest.mark.parametrize("bounds", ["{min: 0.8}", "{max: 0.8}", "{}"])
def test_nan_fails_whatever_the_bounds(make_params, bounds):
    p = make_params(f"evaluation.thresholds={{roc_auc: {bounds}}}")
    (gate,) = gates.metric_gates(p, {**GOOD, "roc_auc": float("nan")}, None)
    assert gate.passed is False


def test_metric_gates_carry_the_champion_values(params):
    champion = {**GOOD, "roc_auc": 0.9}
    gate = _by_name(gates.metric_gates(params, GOOD, champion))["holdout roc_auc"]
    assert (gate.challenger, gate.champion) == (0.85, 0.9)
    assert gate.passed is True  # absolute gates do not compare with the champion


# --- comparison gate ----------------------------------------------------------------------------------


def test_no_champion_passes_and_says_first_champion():
    (gate,) = gates.comparison_gate(None)
    assert gate.passed is True
    assert "first champion" in gate.detail
    assert gate.threshold == "no champion yet"


@pytest.mark.parametrize(("ci_low", "passed"), [(-0.005, True), (-0.01, True), (-0.02, False)])
def test_comparison_gate_follows_the_interval_and_margin(ci_low, passed):
    (gate,) = gates.comparison_gate(_comparison(ci_low))
    assert gate.passed is passed
    assert gate.challenger == ci_low
    assert gate.threshold == ">= -0.01"
    assert gate.name == "vs champion: roc_auc difference (CI low)"
    assert "champion 0.8500" in gate.detail


# --- fairness and behavioural gates -------------------------------------------------------------------------


def test_fairness_gate_lists_only_groups_large_enough_to_count():
    result = SliceResult("gender", "recall", {"female": {"n": 500.0, "recall": 0.6},
                                              "male": {"n": 480.0, "recall": 0.75},
                                              "nonbinary": {"n": 12.0, "recall": 0.1}},
                         gap=0.15, max_gap=0.1, min_group_size=200)
    (gate,) = gates.fairness_gates([result])
    assert gate.name == "fairness: recall gap across gender"
    assert gate.passed is False
    assert gate.threshold == "<= 0.1"
    assert "female: 0.600 (n=500)" in gate.detail
    assert "male: 0.750 (n=480)" in gate.detail
    assert "nonbinary" not in gate.detail


@pytest.mark.parametrize("gap", [float("nan"), 0.0])
def test_fairness_gate_that_cannot_be_evaluated_fails_and_says_why(gap):
    result = SliceResult("gender", "recall", {"female": {"n": 150.0, "recall": 0.6},
                                              "male": {"n": 260.0, "recall": 0.75},
                                              "nonbinary": {"n": 12.0, "recall": 0.1}},
                         gap=gap, max_gap=0.1, min_group_size=200)
    (gate,) = gates.fairness_gates([result])
    assert gate.passed is False
    assert gate.detail.startswith("cannot be evaluated: fewer than two groups with at least 200 rows")
    assert "female: n=150" in gate.detail
    assert "(needs <= 0.1): cannot be evaluated: fewer than two groups" in gates.failure_paragraph([gate])


def test_behavioral_gates_show_the_limit_and_first_failures():
    results = [
        BehavioralResult("channel", "invariance", 0.01, 0.02, True, "moves 0.01"),
        BehavioralResult("cases", "minimum_functionality", 0.5, 1.0, False, "1 of 2 cases",
                         ["case 2 {...}: got 0 (score 0.100)"]),
    ]
    inv, mf = gates.behavioral_gates(results)
    assert (inv.threshold, inv.passed) == ("<= 0.02", True)
    assert (mf.threshold, mf.passed) == (">= 1.0", False)
    assert mf.name == "behavioral (minimum_functionality): cases"
    assert mf.detail == "1 of 2 cases; case 2 {...}: got 0 (score 0.100)"


# --- rendering ---------------------------------------------------------------------------------------------


def _mixed() -> list[Gate]:
    return [
        Gate("holdout roc_auc", 0.85, 0.86, ">= 0.8", True),
        Gate("holdout recall", 0.42, None, ">= 0.5", False),
        Gate("fairness: recall gap across gender", float("nan"), None, "<= 0.1", False, "female: 0.5 (n=300)"),
        *gates.comparison_gate(None),
    ]


def test_markdown_table_has_one_row_per_gate():
    table = gates.markdown_table(_mixed())
    lines = table.splitlines()
    assert lines[0] == "| gate | challenger | champion | threshold | result |"
    assert lines[1] == "|---|---|---|---|---|"
    rows = lines[2:]
    assert len(rows) == 4
    assert rows[0] == "| holdout roc_auc | 0.8500 | 0.8600 | >= 0.8 | pass |"
    assert rows[1] == "| holdout recall | 0.4200 | — | >= 0.5 | **FAIL** |"
    assert "| — |" in rows[2]  # NaN shows as a dash, not "nan"
    assert rows[3].endswith("| no champion yet | pass |")
    assert sum("**FAIL**" in r for r in rows) == 2


def test_failure_paragraph_names_each_failed_gate():
    text = gates.failure_paragraph(_mixed())
    assert text.startswith("2 of 4 gates failed: ")
    assert "holdout recall was 0.4200 (needs >= 0.5)" in text
    assert "fairness: recall gap across gender was — (needs <= 0.1): female: 0.5 (n=300)" in text
    assert "holdout roc_auc" not in text
    assert "champion comparison" not in text


def test_failure_paragraph_when_everything_passed():
    assert gates.failure_paragraph([g for g in _mixed() if g.passed]) == "every gate passed"



# --- assembly ----------------------------------------------------------------------------------------------


def _evaluation(slices=(), behavioral=()) -> Evaluation:
    return Evaluation(dict(GOOD), list(slices), list(behavioral), holdout=None)


def test_assemble_orders_metric_fairness_behavioral_then_comparison(params):
    fair = SliceResult("gender", "recall", {}, gap=0.0, max_gap=0.1, min_group_size=200)
    beh = BehavioralResult("channel", "invariance", 0.01, 0.02, True, "moves 0.01")
    result = gates.assemble(params, _evaluation([fair], [beh]), None)
    assert [g.name for g in result] == ["holdout roc_auc", "holdout accuracy", "holdout recall",
                                        "fairness: recall gap across gender", "behavioral (invariance): channel",
                                        "champion comparison"]
    assert result[-1].passed and result[-1].threshold == "no champion yet"


def test_assemble_carries_the_champion_metrics_and_its_comparison(params):
    score = ChampionScore({"roc_auc": 0.85}, _comparison(-0.02), note="on 300 rows")
    result = _by_name(gates.assemble(params, _evaluation(), score))
    assert result["holdout roc_auc"].champion == 0.85
    vs = result["vs champion: roc_auc difference (CI low)"]
    assert vs.passed is False and vs.detail.endswith("(note: on 300 rows)")
    assert gates.passed(list(result.values())) is False


def test_a_champion_that_could_not_be_scored_fails_the_assembled_gates(params):
    result = gates.assemble(params, _evaluation(), ChampionScore({}, None, "cannot tell"))
    assert result[-1] == Gate("vs champion", None, None, "comparable holdout", False, "cannot tell")
    assert not gates.passed(result) and gates.passed(result[:-1])
