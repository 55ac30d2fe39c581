"""Bit-identical or not used: a compiled plan (core.plan) is compared with the model's own
Pipeline on the model's input example, its reference sample and generated edge rows (missing
values, unknown categories, zero denominators, extremes), in one batch, in small batches and row
by row. Any difference, in any bit of any answer, and the Pipeline serves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftline.core.plan import Plan, Table, plan_or_reason

Frame = Callable[[list[dict]], pd.DataFrame]  # records -> the Pipeline's input frame (as the server builds it)

# Values every numeric input is tried with: zero of both signs (every denominator), -1 (log1p's
# edge), the smallest subnormal, the largest finite values, integers past float precision.
EXTREMES = (0.0, -0.0, -1.0, 1.0, 0.5, -1.0000000000000002, 1e-300, 5e-324, -5e-324, 1e308, -1e308,
            1e15, 9007199254740993.0, None)
STRINGS = ("", "__missing__", "an unknown category", "UNKNOWN", " ", None, float("nan"))


@dataclass(frozen=True)
class Verdict:
    plan: Plan | None  # None: serve through the Pipeline
    reason: str  # why the plan is not used ("" when it is)
    rows: int  # rows compared


def answers(model, frame: pd.DataFrame, classification: bool) -> np.ndarray:
    """What the server answers through the Pipeline: predict_proba, or predict for a regressor."""
    return np.asarray(model.predict_proba(frame) if classification else model.predict(frame))


def labels(model, proba: np.ndarray) -> np.ndarray:
    """A classifier's labels from the probabilities the plan answered: a binary model's at its own
    threshold (its wrapper's rule), any other's the class of largest probability (checked at load
    against the model's own predict)."""
    if getattr(model, "threshold", None) is not None:
        from driftline.core.evaluation import labels_at_own_threshold

        return labels_at_own_threshold(model, proba)
    return np.asarray(model.classes_)[np.argmax(proba, axis=1)]


def compile_checked(model, columns: Mapping[str, str], classification: bool, frame: Frame,
                    samples: list[tuple[str, list[dict]]]) -> Verdict:
    """The model's plan if it equals the Pipeline bit for bit on every sample (name, records) and
    on the edge rows made from the first record of the first sample; else None and why."""
    plan, reason = plan_or_reason(model, columns, classification)
    if plan is None:
        return Verdict(None, reason, 0)
    base = next((records[0] for _, records in samples if records), None)
    sets = [*samples, ("edge rows", edge_records(base, columns, plan))] if base is not None else list(samples)
    rows = 0
    try:
        for name, records in sets:
            if not records:
                continue
            found = _differs(plan, model, frame, classification, name, records)
            rows += len(records)
            if found:
                return Verdict(None, found, rows)
    except Exception as err:  # noqa: BLE001 - a plan that fails where the Pipeline answers is not used
        return Verdict(None, f"the plan failed: {type(err).__name__}: {err}", rows)
    return Verdict(plan, "", rows)


def _differs(plan: Plan, model, frame: Frame, classification: bool, name: str, records: list[dict]) -> str:
    """"" when the plan answers `records` as the Pipeline does, as one batch, in batches of 16 and
    row by row (the first 64); else what differs."""
    try:
        expected = answers(model, frame(records), classification)
    except Exception:  # noqa: BLE001 - the Pipeline refuses the batch: compare the rows it takes
        return _row_by_row(plan, model, frame, classification, name, records)
    got = plan.predict_records(records)
    if found := _compare(expected, got, name):
        return found
    if classification and getattr(model, "threshold", None) is None:  # labels by the plan's rule: argmax
        said, own = labels(model, got), np.asarray(model.predict(frame(records)))
        if not np.array_equal(said, own):
            return f"{name}: the class of largest probability is not the model's own predict on " \
                   f"{int((said != own).sum())} of {len(own)} rows"
    if len(records) == 1:
        return ""
    rng = np.random.default_rng(len(records))
    order = rng.permutation(len(records))
    shuffled = plan.predict_records([records[i] for i in order])
    if found := _compare(expected[order], shuffled, f"{name}, shuffled"):
        return found
    for start in range(0, min(len(records), 256), 16):
        if found := _compare(expected[start:start + 16], plan.predict_records(records[start:start + 16]),
                             f"{name}, rows {start}-{start + 15} as one batch"):
            return found
    return _row_by_row(plan, model, frame, classification, name, records[:64], expected[:64])


def _row_by_row(plan: Plan, model, frame: Frame, classification: bool, name: str, records: list[dict],
                expected: np.ndarray | None = None) -> str:
    for i, record in enumerate(records):
        try:
            want = answers(model, frame([record]), classification) if expected is None else expected[i:i + 1]
        except Exception:  # noqa: BLE001 - a row the Pipeline refuses is refused by the server too
            continue
        if found := _compare(want, plan.predict_records([record]), f"{name}, row {i} alone"):
            return found
    return ""


def _compare(expected: np.ndarray, got: np.ndarray, name: str) -> str:
    if expected.dtype != got.dtype or expected.shape != got.shape:
        return f"{name}: the plan answers {got.dtype}{got.shape}, the Pipeline {expected.dtype}{expected.shape}"
    a, b = np.ascontiguousarray(expected), np.ascontiguousarray(got)
    same = (a.view(np.uint8).reshape(len(a), -1) == b.view(np.uint8).reshape(len(b), -1)).all(axis=1)
    if same.all():
        return ""
    i = int(np.flatnonzero(~same)[0])
    return (f"{name}: {int((~same).sum())} of {len(same)} rows differ from the Pipeline "
            f"(first: row {i}, plan {got[i].tolist()!r} vs Pipeline {expected[i].tolist()!r})")


def edge_records(base: dict, columns: Mapping[str, str], plan: Plan | None = None) -> list[dict]:
    """Rows that differ from `base` in one input each: every numeric input through EXTREMES, every
    categorical through STRINGS and each category the plan's tables know; then every input
    missing at once, and each ratio's denominator at zero with its numerator at zero and missing."""
    rows: list[dict] = []
    tables: dict[str, Table] = {t.column: t for _, t in (plan.tables if plan else ())}
    for name, kind in columns.items():
        known = sorted(k for k in tables[name].values if k is not None) if name in tables else []
        values = EXTREMES if kind == "double" else (*STRINGS, *known)
        rows += [{**base, name: v} for v in values]
    rows.append(dict.fromkeys(base))
    for _, spec, _ in plan.derived if plan else ():
        if spec["kind"] == "ratio":
            den, num = spec["denominator"], spec["numerator"]
            rows += [{**base, den: 0.0, num: 0.0}, {**base, den: 0.0, num: None}, {**base, den: -0.0, num: -1.0}]
    return rows


def records_of(frame: pd.DataFrame, columns: Mapping[str, str]) -> list[dict]:
    """A table's rows as the server's checked records: numbers as floats and text as str, missing
    as None (JSON null), only the model's input columns."""
    out = {}
    for name, kind in columns.items():
        col = frame[name]
        if kind == "double":
            values = pd.to_numeric(col, errors="coerce").astype("float64")
            out[name] = [None if v != v else v for v in values.tolist()]
        else:
            present = col.notna().tolist()
            out[name] = [str(v) if ok else None for v, ok in zip(col.astype(object).tolist(), present, strict=True)]
    return [dict(zip(out, row, strict=True)) for row in zip(*out.values(), strict=True)]
