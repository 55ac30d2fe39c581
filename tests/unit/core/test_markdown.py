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
