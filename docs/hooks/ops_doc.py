"""The Prometheus rules as committed (ops/prometheus/rules.yml): every recording rule and every
alert with its expression, duration, severity and summary."""

from __future__ import annotations

from pathlib import Path

import yaml
from mdtext import cell


def render(rules_file: Path) -> str:
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    records = [r for r in rules if "record" in r]
    alerts = [r for r in rules if "alert" in r]
    if not alerts:
        raise ValueError(f"{rules_file} has no alert")
    out = ["### Alerts\n", "| alert | expression | for | severity | summary |", "|---|---|---|---|---|"]
    for a in alerts:
        summary = cell(a.get("annotations", {}).get("summary", ""))
        out.append(f"| `{a['alert']}` | `{_code(a['expr'])}` | {a.get('for', '—')} | "
                   f"{a.get('labels', {}).get('severity', '—')} | {summary} |")
    out += ["", "### Recording rules\n", "| rule | expression |", "|---|---|"]
    out += [f"| `{r['record']}` | `{_code(r['expr'])}` |" for r in records]
    return "\n".join(out) + "\n"


def _code(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|").replace("`", "'")
