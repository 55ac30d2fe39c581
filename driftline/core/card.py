"""The model card of a registered version: what it is for, what it learned from, how it scored
beside the champion, which gates it passed, where it came from, and what it cannot do. Markdown
(and its HTML rendering), built from what the training run already knows; no I/O."""

from __future__ import annotations

import pandas as pd

from driftline.config import Params
from driftline.core import gates as gates_mod
from driftline.core.evaluation import Evaluation


def data_facts(train_df: pd.DataFrame, p: Params) -> dict[str, str]:
    """Rows and the time range of the training part (when there is a time column)."""
    facts = {"training rows": f"{len(train_df):,}"}
    if p.data.time_column and p.data.time_column in train_df.columns:
        when = pd.to_datetime(train_df[p.data.time_column], utc=True, errors="coerce")
        facts["time range"] = f"{when.min():%Y-%m-%d} to {when.max():%Y-%m-%d}"
    return facts


def model_card(name: str, version: str, p: Params, ev: Evaluation, champion_metrics: dict[str, float],
               gates: list[gates_mod.Gate], lineage: dict[str, str], data: dict[str, str],
               estimator: dict[str, str] | None = None, checks: list | None = None) -> str:
    """`estimator`: what the fitted model is made of (`model_facts.describe`); `checks`: the data
    validation's checks (each its own line, the checks against the champion's data version among them)."""
    est = p.training.estimator
    settings = ", ".join(f"{k}={v}" for k, v in est.estimator_params().items())
    lines = [f"# Model card: {name} version {version}", "",
             "## Intended use", "", p.registry.description or "_Not stated (`registry.description` in params)._",
             "", f"Predicts `{p.data.target}` ({p.data.task}"
             + (f", positive class `{p.data.positive_class}`" if p.data.positive_class is not None else "")
             + f"), deciding at threshold {p.evaluation.decision_threshold} where it applies.", "",
             "## Data", "", "| | |", "|---|---|",
             f"| source | {lineage.get('data', p.data.path)} |",
             *(f"| {k} | {v} |" for k, v in data.items()),
             f"| features | {', '.join(f'{f.name} ({f.type})' for f in p.data.features)} |",
             f"| derived features | {', '.join(f'{d.name} ({d.kind})' for d in p.data.derived) or 'none'} |",
             f"| sensitive attributes (slices only) | {', '.join(p.data.sensitive_attributes) or 'none'} |", "",
             "## Training", "", f"`{est.kind}`" + (f" with {settings}" if settings else " with its defaults")
             + f"; seed {p.training.seed}; split `{p.split.method}`, holdout {p.split.test_size:.0%}.", "",
             *(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in estimator.items()), ""] if estimator else []),
             "## Metrics on the holdout", "", "| metric | this version | champion |", "|---|---|---|",
             *(f"| {k} | {v:.4f} | {_fmt(champion_metrics.get(k))} |" for k, v in ev.metrics.items()), ""]
    if ev.slices:
        lines += ["## Slices and fairness", "", "| attribute | metric | groups | gap | limit | result |",
                  "|---|---|---|---|---|---|"]
        for s in ev.slices:
            groups = ", ".join(f"{g}: {v.get(s.metric, float('nan')):.3f} (n={int(v['n'])})"
                               for g, v in s.groups.items())
            lines.append(f"| {s.attribute} | {s.metric} | {groups} | {s.gap:.3f} | {s.max_gap} | "
                         f"{'pass' if s.passed else 'FAIL'} |")
        lines.append("")
    if ev.behavioral:
        lines += ["## Behavioural tests", ""]
        lines += [f"- {'pass' if r.passed else 'FAIL'}: **{r.name}**: {r.detail}" for r in ev.behavioral]
        lines.append("")
    if checks:
        lines += ["## Data checks", "",
                  *(f"- {'pass' if c.passed else 'FAIL'}: {c.name}: {c.detail}" for c in checks), ""]
    lines += ["## Gates", "", gates_mod.markdown_table(gates), "",
              "## Lineage", "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in lineage.items()), "",
              "## Known limitations", "",
              p.registry.limitations or "_Not stated (`registry.limitations` in params)._", "",
              "Trained on the data above only: rows unlike it (see the drift monitor) are outside what "
              "its gates vouch for."]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def html(markdown_text: str, title: str) -> str:
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>"
            "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:.2em .5em}</style></head><body>" + body + "</body></html>")
