"""A fitted model compiled into a serving plan: records (or a frame's columns) go straight into the
estimator's float64 input matrix, derived features are the derive step's own NumPy expressions,
category codes and target encodings come from lookup tables, and the estimator is called through
its kind's fastest predict (`estimators.fast_path`).

The tables are not worked out from the encoders' attributes: they are what the fitted Pipeline's
own steps answer for each known category, the missing value and an unknown one, read once at
compile time. A plan is only used where it equals the Pipeline bit for bit (`core.plan_check`).

Why: one served batch cost one Pipeline call on a pandas frame, 8 to 12.5 ms for 16 rows in two
profiles, of which the trees were a small part (pandas, the ColumnTransformer, a second encoder
inside HistGradientBoosting, the derive step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from driftline.core import estimators
from driftline.core.fast_predict import FastPath, NoFastPath
from driftline.core.features import ARITHMETIC, MISSING, DerivedFeatures, arithmetic, arithmetic_inputs

UNKNOWN = "\x00driftline: a category no encoder knows\x00"
NAN = float("nan")  # the probe for NaN: one object, so the probes' dict finds it by identity
LOOKUPS = ("frequency", "target_encoding")  # derived kinds of one categorical column: lookup tables
SMALL = 1000  # rows below which a lookup is a dict get per value (pd.factorize costs ~20 µs a call)


class NotCompiled(ValueError):
    """The model cannot be compiled into a plan; the message says why (the Pipeline serves it)."""


@dataclass(frozen=True)
class Table:
    """A categorical column's answer for each string it knows, missing (None), NaN (what a record
    read from a pandas frame may hold for missing) and anything else."""

    column: str
    values: dict[Any, float]
    unknown: float
    nan: float

    def lookup(self, values: Sequence) -> np.ndarray:
        get, unknown, missing, nan = self.values.get, self.unknown, self.values[None], self.nan
        if len(values) < SMALL:
            return np.array([missing if v is None else nan if v != v else get(v, unknown) for v in values],
                            dtype=np.float64)
        array = np.asarray(values, dtype=object)
        codes, uniques = pd.factorize(array, use_na_sentinel=True)
        found = np.array([get(u, unknown) for u in uniques] + [missing], dtype=np.float64)
        out = found[codes]  # code -1 (None, NaN) takes the last: missing
        if not (nan == missing or (nan != nan and missing != missing)):
            # A model fitted before core.categories reads NaN otherwise than None.
            for i in np.flatnonzero(codes == -1):
                if array[i] is not None:
                    out[i] = nan
        return out


@dataclass(frozen=True)
class Plan:
    """`predict_records` / `predict_columns`: the model's predict_proba (a classifier) or predict
    (a regressor) for checked records or for a frame's columns."""

    kind: str
    doubles: tuple[str, ...]  # the raw numeric inputs, in the order records are read
    width: int  # columns of the estimator's input matrix
    raw: tuple[tuple[int, str], ...]  # (matrix column, raw numeric input) passed through
    derived: tuple[tuple[int, dict, Any], ...]  # (matrix column, spec, what it learned) computed
    tables: tuple[tuple[int, Table], ...]  # (matrix column, lookup table)
    fast: FastPath

    def predict_records(self, records: list[dict]) -> np.ndarray:
        n, doubles = len(records), self.doubles
        columns: dict[str, Any] = {}
        if len(doubles) == 1:
            columns[doubles[0]] = np.array([r[doubles[0]] for r in records], dtype=np.float64)
        elif doubles:
            get = itemgetter(*doubles)
            # One conversion for every numeric input (None reads as NaN), then each input as a
            # contiguous row, as a frame's column is: NumPy's loops may differ with the stride.
            block = np.ascontiguousarray(np.array([get(r) for r in records], dtype=np.float64).reshape(n, -1).T)
            columns.update(zip(doubles, block, strict=True))
        for _, table in self.tables:
            if table.column not in columns:
                columns[table.column] = [r[table.column] for r in records]
        return self._predict(n, columns)

    def predict_columns(self, frame: pd.DataFrame) -> np.ndarray:
        columns: dict[str, Any] = {c: np.ascontiguousarray(frame[c].to_numpy(dtype=np.float64))
                                   for c in self.doubles}
        for _, table in self.tables:
            columns.setdefault(table.column, frame[table.column].to_numpy(dtype=object))
        return self._predict(len(frame), columns)

    def _predict(self, n: int, columns: Mapping[str, Any]) -> np.ndarray:
        x = np.empty((n, self.width), dtype=np.float64)
        for j, name in self.raw:
            x[:, j] = columns[name]
        for j, spec, learned in self.derived:
            x[:, j] = arithmetic(spec, learned, columns.__getitem__)
        for j, table in self.tables:
            x[:, j] = table.lookup(columns[table.column])
        return self.fast.predict(x)


