"""A fit on a Dask cluster (training.distributed): the training part stays in its partitions,
its preprocessing is fitted from aggregations, XGBoost's Dask interface fits the booster on the
workers, and the booster goes into the same scikit-learn Pipeline every other fit registers.

`prepare` reads the training part once for what the Pipeline's steps learn: the derived
features' sums (`derived_sums`), each undeclared category column's values (the ordinal encoders
take the declared categories, else these, sorted as OrdinalEncoder sorts them), the classes, the
rows and the time range. The steps are then fitted on a small frame that holds every category
(the encoders learn nothing else, and numbers pass through). `model_inputs` turns a partition
into the estimator's float32 inputs where it lives; `fit` trains on them; `assemble` makes the
Pipeline.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer

from driftline.config import Params, names_by_type
from driftline.core import derived_sums, estimators, frames, training
from driftline.core.boosting import Rounds, into_estimator
from driftline.core.features import DerivedFeatures
from driftline.core.partition_validation import per_partition

LABEL, SLICE = "__label", "__stop_slice"  # columns of the inputs besides the features


@dataclass
class Facts:
    """What one pass over the training part says, merged over its partitions."""

    rows: int = 0
    classes: dict = field(default_factory=dict)  # label -> rows
    values: dict = field(default_factory=dict)  # categorical column -> set of values (missing: None)
    first: pd.Timestamp | None = None  # the time column's extremes
    last: pd.Timestamp | None = None


def _facts(part: pd.DataFrame, p: Params) -> Facts:
    x = frames.features(part, p.data)
    _, categorical = names_by_type(p.data.features)
    out = Facts(len(part))
    if p.data.task != "regression":
        out.classes = part[p.data.target].value_counts().to_dict()
    out.values = {c: set(x[c].tolist()) for c in categorical}
    if p.data.time_column and p.data.time_column in part and len(part):
        when = pd.to_datetime(part[p.data.time_column], utc=True, errors="coerce")
        out.first, out.last = when.min(), when.max()
    return out


def _merge(parts: list[Facts]) -> Facts:
    out = Facts()
    for f in parts:
        out.rows += f.rows
        for k, n in f.classes.items():
            out.classes[k] = out.classes.get(k, 0) + n
        for c, vs in f.values.items():
            out.values.setdefault(c, set()).update(vs)
        out.first = f.first if out.first is None or (f.first is not None and f.first < out.first) else out.first
        out.last = f.last if out.last is None or (f.last is not None and f.last > out.last) else out.last
    return out


@dataclass
class Prepared:
    """The fitted steps before the estimator, and what they were fitted from."""

    derive: DerivedFeatures | None
    preprocess: ColumnTransformer  # fitted
    sums: dict  # the training part's derived-feature sums (out-of-fold values of training rows)
    classes: list | None  # sorted labels (None for regression)
    facts: Facts
    warm: bool = False  # the champion's steps, reused as they are


def scan(train, p: Params, classes: list) -> tuple[Facts, dict]:
    """One read of the training part: its facts and its derived-feature sums."""
    import dask

    facts = per_partition(train, _facts, p)
    sums = per_partition(train, derived_sums.partition_sums, p, classes) if derived_sums.specs_learn(p) else None
    got = dask.compute(facts, *([sums] if sums is not None else []))
    return _merge(list(got[0])), (derived_sums.merge_sums(list(got[1])) if sums is not None else {})


def prepare(train, p: Params, classes: list) -> Prepared:
    facts, sums = scan(train, p, classes)
    labels = sorted(facts.classes) if p.data.task != "regression" else None
    if labels is not None and p.data.task == "binary" and len(labels) != 2:
        raise ValueError(f"a binary task needs two classes in the training rows, found {len(labels)}")
    pipeline = training.build_pipeline(p)
    derive = derived_sums.fitted(p, sums, labels or [], p.data.feature_names) if p.data.derived else None
    preprocess = pipeline.named_steps["preprocess"].fit(_every_category(p, facts))
    return Prepared(derive, preprocess, sums, labels, facts)


def _every_category(p: Params, facts: Facts) -> pd.DataFrame:
    """A frame holding every value each categorical column takes in the training part (missing
    too, where it is missing), numbers 0: what the ordinal encoders learn from is its values."""
    numeric, categorical = names_by_type(p.data.features)
    values = {c: sorted(facts.values.get(c, set()) - {None}) + ([None] if None in facts.values.get(c, ()) else [])
              for c in categorical}
    n = max([len(v) for v in values.values()] + [1])
    frame = {c: [0.0] * n for c in numeric}
    frame |= {c: [v[i % len(v)] if v else None for i in range(n)] for c, v in values.items()}
    frame |= {d.name: [0.0] * n for d in p.data.derived}
    names = [*p.data.feature_names, *(d.name for d in p.data.derived)]
    return pd.DataFrame({k: pd.Series(frame[k], dtype=object if k in categorical else "float64") for k in names})


def reuse(champion_model, p: Params, facts: Facts, classes: list) -> Prepared:
    """A warm start: the champion's fitted derive and preprocess steps, as they are."""
    inner = getattr(champion_model, "estimator_", champion_model)
    steps = inner.named_steps
    return Prepared(copy.deepcopy(steps.get("derive")), copy.deepcopy(steps["preprocess"]), {},
                    sorted(facts.classes) if p.data.task != "regression" else None, facts, warm=True)


