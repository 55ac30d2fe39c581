"""Derived features as the first step of the model's sklearn Pipeline (`data.derived`).

The transformer takes the raw feature frame (what a client sends) and returns it with the
derived columns appended, so the registered model computes them itself: served and offline
predictions of the same raw row are the same. Whatever a kind learns comes from `fit`, which the
Pipeline calls on the training part only; target encoding is cross-fitted in `fit_transform`.
"""

from __future__ import annotations

import hashlib
import sys
import types
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import TargetEncoder


class DerivedFeatures(TransformerMixin, BaseEstimator):
    """`specs`: the `data.derived` entries as plain dicts (the pickled model does not need the
    config classes); `seed`: the salt of target encoding's fold hash."""

    def __init__(self, specs: list[dict[str, Any]], seed: int = 0, target_type: str = "auto"):
        self.specs = specs
        self.seed = seed
        self.target_type = target_type

    def fit(self, x: pd.DataFrame, y=None) -> DerivedFeatures:
        self._learn(x, y, cross_fit=False)
        return self

    def fit_transform(self, x: pd.DataFrame, y=None, **fit_params) -> pd.DataFrame:
        """Fit, then the training rows' values, target encodings cross-fitted (out of fold) on the
        folds by row hash (`hash_folds`), the values `derived_sums` computes from partitions."""
        out_of_fold = self._learn(x, y, cross_fit=True)
        return self._derive(x, out_of_fold)

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        return self._derive(x, {})

    def _call(self, s: dict[str, Any], x: pd.DataFrame) -> np.ndarray:
        """A user function over its columns: one finite-or-missing number per row, or an error
        that names it."""
        values = np.asarray(self._function(s)(x[list(s["columns"])].copy()))
        if values.shape != (len(x),) or not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
            raise ValueError(f"derived feature {s['name']!r}: {s['function']} must return one number per row "
                             f"({len(x)}), got {values.dtype} of shape {values.shape}")
        return values.astype("float64")

    def _function(self, s: dict[str, Any]):
        """The function compiled from the source the model carries, in a module of its own: two
        versions of one module loaded by one server each keep their own code."""
        cache = self.__dict__.setdefault("_functions", {})
        if s["name"] not in cache:
            if not s.get("source"):
                raise ValueError(f"derived feature {s['name']!r}: the source of {s['function']} was not read "
                                 "(params are loaded by driftline.config.load_params, which reads it)")
            module_name, attribute = s["function"].split(":")
            digest = hashlib.sha256(s["source"].encode()).hexdigest()[:12]
            module = types.ModuleType(f"driftline_user_{digest}.{module_name}")
            sys.modules[module.__name__] = module  # dataclasses and pickling look a module up by name
            exec(compile(s["source"], f"{module_name}.py (carried by the model)", "exec"), module.__dict__)
            cache[s["name"]] = getattr(module, attribute)
        return cache[s["name"]]

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_functions", None)  # compiled again from the source after loading
        return state

    def specs_names(self) -> list[str]:
        return [s["name"] for s in self.specs]

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray([*self.feature_names_in_, *(s["name"] for s in self.specs)], dtype=object)

    def _learn(self, x: pd.DataFrame, y, cross_fit: bool) -> dict[str, np.ndarray]:
        self.feature_names_in_ = np.asarray(list(x.columns), dtype=object)
        self.learned_: dict[str, Any] = {}
        out_of_fold: dict[str, np.ndarray] = {}
        folds = None
        for s in self.specs:
            kind, name = s["kind"], s["name"]
            if kind == "clip" and s.get("quantiles"):
                self.learned_[name] = tuple(float(v) for v in x[s["column"]].quantile(list(s["quantiles"])))
            elif kind == "quantile_bins":
                edges = np.unique(np.nanquantile(x[s["column"]].to_numpy(float), np.linspace(0, 1, s["bins"] + 1)))
                self.learned_[name] = edges[1:-1]  # inner edges: values beyond the training range stay in the end bins
            elif kind == "frequency":
                self.learned_[name] = _categories(x[s["column"]]).iloc[:, 0].value_counts(normalize=True).to_dict()
            elif kind == "target_encoding":
                if y is None:
                    raise ValueError(f"{name}: target encoding needs the target to fit")
                encoder = TargetEncoder(target_type=self.target_type, cv=FOLDS)
                column = _categories(x[s["column"]])
                if cross_fit:
                    folds = _folds(x, self.seed) if folds is None else folds
                    out_of_fold[name] = encoder.set_params(cv=folds).fit_transform(column, y)[:, 0]
                    # The folds are this table's row indices (40 bytes a row): the fitted encoder,
                    # pickled in the model, keeps their count, as one fitted from sums does.
                    encoder.set_params(cv=FOLDS)
                else:
                    encoder.fit(column, y)
                self.learned_[name] = encoder
        return out_of_fold

    def _derive(self, x: pd.DataFrame, out_of_fold: dict[str, np.ndarray]) -> pd.DataFrame:
        new = {}
        for s in self.specs:
            name = s["name"]
            new[name] = out_of_fold[name] if name in out_of_fold else self._value(s, x)
        # One concat, not one insert per column: this runs for every served batch.
        derived = pd.DataFrame({k: np.asarray(v, dtype="float64") for k, v in new.items()}, index=x.index)
        return pd.concat([x, derived], axis=1)

    def _value(self, s: dict[str, Any], x: pd.DataFrame) -> np.ndarray:
        kind, name = s["kind"], s["name"]
        if kind in ARITHMETIC:
            return arithmetic(s, self.learned_.get(name), lambda c: _num(x[c]))
        if kind == "frequency":
            shares = self.learned_[name]
            if len(x) >= LARGE:  # a training table: one vectorized lookup
                return _categories(x[s["column"]]).iloc[:, 0].map(shares).fillna(0.0).to_numpy(dtype="float64")
            # A served batch: a plain lookup per value (Series.map costs ~1 ms a call).
            return np.fromiter((shares.get(v if isinstance(v, str) else MISSING if pd.isna(v) else v, 0.0)
                                for v in x[s["column"]].to_numpy(dtype=object)), dtype="float64", count=len(x))
        if kind == "target_encoding":
            return self.learned_[name].transform(_categories(x[s["column"]]))[:, 0]
        if kind == "custom":
            return self._call(s, x)
        if kind == "date_part":
            return _part(when(x[s["column"]]), s["part"])
        if kind == "days_since":
            end = when(x[s["until"]]) if s.get("until") else when(pd.Series([s["date"]])).iloc[0]
            return ((end - when(x[s["column"]])) / pd.Timedelta(days=1)).to_numpy(dtype="float64", na_value=np.nan)
        raise ValueError(f"unknown derived feature kind {kind!r}")


