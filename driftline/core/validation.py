"""Data validation before training: schema, quality, and (given a reference) distribution.

Every check produces a `Check` so the report lists what passed as well as what failed.
Checks are plain functions of the DataFrame and the config; the distribution check takes
the drift result computed by the Evidently adapter, so nothing here does I/O.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from driftline.config import Params
from driftline.config import features as config_features
from driftline.core import features, frames, versions
from driftline.core.checks import Check
from driftline.core.summaries import Summary, most_common, summarize


@dataclass(frozen=True)
class ValidationReport:
    rows: int
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        if self.passed:
            return f"data validation passed ({len(self.checks)} checks on {self.rows} rows)"
        reasons = "; ".join(c.detail for c in self.failures)
        return f"data validation failed ({len(self.failures)} of {len(self.checks)} checks): {reasons}"

    def with_checks(self, extra: list[Check]) -> ValidationReport:
        return ValidationReport(self.rows, [*self.checks, *extra])


def _schema(t: Summary, p: Params) -> list[Check]:
    data = p.data
    checks = []
    expected = data.columns
    missing = [c for c in expected if c not in t.columns]
    checks.append(Check("schema: required columns present", not missing,
                        f"missing columns: {', '.join(missing)}" if missing
                        else f"all {len(expected)} required columns present"))
    extra = [c for c in t.columns if c not in expected]
    if extra:
        ok = p.validation.allow_extra_columns
        checks.append(Check("schema: no unexpected columns", ok,
                            f"unexpected columns: {', '.join(map(str, extra))}"
                            + (" (ignored)" if ok else "")))
    for f in data.features:
        if f.name not in t.by_name:
            continue
        col = t.by_name[f.name]
        if f.type == "numeric" and not col.numeric:
            checks.append(Check("schema: column types", False,
                                f"column {f.name!r} must be numeric but is {col.dtype} (e.g. {col.examples})",
                                f.name))
        elif f.type == "numeric" and col.infinite:
            checks.append(Check("quality: finite numbers", False,
                                f"column {f.name!r} holds infinite values", f.name))
        elif f.type == "datetime" and col.bad_dates:
            checks.append(Check("schema: column types", False,
                                f"datetime column {f.name!r} has {col.bad_dates} values that are not ISO 8601 "
                                f"dates (e.g. {col.bad_date_examples})", f.name))
    if data.time_column and data.time_column in t.by_name:
        col = t.by_name[data.time_column]
        if col.unparsable:
            checks.append(Check("schema: column types", False,
                                f"time column {data.time_column!r} has {col.unparsable} unparsable values",
                                data.time_column))
        if col.missing:
            checks.append(Check("quality: time column complete", False,
                                f"time column {data.time_column!r} has {col.missing} missing values",
                                data.time_column))
    if not any(c.name == "schema: column types" for c in checks):
        checks.append(Check("schema: column types", True, "every column has its declared type"))
    return checks


def _target(t: Summary, p: Params) -> list[Check]:
    data = p.data
    y = t.by_name[data.target]
    checks = []
    n_missing = y.missing
    checks.append(Check("quality: target complete", n_missing == 0,
                        f"target {data.target!r} has {n_missing} missing values" if n_missing
                        else f"target {data.target!r} has no missing values", data.target))
    if data.task == "regression":
        distinct = len(y.distinct)
        checks.append(Check("quality: target numeric", y.numeric or y.boolean,  # pandas counts bool as numeric
                            f"regression target {data.target!r} is {y.dtype}, not numeric", data.target))
        checks.append(Check("quality: target not constant", distinct > 1,
                            f"target {data.target!r} is constant" if distinct <= 1
                            else f"target {data.target!r} varies", data.target))
        return checks
    counts = y.counts or Counter()
    total = sum(counts.values())
    shares = {k: n / total if total else np.nan for k, n in counts.items()}
    distinct = sum(1 for n in counts.values() if n)  # a categorical dtype's unused categories count 0 rows
    if data.task == "binary" and distinct != 2:
        what = "is constant" if distinct < 2 else f"has {distinct} classes"
        checks.append(Check("quality: target classes", False,
                            f"binary target {data.target!r} {what} "
                            f"({', '.join(map(str, most_common(counts, 5)))})", data.target))
    elif distinct < 2:
        checks.append(Check("quality: target classes", False,
                            f"target {data.target!r} is constant", data.target))
    else:
        rare = [k for k in most_common(counts, len(counts)) if shares[k] < p.validation.min_class_share]
        checks.append(Check("quality: target classes", not rare,
                            f"classes rarer than {p.validation.min_class_share:.1%} of rows: "
                            f"{', '.join(map(str, rare))}" if rare
                            else f"{distinct} classes, rarest {min(shares.values()):.1%}", data.target))
    return checks


def _quality(t: Summary, p: Params, duplicates: int, near: Check | None) -> list[Check]:
    """`duplicates`: rows equal to an earlier row; `near`: the near-copy check (None on no rows)."""
    data, rules = p.data, p.validation
    checks = [Check("quality: enough rows", t.rows >= rules.min_rows,
                    f"{t.rows} rows, at least {rules.min_rows} needed")]
    if t.rows:
        dupes = duplicates / t.rows
        checks.append(Check("quality: duplicate rows", dupes <= rules.max_duplicate_share,
                            f"{dupes:.2%} duplicate rows (at most {rules.max_duplicate_share:.2%})"))
        if near is not None:
            checks.append(near)
    for f in data.features:
        if f.name not in t.by_name or not t.rows:
            continue
        col = t.by_name[f.name]
        limit = data.max_null_rate if f.max_null_rate is None else f.max_null_rate
        rate = col.missing / t.rows
        if rate > limit:
            checks.append(Check("quality: missing values", False,
                                f"column {f.name!r} is {rate:.1%} missing (at most {limit:.1%})", f.name))
        if f.type == "numeric" and col.numeric:
            low = f.min is not None and col.low < f.min
            high = f.max is not None and col.high > f.max
            if low or high:
                checks.append(Check("quality: value ranges", False,
                                    f"column {f.name!r} spans {col.low:g}..{col.high:g}, "
                                    f"outside [{f.min}, {f.max}]", f.name))
        if f.type == "categorical" and col.unknown is not None:
            share = sum(col.unknown.values()) / max(t.rows, 1)
            if share > rules.max_unknown_category_share:
                top = ", ".join(map(repr, most_common(col.unknown, 5)))
                checks.append(Check("quality: allowed categories", False,
                                    f"column {f.name!r} has unknown categories {top} in {share:.1%} of rows",
                                    f.name))
        if t.rows >= 2 and len(col.distinct) <= 1:
            checks.append(Check("quality: feature varies", False,
                                f"column {f.name!r} is constant", f.name))
    for name in ("quality: missing values", "quality: value ranges", "quality: allowed categories",
                 "quality: feature varies"):
        if not any(c.name == name for c in checks):
            checks.append(Check(name, True, "every feature within limits"))
    return checks


def validate(df: pd.DataFrame, p: Params) -> ValidationReport:
    """Schema and quality checks. Type checks gate the rest: ranges on text make no sense. What is
    sampled (the near-copy chance level's blocks, target encoding's folds) is chosen by row hash,
    not position: a table in partitions (training.distributed) gets this report word for word."""
    return judge(summarize(df, p), p, lambda: int(df.duplicated().sum()) if len(df) else 0,
                 lambda: versions.near_duplicates(df, p) if len(df) else None,
                 lambda: derived_checks(df, p))


def judge(t: Summary, p: Params, duplicates, near, derived) -> ValidationReport:
    """The report on a table's summary. `duplicates`, `near` and `derived` are asked only when the
    checks before them let the report go on: the count of exact duplicate rows, the near-copy
    check, and the derived features' checks (in one process from the table itself; on a cluster
    from aggregations over its partitions)."""
    checks = _schema(t, p)
    if not all(c.passed for c in checks if c.name.startswith("schema")):
        return ValidationReport(t.rows, checks)
    checks += _target(t, p)
    checks += _quality(t, p, duplicates(), near())
    if p.data.derived and all(c.passed for c in checks if c.column == p.data.target):
        checks += derived()
    return ValidationReport(t.rows, checks)


def derived_checks(df: pd.DataFrame, p: Params) -> list[Check]:
    """The derived features as the model will compute them (learned on these rows, target
    encoding cross-fitted), held to their limits like raw features: missing share, finite values,
    ranges, and that they vary. A passing check states the observed range, for the report."""
    try:
        values = features.from_params(p).fit_transform(frames.features(df, p.data), frames.target(df, p.data))
    except Exception as err:  # noqa: BLE001 - reported against the config, not raised from inside sklearn
        return [derived_failed(err)]
    return judge_derived(derived_summary(values, p), p)


def derived_failed(err: BaseException) -> Check:
    return Check("derived: computed", False, f"the derived features could not be computed: {type(err).__name__}: {err}")


def derived_summary(values: pd.DataFrame, p: Params) -> dict[str, tuple[int, int, int, int, float, float]]:
    """Per derived feature: rows, missing, infinite, and the finite values' count and extremes as
    (rows, missing, infinite, finite, low, high); two such summaries add up (`merge_derived`)."""
    out = {}
    for d in p.data.derived:
        col = values[d.name].to_numpy(dtype="float64")
        finite = col[np.isfinite(col)]
        out[d.name] = (len(col), int(np.isnan(col).sum()), int(np.isinf(col).sum()), len(finite),
                       float(finite.min()) if len(finite) else np.nan, float(finite.max()) if len(finite) else np.nan)
    return out


def merge_derived(a: dict, b: dict) -> dict:
    return {name: (x[0] + y[0], x[1] + y[1], x[2] + y[2], x[3] + y[3], float(np.fmin(x[4], y[4])),
                   float(np.fmax(x[5], y[5]))) for name, x, y in ((n, a[n], b[n]) for n in a)}


def judge_derived(summary: dict, p: Params) -> list[Check]:
    limits = {f.name: p.data.max_null_rate if f.max_null_rate is None else f.max_null_rate for f in p.data.features}
    checks = []
    for d in p.data.derived:
        rows, n_missing, infinite, n_finite, low, high = summary[d.name]
        limit = d.max_null_rate if d.max_null_rate is not None else \
            max((limits.get(c, 0.0) for _, c in config_features.inputs(d)), default=0.0)
        missing = n_missing / rows if rows else float("nan")
        problems = [f"{missing:.1%} missing (at most {limit:.1%})"] if missing > limit else []
        problems += [f"{infinite} infinite values"] if infinite else []
        if (d.min is not None and low < d.min) or (d.max is not None and high > d.max):
            problems.append(f"spans {low:g}..{high:g}, outside [{d.min}, {d.max}]")
        if n_finite >= 2 and low == high:
            problems.append(f"is constant ({low:g})")
        detail = f"derived {d.kind} {d.name!r}: " + ("; ".join(problems) if problems else
                                                        f"{missing:.1%} missing, spans {low:g}..{high:g}")
        checks.append(Check("derived: values", not problems, detail, d.name))
    return checks


def distribution_check(drifted: dict[str, float], share: float, max_share: float,
                       reference_version: str, drift_expected: bool = False) -> Check:
    """Turn a per-column drift result (column -> score) into a validation check. When the run
    retrains because of drift, drift is the point: it is reported, not held against the data."""
    cols = ", ".join(sorted(drifted)) or "none"
    detail = (f"{share:.0%} of features drifted from model version {reference_version}'s "
              f"training data (at most {max_share:.0%}); drifted: {cols}")
    if drift_expected and share > max_share:
        detail += "; not blocking: this run retrains because of drift"
    return Check("distribution: drift against champion reference", share <= max_share or drift_expected, detail)
