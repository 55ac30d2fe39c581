"""Seeded split and training: an sklearn Pipeline with its preprocessing inside the model."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from driftline.config import Params, names_by_type
from driftline.core import estimators, evaluation, features, frames, versions
from driftline.core.categories import AsText, CategoryCodes

MISSING_CATEGORY = features.MISSING  # what the one-hot path of models before AsText imputed


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame


def split(df: pd.DataFrame, p: Params) -> Split:
    """A holdout that does not move when the data grows or the training seed changes.

    Comparing a challenger with the champion is only fair on rows neither trained on. A
    seeded shuffle would put some of the champion's training rows into a new holdout (and
    flatter the champion); hashing each row keeps every row on one side for good.
    """
    cfg = p.split
    if cfg.method == "time":
        # Sort by the parsed time, not the raw column: CSV dates such as 03/15/2024 are text.
        when = pd.to_datetime(df[p.data.time_column], utc=True).reset_index(drop=True)
        order = df.iloc[when.sort_values(kind="stable").index.to_numpy()]
        cut = round(len(order) * (1 - cfg.test_size))
        return Split(order.iloc[:cut], order.iloc[cut:])
    holdout = hash_holdout(df, p.data.columns, cfg.seed, cfg.test_size)
    keys = versions.near_keys(df, versions.identity_columns(p), p.validation.near_duplicate_digits)
    together = pd.Series(keys).duplicated(keep=False).to_numpy()
    if together.any():  # near-copies go to one side together, by their shared key; other rows stay put
        holdout[together] = key_side(keys[together], cfg.seed, cfg.test_size)
    return Split(df[~holdout], df[holdout])


def _near(p: Params) -> dict:
    return {"columns": versions.identity_columns(p), "digits": p.validation.near_duplicate_digits}


def key_side(keys: np.ndarray, seed: int, test_size: float) -> np.ndarray:
    """True where a near-duplicate key puts its rows in the holdout: a function of the rows' rounded
    values alone, so every copy lands on the same side, in any data version."""
    return pd.util.hash_array(keys, hash_key=f"{seed:016d}"[-16:]) % 10_000 < round(test_size * 10_000)


def hash_holdout(df: pd.DataFrame, columns: list[str], seed: int, test_size: float) -> np.ndarray:
    """True for the rows whose hash puts them in the holdout."""
    key = f"{seed:016d}"[-16:]
    buckets = pd.util.hash_pandas_object(hashable(df, columns), index=False, hash_key=key).to_numpy() % 10_000
    return buckets < round(test_size * 10_000)


def split_spec(p: Params, parts: Split) -> dict:
    """What decided each row's side, saved with the model so that a later challenger can tell
    which of its holdout rows this model never trained on."""
    spec: dict[str, Any] = {"method": p.split.method, "test_size": p.split.test_size, "seed": p.split.seed}
    if p.split.method == "time":
        spec["time_column"] = p.data.time_column
        spec["train_until"] = pd.to_datetime(parts.train[p.data.time_column], utc=True).max().isoformat()
    else:
        spec["columns"] = list(p.data.columns)
        spec["near_duplicates"] = _near(p)
    return spec


def unseen_by(df: pd.DataFrame, spec: dict, keys: np.ndarray | None = None) -> np.ndarray | None:
    """Rows of `df` that a model split by `spec` did not train on, or None when that cannot be
    told (the columns it hashed are gone, or the spec is unknown). `keys`: the rows' near-duplicate
    keys by the spec's columns and digits, when the caller has them already."""
    if spec.get("method") == "time" and spec.get("time_column") in df.columns and spec.get("train_until"):
        when = pd.to_datetime(df[spec["time_column"]], utc=True)
        return (when > pd.Timestamp(spec["train_until"])).to_numpy()
    if spec.get("method") == "hash" and spec.get("columns") and set(spec["columns"]) <= set(df.columns):
        unseen = hash_holdout(df, spec["columns"], spec["seed"], spec["test_size"])
        near = spec.get("near_duplicates")
        if near and set(near["columns"]) <= set(df.columns):
            # Near-copies here sat together on their key's side (if the model's split grouped them):
            # such a row counts as unseen only where its own hash and its key's both say holdout.
            keys = versions.near_keys(df, near["columns"], near["digits"]) if keys is None else keys
            together = pd.Series(keys).duplicated(keep=False).to_numpy()
            unseen[together] &= key_side(keys[together], spec["seed"], spec["test_size"])
        return unseen
    return None


