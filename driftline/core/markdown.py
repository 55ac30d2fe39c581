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


def rollout_markdown(model: str, version: str, champion: str | None, strategy: str, steps: list, verdict: str) -> str:
    """One row per check of each step (`steps`: (name, Analysis)); a step short of traffic says so."""
    lines = [f"# Rollout: {model} v{version} ({strategy})", "", f"**{verdict}**", "",
             f"Champion before: {champion or 'none'}", "", "| step | check | result | detail |", "|---|---|---|---|"]
    for name, result in steps:
        if not result.ready:
            lines.append(f"| {name} | traffic | **FAIL** | {result.summary()} |")
        for c in result.checks:
            lines.append(f"| {name} | {c.name} | {'pass' if c.passed else '**FAIL**'} | {c.detail} |")
        if result.ready and result.traffic():  # what it was judged on, and the largest client's share
            lines.append(f"| {name} | traffic | judged on | {result.traffic()} |")
    return "\n".join(lines)


def drift_table(result) -> list[dict]:
    """The monitor's per-column table (`result`: a monitoring.Assessment): drift, and the data quality beside it."""
    quality = {q.column: q for q in result.quality}
    return [{"column": c.column, "method": c.method, "score": round(c.score, 4), "threshold": c.threshold,
             "drifted": c.drifted, "sampling noise": None if c.noise is None else round(c.noise, 4),
             "missing (current)": round(quality[c.column].missing_current, 4) if c.column in quality else None,
             "outside config": round(quality[c.column].unknown_share, 4) if c.column in quality else None}
            for c in result.columns]
