"""Seeded split and training: an sklearn Pipeline with its preprocessing inside the model."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from driftline.config import Params, names_by_type
from driftline.core import evaluation, features, frames

MISSING_CATEGORY = features.MISSING  # what the one-hot path imputes for a missing category


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
    return Split(df[~holdout], df[holdout])


def hash_holdout(df: pd.DataFrame, columns: list[str], seed: int, test_size: float) -> np.ndarray:
    """True for the rows whose hash puts them in the holdout."""
    key = f"{seed:016d}"[-16:]
    buckets = pd.util.hash_pandas_object(_hashable(df, columns), index=False, hash_key=key).to_numpy() % 10_000
    return buckets < round(test_size * 10_000)


def split_spec(p: Params, parts: Split) -> dict:
    """What decided each row's side, saved with the model so that a later challenger can tell
    which of its holdout rows this model never trained on."""
    spec = {"method": p.split.method, "test_size": p.split.test_size, "seed": p.split.seed}
    if p.split.method == "time":
        spec["time_column"] = p.data.time_column
        spec["train_until"] = pd.to_datetime(parts.train[p.data.time_column], utc=True).max().isoformat()
    else:
        spec["columns"] = list(p.data.columns)
    return spec


def unseen_by(df: pd.DataFrame, spec: dict) -> np.ndarray | None:
    """Rows of `df` that a model split by `spec` did not train on, or None when that cannot be
    told (the columns it hashed are gone, or the spec is unknown)."""
    if spec.get("method") == "time" and spec.get("time_column") in df.columns and spec.get("train_until"):
        when = pd.to_datetime(df[spec["time_column"]], utc=True)
        return (when > pd.Timestamp(spec["train_until"])).to_numpy()
    if spec.get("method") == "hash" and spec.get("columns") and set(spec["columns"]) <= set(df.columns):
        return hash_holdout(df, spec["columns"], spec["seed"], spec["test_size"])
    return None


def _hashable(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
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
            col = col.astype("string")
        out[name] = col
    return pd.DataFrame(out, index=df.index)


def build_pipeline(p: Params) -> Pipeline:
    """Derived features (when `data.derived` has any), preprocessing and the estimator, in one
    Pipeline: the registered model computes everything from the raw features a client sends."""
    core = _model_pipeline(p)
    if not p.data.derived:
        return core
    return Pipeline([("derive", features.from_params(p)), *core.steps])


def _model_pipeline(p: Params) -> Pipeline:
    data, est = p.data, p.training.estimator
    numeric, categorical = names_by_type(data.features)
    numeric = [*numeric, *(d.name for d in data.derived)]  # every derived feature is a number
    seed = p.training.seed
    classify = data.task != "regression"

    if est.kind == "hist_gradient_boosting":
        # Trees need no scaling and handle NaN; categories become native categorical splits.
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                 encoded_missing_value=np.nan)
        pre = ColumnTransformer([("cat", encoder, categorical), ("num", "passthrough", numeric)],
                                verbose_feature_names_out=False)
        kwargs = dict(max_iter=est.max_iter, learning_rate=est.learning_rate,
                      max_leaf_nodes=est.max_leaf_nodes, max_depth=est.max_depth,
                      min_samples_leaf=est.min_samples_leaf, l2_regularization=est.l2_regularization,
                      categorical_features=list(range(len(categorical))) or None,
                      early_stopping=False, random_state=seed)
        model = HistGradientBoostingClassifier(**kwargs) if classify else HistGradientBoostingRegressor(**kwargs)
        return Pipeline([("preprocess", pre), ("model", model)])

    scale = est.kind in {"logistic_regression", "ridge"}
    num_steps = [SimpleImputer(strategy="median", add_indicator=True)]
    if scale:
        num_steps.append(StandardScaler())
    cat_pipe = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY),
        OneHotEncoder(handle_unknown="ignore", min_frequency=20, sparse_output=False),
    )
    pre = ColumnTransformer([("num", make_pipeline(*num_steps), numeric), ("cat", cat_pipe, categorical)],
                            verbose_feature_names_out=False)
    if est.kind == "random_forest":
        kwargs = dict(n_estimators=est.n_estimators, max_depth=est.max_depth,
                      min_samples_leaf=est.min_samples_leaf, max_features=est.max_features,
                      n_jobs=p.training.n_jobs, random_state=seed)
        model = RandomForestClassifier(**kwargs) if classify else RandomForestRegressor(**kwargs)
    elif est.kind == "logistic_regression":
        model = LogisticRegression(C=est.C, max_iter=est.max_iter, random_state=seed)
    else:
        model = Ridge(alpha=est.alpha, random_state=seed)
    return Pipeline([("preprocess", pre), ("model", model)])


def train(train_df: pd.DataFrame, p: Params) -> Pipeline | FixedThresholdClassifier:
    """The fitted model. A binary one is wrapped in a `FixedThresholdClassifier`, so the decision
    threshold it was gated with travels with it: `model.predict` in serving decides at
    `evaluation.decision_threshold` for `data.positive_class`. Multiclass and regression models
    are the bare Pipeline."""
    x, y = frames.features(train_df, p.data), frames.target(train_df, p.data)
    pipeline = build_pipeline(p)
    if p.data.task != "binary":
        return pipeline.fit(x, y)
    classes = np.unique(y)
    if len(classes) != 2:
        raise ValueError(f"a binary task needs two classes in the training rows, found {len(classes)}")
    pos_label = classes[evaluation.positive_index(classes, p)]
    pos_label = pos_label.item() if isinstance(pos_label, np.generic) else pos_label  # plain int/str
    model = FixedThresholdClassifier(pipeline, threshold=p.evaluation.decision_threshold,
                                     response_method="predict_proba", pos_label=pos_label)
    return model.fit(x, y)


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
