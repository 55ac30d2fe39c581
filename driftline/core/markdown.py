"""Markdown for the Prefect artifacts and the MLflow run: what happened and why."""

from __future__ import annotations

from driftline.core import gates as gates_mod
from driftline.core.validation import ValidationReport


def validation_markdown(report: ValidationReport, title: str) -> str:
    lines = [f"# {title}", "", f"**{report.summary()}**", "",
             "| check | column | result | detail |", "|---|---|---|---|"]
    for c in report.checks:
        lines.append(f"| {c.name} | {c.column or ''} | {'pass' if c.passed else '**FAIL**'} | "
                     f"{c.detail.replace('|', '/')} |")
    return "\n".join(lines)


def training_markdown(title: str, verdict: str, gates: list[gates_mod.Gate], facts: dict[str, str],
                      validation: ValidationReport | None = None) -> str:
    lines = [f"# {title}", "", f"**{verdict}**", "", gates_mod.markdown_table(gates), ""]
    details = [g for g in gates if g.detail]
    if details:
        lines += ["## Details", ""] + [f"- **{g.name}**: {g.detail}" for g in details] + [""]
    lines += ["## Provenance", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in facts.items()]
    if validation is not None:
        lines += ["", f"Data validation: {validation.summary()}"]
    return "\n".join(lines)
