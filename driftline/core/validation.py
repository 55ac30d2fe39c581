"""Data validation before training: schema, quality, and (given a reference) distribution.

Every check produces a `Check` so the report lists what passed as well as what failed.
Checks are plain functions of the DataFrame and the config; the distribution check takes
the drift result computed by the Evidently adapter, so nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from driftline.config import Params
from driftline.config import features as config_features
from driftline.core import features, frames, versions
from driftline.core.checks import Check


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


def _schema(df: pd.DataFrame, p: Params) -> list[Check]:
    data = p.data
    checks = []
    expected = data.columns
    missing = [c for c in expected if c not in df.columns]
    checks.append(Check("schema: required columns present", not missing,
                        f"missing columns: {', '.join(missing)}" if missing
                        else f"all {len(expected)} required columns present"))
    extra = [c for c in df.columns if c not in expected]
    if extra:
        ok = p.validation.allow_extra_columns
        checks.append(Check("schema: no unexpected columns", ok,
                            f"unexpected columns: {', '.join(map(str, extra))}"
                            + (" (ignored)" if ok else "")))
    for f in data.features:
        if f.name not in df.columns:
            continue
        col = df[f.name]
        if f.type == "numeric" and not (ptypes.is_numeric_dtype(col) and not ptypes.is_bool_dtype(col)):
            sample = col.dropna().astype(str).head(3).tolist()
            checks.append(Check("schema: column types", False,
                                f"column {f.name!r} must be numeric but is {col.dtype} (e.g. {sample})",
                                f.name))
        elif f.type == "numeric" and np.isinf(col.to_numpy(dtype="float64", na_value=np.nan)).any():
            checks.append(Check("quality: finite numbers", False,
                                f"column {f.name!r} holds infinite values", f.name))
        elif f.type == "datetime":
            bad = col.notna() & features.when(col).isna()
            if bad.any():
                checks.append(Check("schema: column types", False,
                                    f"datetime column {f.name!r} has {int(bad.sum())} values that are not ISO 8601 "
                                    f"dates (e.g. {col[bad].astype(str).head(3).tolist()})", f.name))
    if data.time_column and data.time_column in df.columns:
        col = df[data.time_column]
        if not ptypes.is_datetime64_any_dtype(col):
            parsed = pd.to_datetime(col, errors="coerce", utc=True)
            bad = int(parsed.isna().sum() - col.isna().sum())
            if bad:
                checks.append(Check("schema: column types", False,
                                    f"time column {data.time_column!r} has {bad} unparsable values",
                                    data.time_column))
        if col.isna().any():
            checks.append(Check("quality: time column complete", False,
                                f"time column {data.time_column!r} has {int(col.isna().sum())} missing values",
                                data.time_column))
    if not any(c.name == "schema: column types" for c in checks):
        checks.append(Check("schema: column types", True, "every column has its declared type"))
    return checks


def _target(df: pd.DataFrame, p: Params) -> list[Check]:
    data = p.data
    y = df[data.target]
    checks = []
    n_missing = int(y.isna().sum())
    checks.append(Check("quality: target complete", n_missing == 0,
                        f"target {data.target!r} has {n_missing} missing values" if n_missing
                        else f"target {data.target!r} has no missing values", data.target))
    values = y.dropna()
    distinct = values.nunique()
    if data.task == "regression":
        numeric = ptypes.is_numeric_dtype(y)
        checks.append(Check("quality: target numeric", numeric,
                            f"regression target {data.target!r} is {y.dtype}, not numeric", data.target))
        checks.append(Check("quality: target not constant", distinct > 1,
                            f"target {data.target!r} is constant" if distinct <= 1
                            else f"target {data.target!r} varies", data.target))
        return checks
    shares = values.value_counts(normalize=True)
    if data.task == "binary" and distinct != 2:
        what = "is constant" if distinct < 2 else f"has {distinct} classes"
        checks.append(Check("quality: target classes", False,
                            f"binary target {data.target!r} {what} "
                            f"({', '.join(map(str, shares.index[:5]))})", data.target))
    elif distinct < 2:
        checks.append(Check("quality: target classes", False,
                            f"target {data.target!r} is constant", data.target))
    else:
        rare = shares[shares < p.validation.min_class_share]
        checks.append(Check("quality: target classes", rare.empty,
                            f"classes rarer than {p.validation.min_class_share:.1%} of rows: "
                            f"{', '.join(map(str, rare.index))}" if not rare.empty
                            else f"{distinct} classes, rarest {shares.min():.1%}", data.target))
    return checks


def _quality(df: pd.DataFrame, p: Params) -> list[Check]:
    data, rules = p.data, p.validation
    checks = [Check("quality: enough rows", len(df) >= rules.min_rows,
                    f"{len(df)} rows, at least {rules.min_rows} needed")]
    if len(df):
        dupes = float(df.duplicated().mean())
        checks.append(Check("quality: duplicate rows", dupes <= rules.max_duplicate_share,
                            f"{dupes:.2%} duplicate rows (at most {rules.max_duplicate_share:.2%})"))
        checks.append(versions.near_duplicates(df, p))
    for f in data.features:
        if f.name not in df.columns or not len(df):
            continue
        col = df[f.name]
        limit = data.max_null_rate if f.max_null_rate is None else f.max_null_rate
        rate = float(col.isna().mean())
        if rate > limit:
            checks.append(Check("quality: missing values", False,
                                f"column {f.name!r} is {rate:.1%} missing (at most {limit:.1%})", f.name))
        if f.type == "numeric" and ptypes.is_numeric_dtype(col):
            values = col.dropna()
            low = f.min is not None and (values < f.min).any()
            high = f.max is not None and (values > f.max).any()
            if low or high:
                checks.append(Check("quality: value ranges", False,
                                    f"column {f.name!r} spans {values.min():g}..{values.max():g}, "
                                    f"outside [{f.min}, {f.max}]", f.name))
        if f.type == "categorical" and f.categories is not None:
            seen = col.dropna().astype(str)
            unknown = seen[~seen.isin(f.categories)]
            share = len(unknown) / max(len(col), 1)
            if share > rules.max_unknown_category_share:
                top = ", ".join(map(repr, unknown.value_counts().index[:5]))
                checks.append(Check("quality: allowed categories", False,
                                    f"column {f.name!r} has unknown categories {top} in {share:.1%} of rows",
                                    f.name))
        if len(df) >= 2 and col.nunique(dropna=True) <= 1:
            checks.append(Check("quality: feature varies", False,
                                f"column {f.name!r} is constant", f.name))
    for name in ("quality: missing values", "quality: value ranges", "quality: allowed categories",
                 "quality: feature varies"):
        if not any(c.name == name for c in checks):
            checks.append(Check(name, True, "every feature within limits"))
    return checks


def validate(df: pd.DataFrame, p: Params) -> ValidationReport:
    """Schema and quality checks. Type checks gate the rest: ranges on text make no sense."""
    checks = _schema(df, p)
    if not all(c.passed for c in checks if c.name.startswith("schema")):
        return ValidationReport(len(df), checks)
    checks += _target(df, p)
    checks += _quality(df, p)
    if p.data.derived and all(c.passed for c in checks if c.column == p.data.target):
        checks += derived_checks(df, p)
    return ValidationReport(len(df), checks)


def derived_checks(df: pd.DataFrame, p: Params) -> list[Check]:
    """The derived features as the model will compute them (learned on these rows, target
    encoding cross-fitted), held to their limits like raw features: missing share, finite values,
    ranges, and that they vary. A passing check states the observed range, for the report."""
    try:
        values = features.from_params(p).fit_transform(frames.features(df, p.data), frames.target(df, p.data))
    except Exception as err:  # noqa: BLE001 - reported against the config, not raised from inside sklearn
        return [Check("derived: computed", False, f"the derived features could not be computed: "
                      f"{type(err).__name__}: {err}")]
    limits = {f.name: p.data.max_null_rate if f.max_null_rate is None else f.max_null_rate for f in p.data.features}
    checks = []
    for d in p.data.derived:
        col = values[d.name].to_numpy(dtype="float64")
        limit = d.max_null_rate if d.max_null_rate is not None else \
            max((limits.get(c, 0.0) for _, c in config_features.inputs(d)), default=0.0)
        missing, infinite = float(np.isnan(col).mean()), int(np.isinf(col).sum())
        finite = col[np.isfinite(col)]
        low, high = (float(finite.min()), float(finite.max())) if len(finite) else (np.nan, np.nan)
        problems = [f"{missing:.1%} missing (at most {limit:.1%})"] if missing > limit else []
        problems += [f"{infinite} infinite values"] if infinite else []
        if (d.min is not None and low < d.min) or (d.max is not None and high > d.max):
            problems.append(f"spans {low:g}..{high:g}, outside [{d.min}, {d.max}]")
        if len(finite) >= 2 and low == high:
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
