"""What is wrong with `training.estimator`, told before any work: keys driftline owns, a key given
twice, a class or library that cannot be used, parameters the real class does not have, and the
search space's names and values. Read by `config/checks.py`; nothing is fitted and no project
code runs (a factory is checked by `config.load`, from its source)."""

from __future__ import annotations

from driftline.config.estimators import SEED_KEYS, STOPPING_KEYS, THREAD_KEYS
from driftline.core.estimators import EstimatorError, class_for, instantiable, kind_of, parameter_names

KEY = "training.estimator"


def problems(cfg, task: str) -> list[str]:
    """What is wrong with `training.estimator` for `task`, each line naming its dotted key: keys
    driftline owns, a key given twice, a class or library that cannot be used, unknown parameters.
    Nothing is fitted and no project code runs (a factory is checked by `config.load`)."""
    kind = kind_of(cfg)
    found = []
    for name in cfg.params:
        owner = ("driftline sets the seed from training.seed" if name in SEED_KEYS else
                 "threads come from training.n_jobs" if name in THREAD_KEYS else
                 "early stopping is the early_stopping key (rounds, validation_share)" if name in STOPPING_KEYS
                 else None)
        if owner:
            found.append(f"{KEY}.params.{name}: {owner}; remove it")
    found += [f"{KEY}.params.{name}: given both as {KEY}.{name} and under params; keep one"
              for name in sorted(cfg.model_fields_set & set(cfg.params))]
    if kind.name == "custom":
        return found
    try:
        cls = class_for(cfg, task)
    except EstimatorError as err:
        return [*found, f"{KEY}.{'class' if kind.name == 'sklearn' else 'kind'}: {err}"]
    if cls is None:
        other = next((k for k in ("logistic_regression", "ridge") if k != kind.name), "")
        return [*found, f"{KEY}.kind: {kind.name} cannot do {task}" + (f"; use {other}" if other else "")]
    if kind.name == "sklearn":
        found += _task_mismatch(cls, task)
    names = parameter_names(cfg, cls)
    owned = set(SEED_KEYS) | set(THREAD_KEYS)
    for name in sorted(set(cfg.params) - names - owned - set(STOPPING_KEYS)):
        valid = ", ".join(sorted(names - owned))
        found.append(f"{KEY}.params.{name}: {cls.__name__} has no parameter {name!r} (valid: {valid})")
    return found


def _task_mismatch(cls: type, task: str) -> list[str]:
    from sklearn.base import is_classifier, is_regressor

    try:
        instance = cls()
    except TypeError:  # required arguments: the fit will say
        return []
    wanted, ok = ("a regressor", is_regressor(instance)) if task == "regression" else \
        ("a classifier", is_classifier(instance))
    return [] if ok else [f"{KEY}.class: {cls.__module__}.{cls.__name__} is not {wanted}, which a {task} task needs"]


def searchable(cfg, task: str) -> tuple[list[str], set[str]] | None:
    """The parameters a search may set beside the flat keys: (the class's own names, shown in an
    error; every name it accepts). None when that cannot be told without running project code
    (a factory: config.load checks its signature)."""
    if kind_of(cfg).name == "custom":
        return None
    try:
        cls = class_for(cfg, task)
    except EstimatorError:
        return None  # already reported by problems()
    if cls is None:
        return None
    owned = set(SEED_KEYS) | set(THREAD_KEYS)
    own = set(cls().get_params(deep=False)) if instantiable(cls) else set(parameter_names(cfg, cls))
    return sorted(own - owned), parameter_names(cfg, cls) - owned


def refused(cfg, task: str, name: str, value) -> str | None:
    """Why the class refuses `value` for `name`, for classes that check their parameters without
    fitting (scikit-learn's own); None when accepted or when the class cannot tell before a fit."""
    cls = class_for(cfg, task) if kind_of(cfg).name != "custom" else None
    if cls is None or not hasattr(cls, "_validate_params") or not hasattr(cls, "_parameter_constraints"):
        return None
    try:
        cls(**{**cfg.estimator_params(), name: value})._validate_params()
    except (ValueError, TypeError) as err:
        return str(err).splitlines()[0]
    return None