def compile_model(model, columns: Mapping[str, str], classification: bool) -> Plan:
    """The plan of a fitted model (a Pipeline, or a threshold wrapper around one) whose raw inputs
    are `columns` (name -> "double" | "string"); NotCompiled saying why it cannot have one."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    inner = getattr(model, "estimator_", model)
    if not isinstance(inner, Pipeline):
        raise NotCompiled(f"the model is a {type(inner).__name__}, not a driftline Pipeline")
    names = [name for name, _ in inner.steps]
    if names not in (["preprocess", "model"], ["derive", "preprocess", "model"]):
        raise NotCompiled(f"its Pipeline's steps are {names} (preprocessing: none or a Pipeline of its own)")
    estimator, pre = inner.named_steps["model"], inner.named_steps["preprocess"]
    kind = estimators.of_estimator(estimator)
    try:
        fast = estimators.fast_path(estimator, classification)
    except NoFastPath as err:
        raise NotCompiled(f"{kind.name if kind else type(estimator).__name__}: {err}") from None
    if fast is None:
        raise NotCompiled(f"{kind.name if kind else type(estimator).__name__} has no fast path: "
                          "the Pipeline is called itself")
    if not isinstance(pre, ColumnTransformer):
        raise NotCompiled(f"its preprocessing is a {type(pre).__name__}")
    derive = inner.named_steps.get("derive")
    specs = {s["name"]: s for s in (derive.specs if isinstance(derive, DerivedFeatures) else [])}
    doubles = [c for c, t in columns.items() if t == "double"]
    strings = [c for c, t in columns.items() if t == "string"]
    raw: list[tuple[int, str]] = []
    derived: list[tuple[int, dict, Any]] = []
    lookups: list[tuple[int, str]] = []  # (matrix column, raw string column)
    for name, transformer, used in pre.transformers_:
        out = range(pre.output_indices_[name].start, pre.output_indices_[name].stop)
        if transformer == "drop" or len(out) == 0:
            continue
        if isinstance(transformer, OrdinalEncoder) and len(out) == len(used) and set(used) <= set(strings):
            lookups += zip(out, used, strict=True)
        elif _passthrough(transformer) and len(out) == len(used):
            for j, column in zip(out, used, strict=True):
                spec = specs.get(column)
                if column in doubles and spec is None:
                    raw.append((j, column))
                elif spec is not None and spec["kind"] in ARITHMETIC and set(arithmetic_inputs(spec)) <= set(doubles):
                    derived.append((j, spec, derive.learned_.get(column)))
                elif spec is not None and spec["kind"] in LOOKUPS and spec["column"] in strings:
                    lookups.append((j, spec["column"]))
                else:
                    raise NotCompiled(f"input {column!r} ({spec['kind'] if spec else columns.get(column, 'unknown')}) "
                                      "has no NumPy form in the plan")
        else:
            raise NotCompiled(f"preprocessing step {name!r} ({type(transformer).__name__}) has no NumPy form")
    tables = _tables(inner, pre, fast, columns, lookups, specs)
    width = max(s.stop for s in pre.output_indices_.values())
    return Plan(kind.name if kind else type(estimator).__name__, tuple(doubles), width, tuple(raw), tuple(derived),
                tuple(zip((j for j, _ in lookups), tables, strict=True)), fast)


def _passthrough(transformer) -> bool:
    """"passthrough", which a fitted ColumnTransformer holds as a FunctionTransformer of nothing."""
    from sklearn.preprocessing import FunctionTransformer

    return transformer == "passthrough" or (type(transformer) is FunctionTransformer and transformer.func is None
                                            and not transformer.validate)


def _tables(inner, pre, fast: FastPath, columns: Mapping[str, str], lookups: list[tuple[int, str]],
            specs: dict) -> list[Table]:
    """Each looked-up matrix column's value for every string its column knows, None and UNKNOWN, as
    the fitted steps answer them: one frame of probe rows through the Pipeline's own transforms
    (and the estimator's own recoding), read column by column."""
    if not lookups:
        return []
    probes = {c: _known(pre, specs, inner, c) for c in {c for _, c in lookups}}
    rows = max(len(v) for v in probes.values())
    frame = pd.DataFrame({c: (np.ones(rows) if t == "double" else
                              pd.Series(np.array(probes[c] + [None] * (rows - len(probes[c])) if c in probes
                                                 else [None] * rows, dtype=object), dtype=object))
                          for c, t in columns.items()})
    matrix = np.asarray(inner[:-1].transform(frame), dtype=np.float64)
    if fast.recode is not None:
        matrix = np.asarray(fast.recode(matrix), dtype=np.float64)
    tables = []
    for j, column in lookups:
        values = {v: float(matrix[i, j]) for i, v in enumerate(probes[column])}
        tables.append(Table(column, values, values.pop(UNKNOWN), values.pop(NAN)))
    return tables


def _known(pre, specs: dict, inner, column: str) -> list:
    """Every string a fitted step knows for `column` (the ordinal encoder's categories, the
    frequency table's and the target encoder's), the missing-category marker, None, NaN and UNKNOWN."""
    known: set[str] = {MISSING}
    for _, transformer, used in pre.transformers_:
        if column in list(used) and hasattr(transformer, "categories_"):
            known |= {c for c in transformer.categories_[list(used).index(column)].tolist() if isinstance(c, str)}
    derive = inner.named_steps.get("derive")
    for name, spec in specs.items():
        if spec["kind"] in LOOKUPS and spec["column"] == column:
            learned = derive.learned_[name]
            keys = learned.categories_[0].tolist() if hasattr(learned, "categories_") else list(learned)
            known |= {k for k in keys if isinstance(k, str)}
    if UNKNOWN in known:
        raise NotCompiled(f"column {column!r} knows the plan's own unknown marker as a category")
    return [*sorted(known), None, NAN, UNKNOWN]


def plan_or_reason(model, columns: Mapping[str, str], classification: bool) -> tuple[Plan | None, str]:
    """compile_model, or None and why not."""
    try:
        return compile_model(model, columns, classification), ""
    except NotCompiled as err:
        return None, str(err)
    except Exception as err:  # noqa: BLE001 - a model the plan misreads is served by its Pipeline
        return None, f"compiling failed: {type(err).__name__}: {err}"

