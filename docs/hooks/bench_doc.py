"""The benchmarks pages' results, drawn from benchmarks/results/*.json (written by the benchmarks
themselves), newest first: the headline ratios with their goals, then every figure and round."""

from __future__ import annotations

import json
from typing import Any

from mdtext import cell

# benchmark name -> the docs page that explains it (relative to docs/)
PAGES = {"pipeline": "benchmarks/pipeline.md", "timeline": "benchmarks/pipeline.md",
         "comparison": "benchmarks/pipeline.md",
         "monitor": "benchmarks/monitor.md", "estimation": "benchmarks/estimation.md",
         "search": "benchmarks/search.md", "features": "benchmarks/features.md",
         "serving": "benchmarks/serving.md", "connections": "benchmarks/serving.md", "against": "benchmarks/serving.md",
         "plan": "benchmarks/serving.md", "scale": "guides/distributed-training.md", "s3": "benchmarks/s3.md",
         "team_loop": "benchmarks/team.md",
         "suite": "benchmarks/suite.md"}


def overview(records: list[dict], here: str) -> str:
    """Every run of every benchmark, newest first, one line each."""
    out = ["| date | benchmark | headline | commit | machine |", "|---|---|---|---|---|"]
    for r in records:
        page = PAGES.get(r["benchmark"])
        name = f"[{r['benchmark']}]({_relative(page, here)})" if page else r["benchmark"]
        out.append(f"| {_date(r['date'])} | {name} | {cell(_headline(r))} | {_commit(r)} | "
                   f"{cell(r['machine'].get('description', ''))} |")
    return "\n".join(out) + "\n"


def runs(records: list[dict], benchmark: str) -> str:
    """Each run of one benchmark, newest first, with everything it recorded."""
    mine = [r for r in records if r["benchmark"] == benchmark]
    if not mine:
        raise ValueError(f"no record of the benchmark {benchmark!r} in benchmarks/results")
    out = []
    for r in mine:
        out.append(f"### {_date(r['date'])} · {r['command']} · commit {_commit(r)}\n")
        out.append(f"*{cell(r['title'])}*. Machine: {_machine(r['machine'])}.\n")
        if r.get("settings"):
            out.append("Settings: " + ", ".join(f"{k} `{_value(v)}`" for k, v in r["settings"].items()) + ".\n")
        if r["ratios"]:
            out.append("| ratio | measured | goal | |\n|---|---|---|---|")
            for q in r["ratios"]:
                verdict = {True: "met", False: "**not met**", None: ""}[q.get("met")]
                note = f" ({cell(q['note'])})" if q.get("note") else ""
                out.append(f"| {cell(q['name'])} | **{_number(q['value'])}**{note} | {cell(q.get('goal') or '—')} "
                           f"| {verdict} |")
            out.append("")
        if r.get("notes"):
            out.append(cell(r["notes"]) + "\n")
        details = _figures(r["figures"])
        if r.get("rounds"):
            details += "\n**Rounds**, as measured:\n\n" + _rounds(r["rounds"])
        if details.strip():
            out.append('??? note "Figures"\n\n' + _indent(details) + "\n")
        if r.get("source"):
            out.append(f"<small>{cell(r['source'])}; file `benchmarks/results/{r['_file']}`.</small>\n")
        else:
            out.append(f"<small>File `benchmarks/results/{r['_file']}`.</small>\n")
    return "\n".join(out)


def _headline(r: dict) -> str:
    if not r["ratios"]:
        figures = r["figures"]
        return ", ".join(f"{k} {_value(v)}" for k, v in list(figures.items())[:3] if not isinstance(v, dict))
    q = r["ratios"][0]
    goal = f" (goal {q['goal']}{'' if q.get('met') else ', not met'})" if q.get("goal") else ""
    more = f"; +{len(r['ratios']) - 1} more" if len(r["ratios"]) > 1 else ""
    return f"{q['name']}: {_number(q['value'])}{goal}{more}"


def _figures(figures: dict, depth: int = 0) -> str:
    lines = []
    for key, value in figures.items():
        pad = "    " * depth
        if isinstance(value, dict):
            lines.append(f"{pad}- {cell(key)}:")
            lines.append(_figures(value, depth + 1))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{pad}- {cell(key)}:\n\n" + _indent(_table(value), "    " * (depth + 1)))
        else:
            lines.append(f"{pad}- {cell(key)}: `{_value(value)}`")
    return "\n".join(line for line in lines if line)


def _rounds(rounds: list) -> str:
    if all(isinstance(r, dict) for r in rounds):
        return _table(rounds)
    return "```json\n" + json.dumps(rounds, indent=1) + "\n```\n"


def _table(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    out = ["| " + " | ".join(cell(k) for k in keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(cell(_value(row.get(k, ""))) for k in keys) + " |" for row in rows]
    return "\n".join(out) + "\n"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _number(value: Any) -> str:
    if isinstance(value, float):
        if value and abs(value) < 1e-3:
            return f"{value:.3g}"
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _date(date: str) -> str:
    text = str(date).replace("T", " ").replace("Z", " UTC")
    return text[:16] + (" UTC" if len(text) > 16 else "") if len(text) > 10 else text


def _commit(r: dict) -> str:
    sha = r.get("commit") or "unknown"
    dirty = " (uncommitted changes)" if r.get("dirty") else ""
    return f"`{sha[:7]}`{dirty}"


def _machine(m: dict) -> str:
    parts = [m.get("description") or f"{m.get('cores')} cores"]
    if m.get("cpu"):
        parts.append(m["cpu"])
    return cell(", ".join(parts))


def _indent(text: str, pad: str = "    ") -> str:
    return "\n".join(pad + line if line else line for line in text.splitlines())


def _relative(page: str, here: str) -> str:
    """A link from the page `here` to `page`, both relative to docs/."""
    depth = here.count("/")
    return "../" * depth + page
