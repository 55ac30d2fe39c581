"""Promotion gates: every check a challenger must pass, as one table."""

from __future__ import annotations

import math
from dataclasses import dataclass

from driftline.config import Params
from driftline.core.comparison import ChampionScore, Comparison
from driftline.core.evaluation import BehavioralResult, Evaluation
from driftline.core.pinned import PinnedScore
from driftline.core.slices import SliceResult


@dataclass(frozen=True)
class Gate:
    name: str
    challenger: float | None
    champion: float | None
    threshold: str
    passed: bool
    detail: str = ""


def fmt(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def metric_gates(p: Params, challenger: dict[str, float], champion: dict[str, float] | None) -> list[Gate]:
    gates = []
    for name, limit in p.evaluation.thresholds.items():
        value = challenger[name]
        ok = not math.isnan(value)
        bounds = []
        if limit.min is not None:
            ok = ok and value >= limit.min
            bounds.append(f">= {limit.min}")
        if limit.max is not None:
            ok = ok and value <= limit.max
            bounds.append(f"<= {limit.max}")
        gates.append(Gate(f"holdout {name}", value, (champion or {}).get(name), " and ".join(bounds), ok))
    return gates


def fairness_gates(results: list[SliceResult], champion_groups: dict[str, dict[str, int]] | None = None
                   ) -> list[Gate]:
    """A gate per fairness slice. `champion_groups`: the groups the champion's holdout could count,
    by attribute; one that this holdout can no longer count fails the gate (a group removed from
    the data would otherwise leave a gap over the groups that remain, and pass)."""
    gates = []
    for r in results:
        if r.evaluable:
            detail = ", ".join(f"{g}: {v[r.metric]:.3f} (n={int(v['n'])})" for g, v in r.counted.items())
        else:
            sizes = ", ".join(f"{g}: n={int(v['n'])}" for g, v in r.groups.items()) or "no rows"
            detail = (f"cannot be evaluated: fewer than two groups with at least {r.min_group_size} rows "
                      f"({sizes})")
        lost = {g: n for g, n in (champion_groups or {}).get(r.attribute, {}).items() if g not in r.counted}
        if lost:
            detail = "; ".join(f"group {g} was counted for the champion ({n} rows in its holdout) and has "
                               f"{int(r.groups.get(g, {}).get('n', 0))} here, fewer than {r.min_group_size}"
                               for g, n in lost.items()) + "; " + detail
        gates.append(Gate(f"fairness: {r.metric} gap across {r.attribute}", r.gap, None,
                          f"<= {r.max_gap}", r.passed and not lost, detail))
    return gates


def behavioral_gates(results: list[BehavioralResult]) -> list[Gate]:
    gates = []
    for r in results:
        op = ">=" if r.kind == "minimum_functionality" else "<="
        detail = r.detail + ("; " + "; ".join(r.failures[:3]) if r.failures else "")
        gates.append(Gate(f"behavioral ({r.kind}): {r.name}", r.value, None, f"{op} {r.limit}",
                          r.passed, detail))
    return gates


def comparison_gate(c: Comparison | None, problem: str | None = None, note: str = "") -> list[Gate]:
    """The champion/challenger gate. A champion that exists but cannot be scored on this
    holdout fails the gate: nothing replaces production without a like-for-like comparison."""
    if problem:
        return [Gate("vs champion", None, None, "comparable holdout", False, problem)]
    if c is None:
        return [Gate("champion comparison", None, None, "no champion yet", True,
                     "no model holds @champion: a challenger passing every absolute gate becomes the first champion")]
    detail = c.summary() + (f" (note: {note})" if note else "")
    return [Gate(f"vs champion: {c.metric} difference (CI low)", c.ci_low, None, f">= -{c.margin}",
                 c.passed, detail)]


def pinned_gate(pinned: PinnedScore | None, new: Comparison | None) -> list[Gate]:
    """The challenger against the champion on the pinned set: winning on the new holdout does not
    make up for losing there by more than the margin; the detail names both."""
    if pinned is None:
        return []
    name = f"pinned set: {pinned.comparison.metric if pinned.comparison else 'comparison'} difference (CI low)"
    if pinned.comparison is None:
        return [Gate(name, None, None, "enough rows", True, f"{pinned.source}: {pinned.problem}")]
    c = pinned.comparison
    detail = f"on {pinned.source} ({pinned.rows} rows): {c.summary()}"
    if new is not None:
        detail += f"; on the new holdout: {new.summary()}"
    return [Gate(name, c.ci_low, None, f">= -{c.margin}", c.passed, detail)]


def assemble(p: Params, ev: Evaluation, score: ChampionScore | None, pinned: PinnedScore | None = None,
             champion_groups: dict[str, dict[str, int]] | None = None) -> list[Gate]:
    """Every gate of a challenger, in the report's order: the absolute metric thresholds, fairness,
    behaviour, then the comparison with the champion (`score` None: there is no champion) and on
    the pinned set."""
    comparison = score.comparison if score else None
    return (metric_gates(p, ev.metrics, score.metrics if score else None)
            + fairness_gates(ev.slices, champion_groups) + behavioral_gates(ev.behavioral)
            + comparison_gate(comparison, problem=score.problem if score else None, note=score.note if score else "")
            + pinned_gate(pinned, comparison))


def passed(gates: list[Gate]) -> bool:
    return all(g.passed for g in gates)


def markdown_table(gates: list[Gate]) -> str:
    rows = ["| gate | challenger | champion | threshold | result |", "|---|---|---|---|---|"]
    for g in gates:
        rows.append(f"| {g.name} | {fmt(g.challenger)} | {fmt(g.champion)} | {g.threshold} | "
                    f"{'pass' if g.passed else '**FAIL**'} |")
    return "\n".join(rows)


def failure_paragraph(gates: list[Gate]) -> str:
    failed = [g for g in gates if not g.passed]
    if not failed:
        return "every gate passed"
    parts = [f"{g.name} was {fmt(g.challenger)} (needs {g.threshold})"
             + (f": {g.detail}" if g.detail else "") for g in failed]
    return f"{len(failed)} of {len(gates)} gates failed: " + "; ".join(parts)
