"""Estimator kinds: the one place that says, per kind, which class it builds for a task, how it
is seeded and threaded, how it takes categories and missing values, how it stops early, and
what it needs installed. Training, the search, the checks at load, pictures and the card read
it; adding a kind touches this registry and nothing else.

The registered model is always the same sklearn Pipeline (derived features, preprocessing, the
estimator last, in a threshold wrapper for a binary task); a kind only decides what goes last
and what the preprocessing hands it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from driftline.config.estimators import SEED_KEYS, THREAD_KEYS
from driftline.core import user_code


class EstimatorError(ValueError):
    """An estimator that cannot be built or fitted; the message names the kind and the cause."""


@dataclass(frozen=True)
class Kind:
    name: str
    classifier: str | None  # "module:Class"; None: this kind cannot do classification
    regressor: str | None
    inputs: str  # ordinal | one_hot | scaled_one_hot | chosen (the config's `preprocessing`)
    package: str = "scikit-learn"  # what to install when its library is missing
    early_stops: bool = False
    declared_categories: bool = True  # ordinal codes follow data.features' categories where declared
    fixed: dict[str, Any] = field(default_factory=dict)  # driftline's settings; `params` override them
    # Constructor and fit arguments that mark the first n of the inputs as categories:
    # (n, inputs) -> (init, fit).
    categorical: Callable[[int, int], tuple[dict, dict]] = lambda n, inputs: ({}, {})
    # Constructor and fit arguments of early stopping: (rounds, x_val, y_val) -> (init, fit).
    stopping: Callable[[int, Any, Any], tuple[dict, dict]] | None = None
    extra_names: Callable[[], set[str]] = set  # parameters accepted beyond the class's get_params()
    threaded: bool = True  # False: its thread parameter does nothing (LogisticRegression's, since sklearn 1.8)
    # A fit on a Dask cluster (training.distributed), with checkpoints and warm starts: its library's own
    # distributed interface, whose fitted model goes into this kind's Pipeline (driftline/core/boosting.py).
    distributed: bool = False
    # Its fastest predict on a NumPy array, "module:function" (core.fast_predict): (fitted, is a
    # classifier) -> FastPath. None: the serving plan calls the Pipeline itself.
    fast: str | None = None


def _xgb_stopping(rounds, x_val, y_val):
    return {"early_stopping_rounds": rounds}, {"eval_set": [(x_val, y_val)], "verbose": False}


def _lgb_stopping(rounds, x_val, y_val):
    import lightgbm

    return {}, {"eval_X": (x_val,), "eval_y": (y_val,), "callbacks": [lightgbm.early_stopping(rounds, verbose=False)]}


def _lgb_names() -> set[str]:
    """LightGBM also takes its native parameter names and their aliases (min_data_in_leaf, ...)."""
    from lightgbm.basic import _ConfigAliases

    aliases = _ConfigAliases._get_all_param_aliases()
    return set(aliases) | {a for names in aliases.values() for a in names}


SK = "sklearn.ensemble"
FAST = __name__.rpartition(".")[0] + ".fast_predict"  # core.fast_predict, beside this module
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("hist_gradient_boosting", f"{SK}:HistGradientBoostingClassifier", f"{SK}:HistGradientBoostingRegressor",
         "ordinal", early_stops=True, declared_categories=False, fixed={"early_stopping": False},
         categorical=lambda n, inputs: ({"categorical_features": list(range(n)) or None}, {}),
         stopping=lambda rounds, x, y: ({"early_stopping": True, "n_iter_no_change": rounds},
                                        {"X_val": x, "y_val": y}), fast=f"{FAST}:hist_gradient_boosting"),
    Kind("random_forest", f"{SK}:RandomForestClassifier", f"{SK}:RandomForestRegressor", "one_hot"),
    Kind("logistic_regression", "sklearn.linear_model:LogisticRegression", None, "scaled_one_hot", threaded=False),
    Kind("ridge", None, "sklearn.linear_model:Ridge", "scaled_one_hot"),
    # XGBoost's classifier wants the classes as 0..k-1: xgb_labels.XGBClassifier takes any labels.
    Kind("xgboost", "driftline.core.xgb_labels:XGBClassifier", "xgboost:XGBRegressor", "ordinal", package="xgboost-cpu",
         early_stops=True, fixed={"tree_method": "hist"}, distributed=True,
         categorical=lambda n, inputs: ({"enable_categorical": True,
                                         "feature_types": ["c"] * n + ["q"] * (inputs - n) if n else None}, {}),
         stopping=_xgb_stopping, fast=f"{FAST}:xgboost"),
    # deterministic + force_row_wise: the same model bit for bit from the same data, seed and threads.
    Kind("lightgbm", "lightgbm:LGBMClassifier", "lightgbm:LGBMRegressor", "ordinal", package="lightgbm",
         early_stops=True, fixed={"deterministic": True, "force_row_wise": True, "verbose": -1},
         categorical=lambda n, inputs: ({}, {"categorical_feature": list(range(n))} if n else {}),
         stopping=_lgb_stopping, extra_names=_lgb_names, fast=f"{FAST}:lightgbm"),
    Kind("sklearn", None, None, "chosen"),
    Kind("custom", None, None, "chosen"),
)}


def distributed_kinds() -> list[str]:
    """The kinds with a fit on a Dask cluster."""
    return [name for name, kind in KINDS.items() if kind.distributed]


def kind_of(cfg) -> Kind:
    return KINDS[cfg.kind]


def of_estimator(estimator) -> Kind | None:
    """The kind whose class (for either task) is exactly the fitted estimator's class: a subclass
    may predict otherwise. Only modules already imported are looked at (a fitted estimator's own is)."""
    import sys

    cls = type(estimator)
    for kind in KINDS.values():
        for path in (kind.classifier, kind.regressor):
            module, _, attribute = (path or "").partition(":")
            if getattr(sys.modules.get(module), attribute, None) is cls:
                return kind
    return None


def fast_path(estimator, classification: bool):
    """The fitted estimator's kind's fastest predict on a NumPy array (a core.fast_predict.FastPath),
    or None when its kind has none (the Pipeline is then called itself). A kind's fast path may
    refuse a fitted estimator it cannot call (core.fast_predict.NoFastPath, saying why)."""
    kind = of_estimator(estimator)
    if kind is None or kind.fast is None:
        return None
    module, _, attribute = kind.fast.partition(":")
    return getattr(importlib.import_module(module), attribute)(estimator, classification)


def inputs(cfg) -> str:
    """What the preprocessing hands the estimator: ordinal, one_hot, scaled_one_hot or none."""
    kind = kind_of(cfg)
    if kind.inputs != "chosen":
        return kind.inputs
    return {"one_hot": "scaled_one_hot"}.get(cfg.preprocessing, cfg.preprocessing)


def class_for(cfg, task: str) -> type | None:
    """The estimator class of a kind for a task (None for a factory, or a kind that cannot do it).
    An `sklearn` class is checked to be a scikit-learn estimator before it is ever instantiated."""
    kind = kind_of(cfg)
    if kind.name == "custom":
        return None
    if kind.name == "sklearn":
        return installed_class(cfg.class_)
    path = kind.regressor if task == "regression" else kind.classifier
    if path is None:
        return None
    module, _, attribute = path.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except ImportError as err:
        raise EstimatorError(f"{kind.name} needs the package {kind.package}, which is not installed "
                             f"({err}); install it (uv add {kind.package})") from None


def installed_class(path: str) -> type:
    """`module.Class` from an installed package (not the project: project code is `custom`), and a
    subclass of scikit-learn's BaseEstimator."""
    import importlib.util
    import sysconfig
    from pathlib import Path

    from sklearn.base import BaseEstimator

    module, _, attribute = path.rpartition(".")
    top = module.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None:
        raise EstimatorError(f"no installed package {top!r} (for {path})")
    where = [Path(p).resolve() for p in (spec.submodule_search_locations or [spec.origin or ""]) if p]
    roots = [Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib", "stdlib")]
    if not where or not all(any(w.is_relative_to(r) for r in roots) for w in where):
        raise EstimatorError(f"{top!r} is not an installed package ({where[0] if where else '?'}); "
                             "code of the project is used with kind: custom and a factory")
    try:
        cls = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as err:
        raise EstimatorError(f"cannot import {path}: {err}") from None
    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        raise EstimatorError(f"{path} is not a scikit-learn estimator class (a subclass of "
                             "sklearn.base.BaseEstimator)")
    return cls


def parameter_names(cfg, cls: Any) -> set[str]:
    """What the class takes, from its own get_params() (XGBoost's and LightGBM's sklearn classes
    add their parameters there, not to their signature)."""
    try:
        names = set(cls().get_params(deep=False))
    except TypeError:  # a class with required arguments: its signature still names them
        names = set(cls._get_param_names())
    return names | kind_of(cfg).extra_names()


def build(cfg, task: str, seed: int, n_jobs: int | None, n_categorical: int, n_inputs: int):
    """The unfitted estimator: the kind's settings, the user's params over them, then the seed,
    the threads, the categories and early stopping, which driftline owns."""
    kind = kind_of(cfg)
    if kind.name == "custom":
        return _from_factory(cfg, seed, n_jobs)
    cls = class_for(cfg, task)
    if cls is None:
        raise EstimatorError(f"{kind.name} cannot do {task}")
    owned, _ = kind.categorical(n_categorical, n_inputs)
    if cfg_stopping(cfg) is not None:
        owned = {**owned, **kind.stopping(cfg_stopping(cfg).rounds, None, None)[0]}
    try:
        estimator = cls(**{**kind.fixed, **cfg.estimator_params(), **owned})
    except Exception as err:  # noqa: BLE001 - a class refusing its arguments: said in one sentence
        raise EstimatorError(f"{kind.name} ({cls.__name__}) refused its parameters: {type(err).__name__}: {err}") \
            from None
    return seeded(estimator, seed, n_jobs if kind.threaded else None)


def cfg_stopping(cfg):
    return getattr(cfg, "early_stopping", None)


def fit_arguments(cfg, n_categorical: int, n_inputs: int) -> dict:
    return kind_of(cfg).categorical(n_categorical, n_inputs)[1]


def stopping_arguments(cfg, x_val, y_val) -> dict:
    return kind_of(cfg).stopping(cfg_stopping(cfg).rounds, x_val, y_val)[1]


def seeded(estimator, seed: int, n_jobs: int | None):
    """Every seed parameter (nested ones too: a team's Pipeline) set to `seed`, and every thread
    parameter to `n_jobs` when it is set."""
    names = estimator.get_params(deep=True)
    wanted = {name: seed for name in names if name.rsplit("__", 1)[-1] in SEED_KEYS}
    if n_jobs is not None:
        wanted |= {name: n_jobs for name in names if name.rsplit("__", 1)[-1] in THREAD_KEYS}
    return estimator.set_params(**wanted) if wanted else estimator


def _from_factory(cfg, seed: int, n_jobs: int | None):
    if not cfg._source:
        raise EstimatorError(f"custom: the source of {cfg.factory} was not read (params are loaded by "
                             "driftline.config.load_params, which reads it)")
    try:
        factory = user_code.function(cfg._source, cfg.module, cfg.attribute)
        estimator = factory(**cfg.params)
    except Exception as err:  # noqa: BLE001 - the team's code: its failure said in one sentence
        raise EstimatorError(f"custom: the factory {cfg.factory} raised {type(err).__name__}: {err}") from None
    missing = [m for m in ("fit", "predict", "get_params", "set_params") if not callable(getattr(estimator, m, None))]
    if missing:
        raise EstimatorError(f"custom: the factory {cfg.factory} returned a {type(estimator).__name__}, which has no "
                             f"{', '.join(missing)}: it must return an unfitted scikit-learn-compatible estimator")
    return seeded(estimator, seed, n_jobs)


def rounds_used(estimator) -> int | None:
    """The boosting rounds an early-stopped model predicts with (None when it did not stop early)."""
    best = getattr(estimator, "best_iteration_", None)  # LightGBM: a count
    if best:
        return int(best)
    best = getattr(estimator, "best_iteration", None)  # XGBoost: an index
    if best is not None and getattr(estimator, "early_stopping_rounds", None):
        return int(best) + 1
    if getattr(estimator, "early_stopping", None) is True:  # HistGradientBoosting keeps every round it ran
        return int(estimator.n_iter_)
    return None


def instantiable(cls: type) -> bool:
    """Whether the class can be made without arguments (to read its parameters and kind)."""
    try:
        cls()
    except TypeError:
        return False
    return True