ARITHMETIC = ("ratio", "difference", "log1p", "clip", "quantile_bins", "interaction")


def arithmetic(s: dict[str, Any], learned: Any, column) -> np.ndarray:
    """A derived feature of kind ARITHMETIC from its input columns' float64 values (`column(name)`)
    and what it learned at fit (`learned`: clip's quantiles, the bins' edges). The derive step and
    the serving plan (core.plan) both compute it here, so they compute it alike."""
    kind = s["kind"]
    if kind == "ratio":
        den = column(s["denominator"])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.where(den == 0, np.nan, column(s["numerator"]) / np.where(den == 0, 1, den))
    if kind == "difference":
        return column(s["left"]) - column(s["right"])
    if kind == "log1p":
        v = column(s["column"])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(v > -1, np.log1p(np.where(v > -1, v, 0)), np.nan)
    if kind == "clip":
        lower, upper = learned if learned is not None else (s.get("lower"), s.get("upper"))
        return np.clip(column(s["column"]), lower, upper)
    if kind == "quantile_bins":
        v = column(s["column"])
        return np.where(np.isnan(v), np.nan, np.searchsorted(learned, v, side="right"))
    if kind == "interaction":
        with np.errstate(over="ignore", invalid="ignore"):
            return np.prod([column(c) for c in s["columns"]], axis=0)
    raise ValueError(f"{kind!r} is not an arithmetic derived feature")


def arithmetic_inputs(s: dict[str, Any]) -> list[str]:
    """The columns an ARITHMETIC derived feature reads."""
    keys = {"ratio": ("numerator", "denominator"), "difference": ("left", "right")}.get(s["kind"], ("column",))
    return list(s["columns"]) if s["kind"] == "interaction" else [s[k] for k in keys]


LARGE = 1000  # rows from which a vectorized path beats a per-value one
FOLDS = 5  # target encoding's cross-fitting folds


