"""Markdown reports for the Prefect artifacts and the MLflow run."""

from __future__ import annotations

from driftline.core import gates, markdown
from driftline.core.validation import Check, ValidationReport


def test_validation_markdown_lists_every_check_and_escapes_pipes():
    rep = ValidationReport(1200, [Check("schema: required columns present", True, "all 3 present"),
                                  Check("quality: allowed categories", False, "column 'a|b' has 'x'", "a|b")])
    text = markdown.validation_markdown(rep, "Data validation")
    lines = text.splitlines()
    assert lines[0] == "# Data validation"
    assert "**data validation failed (1 of 2 checks)" in text
    assert "| schema: required columns present |  | pass | all 3 present |" in lines
    assert any(line.endswith("| **FAIL** | column 'a/b' has 'x' |") for line in lines)


def test_training_markdown_has_gates_details_and_provenance():
    gate_list = [gates.Gate("holdout recall", 0.4, None, ">= 0.5", False, "too few defaults caught"),
                 *gates.comparison_gate(None)]
    rep = ValidationReport(10, [Check("a", True, "fine")])
    text = markdown.training_markdown("Training loan-default", "rejected", gate_list,
                                    {"git commit": "abc123", "params hash": "0f0f"}, rep)
    assert "**rejected**" in text
    assert gates.markdown_table(gate_list) in text
    assert "- **holdout recall**: too few defaults caught" in text
    assert "| git commit | abc123 |" in text
    assert text.endswith("Data validation: data validation passed (1 checks on 10 rows)")


def test_the_rollout_report_has_a_row_per_check_and_says_when_a_step_lacked_traffic():
    from driftline.core.rollout import Analysis

    steps = [("canary 10%", Analysis(ready=True, checks=[Check("error rate", True, "0.1%")],
                                     counts={"champion": 900, "challenger": 210, "input_errors": 2}, top_client=0.25)),
             ("canary 50%", Analysis(ready=False, checks=[]))]
    text = markdown.rollout_markdown("m", "2", None, "canary", steps, "rolled back: canary 50%")
    assert text.startswith("# Rollout: m v2 (canary)\n\n**rolled back: canary 50%**\n\nChampion before: none")
    assert "| canary 10% | error rate | pass | 0.1% |" in text
    assert ("| canary 10% | traffic | judged on | 210 challenger and 900 champion requests, 2 challenger requests "
            "not judged (the champion did not answer them either); the top client sent 25% of the window's requests |"
            ) in text
    assert "| canary 50% | traffic | **FAIL** |" in text


def test_the_drift_table_puts_each_column_s_quality_beside_its_drift():
    from driftline.core.drift import ColumnDrift, QualityRow
    from driftline.core.monitoring import Assessment, Decision, Performance

    result = Assessment(100, [ColumnDrift("age", "wasserstein", 0.123456, 0.1, True, 0.131313),
                              ColumnDrift("prediction", "psi", 0.01, 0.1, False)],
                        [QualityRow("age", 0.0, 0.05, 0.012345)],
                        Performance(0, None, None, None, False, "no labels yet"), Decision("drift", 1.0, ["age"]))
    assert markdown.drift_table(result) == [
        {"column": "age", "method": "wasserstein", "score": 0.1235, "threshold": 0.1, "drifted": True,
         "sampling noise": 0.1313, "missing (current)": 0.05, "outside config": 0.0123},
        {"column": "prediction", "method": "psi", "score": 0.01, "threshold": 0.1, "drifted": False,
         "sampling noise": None, "missing (current)": None, "outside config": None}]