def model_inputs(part: pd.DataFrame, prep: Prepared, p: Params, training_rows: bool) -> pd.DataFrame:
    """A partition as the estimator's inputs (float32, f0..fn), its label coded 0..k-1 (classes) and,
    for training rows, whether early stopping's hash-chosen slice holds the row."""
    x = frames.features(part, p.data)
    if prep.derive is not None:
        x = derived_sums.derive(prep.derive, prep.sums, x, training_rows and not prep.warm)
    values = np.asarray(prep.preprocess.transform(x), dtype="float32")
    out = pd.DataFrame(values, columns=[f"f{i}" for i in range(values.shape[1])], index=part.index)
    y = frames.target(part, p.data)
    out[LABEL] = np.searchsorted(np.asarray(prep.classes), y).astype("float32") if prep.classes else \
        y.astype("float32")
    stopping = estimators.cfg_stopping(p.training.estimator)
    out[SLICE] = training.hash_holdout(part, p.data.columns, training.stopping_salt(p.training.seed),
                                       stopping.validation_share) if stopping else False
    return out


def n_inputs(prep: Prepared) -> tuple[int, int]:
    """(categorical inputs, all inputs) of the preprocessing: the estimator's categories come first."""
    columns = prep.preprocess.transformers_
    n_cat = sum(len(c) for name, _, c in columns if name.startswith("cat"))
    return n_cat, sum(len(c) for name, _, c in columns if name != "remainder")


def unfitted(p: Params, prep: Prepared):
    n_cat, n_all = n_inputs(prep)
    return estimators.build(p.training.estimator, p.data.task, p.training.seed, None, n_cat, n_all)


def fit(client, inputs, p: Params, prep: Prepared, rounds: int, start=None, sink=None, timeout: int = 300):
    """The booster fitted on the workers' partitions of `inputs` (persisted there): `rounds` more
    rounds from `start` (a booster: a checkpoint or the champion's) or from nothing."""
    import xgboost.dask as dxgb
    from xgboost.collective import Config

    local = unfitted(p, prep)
    params = {k: v for k, v in local.get_params().items() if k not in ("early_stopping_rounds", "n_jobs", "callbacks")}
    params["n_estimators"] = rounds
    stopping = estimators.cfg_stopping(p.training.estimator)
    cls = dxgb.DaskXGBRegressor if p.data.task == "regression" else dxgb.DaskXGBClassifier
    model = cls(**params, callbacks=[Rounds(stopping.rounds if stopping else None,
                                            p.training.checkpoint_every, sink)],
                coll_cfg=Config(timeout=timeout))
    model.client = client
    features = [c for c in inputs.columns if c not in (LABEL, SLICE)]
    fit_rows = inputs[~inputs[SLICE]] if stopping else inputs
    eval_set = None
    if stopping:
        held = inputs[inputs[SLICE]]
        eval_set = [(held[features], held[LABEL])]
    model.fit(fit_rows[features], fit_rows[LABEL], eval_set=eval_set, verbose=False, xgb_model=start)
    return model.get_booster()


def assemble(p: Params, prep: Prepared, booster):
    """The registered model: derive, preprocess and the estimator holding the booster, in the
    Pipeline `training.build_pipeline` makes (wrapped at the decision threshold when binary)."""
    estimator = into_estimator(unfitted(p, prep), booster, prep.classes)
    steps = [*([("derive", prep.derive)] if prep.derive is not None else []), ("preprocess", prep.preprocess),
             ("model", estimator)]
    pipeline = training.build_pipeline(p)
    pipeline.steps = steps
    if p.data.task != "binary":
        return pipeline
    return training.at_decision_threshold(pipeline, np.asarray(prep.classes), p)
