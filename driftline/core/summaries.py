"""What data validation reads from a table, as a summary that two summaries merge into.

`validation` judges a `Summary`. In one process it is the summary of the whole table; on a Dask
cluster each partition is summarized where it lives and the summaries are merged (in partition
order), so the report is the same whichever way the rows were held: counts add, bounds take their
extremes, the first examples are the first in row order, and the at most two distinct values kept
per column say whether it varies.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from driftline.config import Params
from driftline.core import features

EXAMPLES = 3  # values quoted in a failure


@dataclass
class Column:
    """One configured column of the table (a feature, the target or the time column)."""

    dtype: str
    numeric: bool  # numeric and not bool, in every partition
    datetime: bool  # a datetime dtype in every partition
    boolean: bool = False  # a bool dtype in every partition (numeric to a regression target's check)
    missing: int = 0
    examples: list[str] = field(default_factory=list)  # the first non-null values, as text
    infinite: int = 0
    low: float = np.nan  # extremes of the non-null values (numeric columns)
    high: float = np.nan
    distinct: list = field(default_factory=list)  # at most two distinct non-null values
    # value -> rows (the target of a classification task), in value_counts(sort=False)'s order, with
    # a categorical dtype's unused categories at 0 rows: what value_counts() sorts, ties kept in order.
    counts: Counter | None = None
    unknown: Counter | None = None  # values outside the declared categories -> rows
    bad_dates: int = 0  # a datetime feature's values that are not ISO 8601 dates
    bad_date_examples: list[str] = field(default_factory=list)
    unparsable: int = 0  # the time column's values that pandas cannot read as times


@dataclass
class Summary:
    rows: int
    columns: list[str]
    by_name: dict[str, Column]


def summarize(df: pd.DataFrame, p: Params) -> Summary:
    """The summary of a table (a whole one, or one partition of it)."""
    data = p.data
    declared = {f.name: f for f in data.features}
    wanted = [*declared, data.target, *([data.time_column] if data.time_column else [])]
    out = {}
    for name in dict.fromkeys(wanted):
        if name not in df.columns:
            continue
        col = df[name]
        f = declared.get(name)
        out[name] = _column(col, f, counted=name == data.target and data.task != "regression",
                            time=name == data.time_column)
    return Summary(len(df), [str(c) for c in df.columns], out)


def _column(col: pd.Series, f, counted: bool, time: bool) -> Column:
    numeric = ptypes.is_numeric_dtype(col) and not ptypes.is_bool_dtype(col)
    c = Column(str(col.dtype), numeric, ptypes.is_datetime64_any_dtype(col), ptypes.is_bool_dtype(col),
               missing=int(col.isna().sum()))
    present = col.dropna()
    c.examples = present.head(EXAMPLES).astype(str).tolist()
    c.distinct = list(pd.unique(present))[:2] if len(present) else []
    if numeric:
        values = col.to_numpy(dtype="float64", na_value=np.nan)
        c.infinite = int(np.isinf(values).sum())
        if len(present):
            c.low, c.high = float(np.nanmin(values)), float(np.nanmax(values))
    if counted:
        c.counts = Counter(present.value_counts(sort=False).to_dict())
    if f is not None and f.type == "categorical" and f.categories is not None:
        seen = present.astype(str)
        c.unknown = Counter(seen[~seen.isin(f.categories)].value_counts(sort=False).to_dict())
    if f is not None and f.type == "datetime":
        bad = col.notna() & features.when(col).isna()
        c.bad_dates = int(bad.sum())
        c.bad_date_examples = col[bad].astype(str).head(EXAMPLES).tolist()
    if time and not c.datetime:
        parsed = pd.to_datetime(col, errors="coerce", utc=True)
        c.unparsable = int(parsed.isna().sum() - col.isna().sum())
    return c


def merge(first: Summary, second: Summary) -> Summary:
    """Two summaries of consecutive parts of a table as the summary of both (in that order)."""
    columns = list(dict.fromkeys([*first.columns, *second.columns]))
    by_name = dict(first.by_name)
    for name, b in second.by_name.items():
        by_name[name] = _merge_column(by_name[name], b) if name in by_name else b
    return Summary(first.rows + second.rows, columns, by_name)


def _merge_column(a: Column, b: Column) -> Column:
    def added(x: Counter | None, y: Counter | None) -> Counter | None:
        """Counts added, the first's values first (so first appearance in row order), zeros kept."""
        if x is None and y is None:
            return None
        out = Counter(x or {})
        out.update(y or {})
        return out

    return Column(
        a.dtype, a.numeric and b.numeric, a.datetime and b.datetime, a.boolean and b.boolean, a.missing + b.missing,
        (a.examples + b.examples)[:EXAMPLES], a.infinite + b.infinite,
        float(np.fmin(a.low, b.low)), float(np.fmax(a.high, b.high)),
        list(dict.fromkeys([*a.distinct, *b.distinct]))[:2], added(a.counts, b.counts), added(a.unknown, b.unknown),
        a.bad_dates + b.bad_dates, (a.bad_date_examples + b.bad_date_examples)[:EXAMPLES],
        a.unparsable + b.unparsable)


def merge_all(summaries: list[Summary]) -> Summary:
    out = summaries[0]
    for s in summaries[1:]:
        out = merge(out, s)
    return out


def most_common(counts: Counter, n: int) -> list:
    """The values with the most rows, most first; ties in the counts' own order, as pandas'
    `value_counts()` sorts them (a stable sort), so that the report quotes what one process quoted.
    Merged in partition order, the counts keep the whole table's order."""
    return [v for v, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:n]]