def _folds(x: pd.DataFrame, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Target encoding's cross-fitting folds as (train, test) row indices, by row hash: a row's fold
    depends on its own values and the seed, never on its position or the labels, so a table held in
    partitions (training.distributed) puts each row in the fold it has in one process."""
    fold = hash_folds(x, seed)
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(FOLDS)]


def hash_folds(x: pd.DataFrame, seed: int) -> np.ndarray:
    """Each row's cross-fitting fold: a hash of its features salted with the seed."""
    from driftline.core.versions import row_keys, splitmix

    return (splitmix(row_keys(x, list(x.columns)), seed) % np.uint64(FOLDS)).astype(np.int64)


ISO_DATE = r"^\d{4}-\d{2}-\d{2}"  # ISO 8601 only: pandas would also read "now" and "today"


def when(col: pd.Series) -> pd.Series:
    """A datetime feature as UTC timestamps (naive times are UTC); anything but ISO 8601 text or
    a datetime is missing, never the clock of the machine that computes it."""
    if ptypes.is_datetime64_any_dtype(col):
        return pd.to_datetime(col, utc=True)
    text = col.astype("string")
    iso = text.str.match(ISO_DATE).fillna(False).astype(bool)
    if bool(iso[text.notna()].all()):
        fast = _with_offsets(text)
        if fast is not None:
            return fast
    return pd.to_datetime(text.where(iso), format="ISO8601", utc=True, errors="coerce")


def _with_offsets(text: pd.Series) -> pd.Series | None:
    """Arrow's C parser, for a column whose every value is ISO 8601 with its UTC offset, the form
    `frames.features` writes a training table's times in: about 13x pandas' ISO 8601 parser on
    160,000 rows, and the same instants (tested value by value). Arrow refuses a whole column for
    one value without an offset, a date alone, "now", or precision below a microsecond; pandas
    then reads it as before."""
    import pyarrow as pa

    try:
        parsed = pa.array(text, from_pandas=True).cast(pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return parsed.to_pandas().set_axis(text.index).rename(text.name)


def _part(t: pd.Series, part: str) -> np.ndarray:
    if part == "weekend":
        values = (t.dt.dayofweek >= 5).astype("float64").where(t.notna())
    else:
        values = getattr(t.dt, part)
    return values.to_numpy(dtype="float64", na_value=np.nan)


def derive_step(model) -> DerivedFeatures | None:
    """The fitted derive step of a trained model (a Pipeline, or one inside a threshold wrapper),
    or None when it computes no derived features."""
    inner = getattr(model, "estimator_", model)
    steps = getattr(inner, "named_steps", {})
    step = steps.get("derive") if hasattr(steps, "get") else None
    return step if isinstance(step, DerivedFeatures) else None


def datetime_inputs(model) -> frozenset[str]:
    """The raw columns a trained model reads as times (what its date kinds read)."""
    step = derive_step(model)
    specs = step.specs if step is not None else []
    return frozenset(c for s in specs if s["kind"] in ("date_part", "days_since")
                     for c in (s["column"], s.get("until")) if c)


def _num(col: pd.Series) -> np.ndarray:
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64")


MISSING = "__missing__"  # a missing category as a value of its own (the one-hot path imputes it too)


def category_values(col: pd.Series) -> np.ndarray:
    """A categorical column as the values the derived kinds learn on (missing as MISSING)."""
    return _categories(col).iloc[:, 0].to_numpy(dtype=object)


def _categories(col: pd.Series) -> pd.DataFrame:
    """One object column with every kind of missing (None from a DataFrame, NaN from JSON null
    in the server) as the same category: None and NaN are different dictionary keys."""
    return col.astype(object).where(col.notna(), MISSING).to_frame()


def from_params(p) -> DerivedFeatures:
    """The unfitted derive step for `data.derived` (training.seed salts target encoding's fold hash)."""
    target_type = "continuous" if p.data.task == "regression" else "binary"
    return DerivedFeatures(specs(p.data.derived), seed=p.training.seed, target_type=target_type)


def specs(derived) -> list[dict[str, Any]]:
    """The config entries as the plain dicts the transformer keeps; a function's with its source."""
    return [d.model_dump(mode="json") | ({"source": d._source} if d.kind == "custom" else {}) for d in derived]


def code_files(derived) -> list[str]:
    """The user modules the derived features run: logged beside the model (MLflow code_paths)."""
    return sorted({d._path for d in derived if d.kind == "custom" and d._path})