def hashable(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The given columns in that order, one dtype per kind, so that a row hashes the same
    when a new data version reorders columns, adds one, or stores it differently (an int column
    turns float when one value goes missing; CSV gives object where Parquet gives string)."""
    out = {}
    for name in columns:
        col = df[name]
        if ptypes.is_datetime64_any_dtype(col):
            col = col.dt.as_unit("ns")
        elif ptypes.is_numeric_dtype(col) and not ptypes.is_bool_dtype(col):
            col = col.astype("float64")
        else:
            col = _as_text(col)
        out[name] = col
    return pd.DataFrame(out, index=df.index)


def _as_text(col: pd.Series) -> pd.Series:
    """The column as text for hashing: a Categorical over its distinct values, which pandas hashes
    exactly as the strings themselves (the hash of a category is the hash of its value), 5x
    faster on a million rows than turning every value into a string. Values other than strings
    (an object column mixing 1 and True, which compare equal) take the plain way."""
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    if col.dtype == object and not all(isinstance(u, str) for u in uniques):
        return col.astype("string")
    categories = pd.Index(list(uniques), dtype=object)
    return pd.Series(pd.Categorical.from_codes(codes, categories=categories), index=col.index)


def build_pipeline(p: Params) -> Pipeline:
    """Derived features (when `data.derived` has any), preprocessing and the estimator, in one
    Pipeline: the registered model computes everything from the raw features a client sends."""
    core = _model_pipeline(p)
    if not p.data.derived:
        return core
    return Pipeline([("derive", features.from_params(p)), *core.steps])


def _model_pipeline(p: Params) -> Pipeline:
    """Preprocessing for the estimator's kind (`estimators.inputs`), then the estimator."""
    est = p.training.estimator
    numeric, categorical = names_by_type(p.data.features)
    numeric = [*numeric, *(d.name for d in p.data.derived)]  # every derived feature is a number
    style = estimators.inputs(est)
    n_categorical = len(categorical) if style == "ordinal" else 0
    model = estimators.build(est, p.data.task, p.training.seed, p.training.n_jobs, n_categorical,
                             len(categorical) + len(numeric))
    if style == "none":
        return Pipeline([("model", model)])
    return Pipeline([("preprocess", _preprocessing(p, style, numeric, categorical)), ("model", model)])


def _preprocessing(p: Params, style: str, numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    if style == "ordinal":
        # Trees need no scaling and take NaN; categories become codes (unknown: NaN; missing: NaN where
        # declared, else a code of its own, as learned from the training part), which
        # the estimator splits on natively. The categorical columns come first: estimators.Kind.categorical
        # marks the first n inputs.
        return ColumnTransformer([*_ordinal(p, categorical), ("num", "passthrough", numeric)],
                                 verbose_feature_names_out=False)
    num_steps = [SimpleImputer(strategy="median", add_indicator=True)]
    if style == "scaled_one_hot":
        num_steps.append(StandardScaler())
    # A missing category is None, a category of its own, whatever the caller's frame held (AsText);
    # the imputer of models before it imputed NaN only, which driftline's frames never held.
    cat_pipe = make_pipeline(AsText(), OneHotEncoder(handle_unknown="ignore", min_frequency=20, sparse_output=False))
    return ColumnTransformer([("num", make_pipeline(*num_steps), numeric), ("cat", cat_pipe, categorical)],
                             verbose_feature_names_out=False)


def _ordinal(p: Params, categorical: list[str]) -> list[tuple]:
    """Ordinal encoders: the categories `data.features` declares, in that order, so a code means the
    same category whatever a data version holds (learned from the training part where undeclared,
    and for hist_gradient_boosting, as before there were other kinds)."""
    def encoder(categories="auto"):
        return CategoryCodes(categories=categories, handle_unknown="use_encoded_value", unknown_value=np.nan,
                             encoded_missing_value=np.nan)
    if not estimators.kind_of(p.training.estimator).declared_categories:
        return [("cat", encoder(), categorical)]
    declared = {f.name: f.categories for f in p.data.features if f.name in categorical and f.categories}
    out = []
    for name in categorical:  # one encoder per column keeps the columns in config order
        out.append((f"cat_{name}", encoder([list(declared[name])] if name in declared else "auto"), [name]))
    return out


def train(train_df: pd.DataFrame, p: Params) -> Pipeline | FixedThresholdClassifier:
    """The fitted model. A binary one is wrapped in a `FixedThresholdClassifier`, so the decision
    threshold it was gated with travels with it: `model.predict` in serving decides at
    `evaluation.decision_threshold` for `data.positive_class`. Multiclass and regression models
    are the bare Pipeline. An estimator that cannot be built or fitted raises EstimatorError."""
    x, y = frames.features(train_df, p.data), frames.target(train_df, p.data)
    if p.data.task != "binary":
        return _fit(build_pipeline(p), x, y, train_df, p)
    classes = np.unique(y)
    if len(classes) != 2:
        raise ValueError(f"a binary task needs two classes in the training rows, found {len(classes)}")
    return at_decision_threshold(_fit(build_pipeline(p), x, y, train_df, p), classes, p)


def at_decision_threshold(fitted: Pipeline, classes, p: Params) -> FixedThresholdClassifier:
    """A fitted binary pipeline wrapped to decide at `evaluation.decision_threshold` for the positive
    class: what FixedThresholdClassifier.fit leaves, from the pipeline fitted elsewhere (early
    stopping needs the estimator's own fit arguments, which the wrapper's fit cannot route without
    metadata routing; a distributed fit fits on a cluster)."""
    pos_label = classes[evaluation.positive_index(classes, p)]
    pos_label = pos_label.item() if isinstance(pos_label, np.generic) else pos_label  # plain int/str
    model = FixedThresholdClassifier(build_pipeline(p), threshold=p.evaluation.decision_threshold,
                                     response_method="predict_proba", pos_label=pos_label)
    model.estimator_ = fitted
    for name in ("n_features_in_", "feature_names_in_"):
        if hasattr(model.estimator_, name):
            setattr(model, name, getattr(model.estimator_, name))
    return model


def _fit(pipeline: Pipeline, x: pd.DataFrame, y: np.ndarray, train_df: pd.DataFrame, p: Params) -> Pipeline:
    """Fit the pipeline's transformers, then its estimator with its kind's fit arguments; with
    early stopping, on all but a hash-chosen validation slice of the training part, which decides
    when to stop (the holdout is never read)."""
    from threadpoolctl import threadpool_limits

    est, n_jobs = p.training.estimator, p.training.n_jobs
    kind = estimators.kind_of(est)
    limits = threadpool_limits(limits=n_jobs) if n_jobs else contextlib.nullcontext()
    with limits:
        xt = x
        for _, step in pipeline.steps[:-1]:
            xt = step.fit_transform(xt, y)
        model = pipeline.steps[-1][1]
        columns = getattr(pipeline.named_steps.get("preprocess"), "transformers", [])
        n_categorical = sum(len(c) for name, _, c in columns if name.startswith("cat"))
        arguments = estimators.fit_arguments(est, n_categorical if estimators.inputs(est) == "ordinal" else 0,
                                             sum(len(c) for _, _, c in columns))
        stopping = estimators.cfg_stopping(est)
        try:
            if stopping is None:
                model.fit(xt, y, **arguments)
            else:
                val = hash_holdout(train_df, p.data.columns, _salt(p.training.seed), stopping.validation_share)
                if not 0 < val.sum() < len(val):
                    raise ValueError(f"the early-stopping slice holds {val.sum()} of {len(val)} training rows")
                arguments |= estimators.stopping_arguments(est, _rows(xt, val), y[val])
                model.fit(_rows(xt, ~val), y[~val], **arguments)
        except Exception as err:
            raise estimators.EstimatorError(f"{kind.name}: fitting {type(model).__name__} failed: "
                                            f"{type(err).__name__}: {err}") from err
    return pipeline


def stopping_salt(seed: int) -> int:
    return _salt(seed)


def _salt(seed: int) -> int:
    """The validation slice's hash salt: training.seed, moved away from split.seed's usual values
    (equal salts would put every training row outside the slice, as they are outside the holdout)."""
    return seed * 7919 + 104_729


def _rows(x, mask: np.ndarray):
    return x.iloc[mask] if hasattr(x, "iloc") else x[mask]


def code_files(p: Params) -> list[str]:
    """The project's modules the model runs (custom derived features, a custom estimator's factory):
    logged beside it (MLflow code_paths); the model carries their code itself."""
    est = p.training.estimator
    return sorted({*features.code_files(p.data.derived), *([est._path] if est.kind == "custom" and est._path else [])})


def at_threshold(model, p: Params):
    """The model deciding at `evaluation.decision_threshold`. Training is cached without the
    evaluation section (a threshold change must not refit), so a cached binary model may carry
    another threshold: a copy is re-pointed, the fitted pipeline inside is shared, not refitted."""
    if not isinstance(model, FixedThresholdClassifier) or model.threshold == p.evaluation.decision_threshold:
        return model
    return copy.copy(model).set_params(threshold=p.evaluation.decision_threshold)


def known_categories(model) -> dict[str, set]:
    """The categories each categorical input was fitted on, read from the pipeline's encoders
    (empty when the model has none, e.g. a model not built by `build_pipeline`)."""
    inner = getattr(model, "estimator_", model)  # the fitted pipeline inside a FixedThresholdClassifier
    pre = getattr(inner, "named_steps", {}).get("preprocess")
    known: dict[str, set] = {}
    for _, transformer, columns in getattr(pre, "transformers_", []):
        steps = getattr(transformer, "steps", None)
        encoder = steps[-1][1] if steps else transformer
        if not hasattr(encoder, "categories_"):
            continue
        for column, cats in zip(columns, encoder.categories_, strict=True):
            known[column] = {c for c in cats.tolist() if isinstance(c, str) and c != MISSING_CATEGORY}
    return known
