"""Checks across sections of `params.yaml`: every problem at once, one line each, each naming its dotted key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.core.metrics import metrics_for

if TYPE_CHECKING:
    from driftline.config.params import Params


def problems(p: Params) -> list[str]:
    """Every cross-field problem of `p`, each line starting with the dotted key it is about."""
    found = [*_metrics(p), *_estimator(p), *_fairness(p), *_behavioral(p), *_derived(p), *_search(p),
             *_distributed(p)]
    known = {*p.data.feature_names, *(d.name for d in p.data.derived), "prediction"}
    found += [f"monitoring.drift_columns: {c!r} is not a feature, a derived feature or 'prediction'"
              for c in p.monitoring.drift_columns if c not in known]
    m = p.monitoring
    if m.trigger == "realized_performance" and not m.retrain_on_decline:
        found.append("monitoring.retrain_on_decline: false contradicts monitoring.trigger: realized_performance "
                     "(a realized decline is then the only rule)")
    if p.split.method == "time" and not p.data.time_column:
        found.append("split.method: 'time' needs data.time_column")
    return found


# Derived kinds that learn exact quantiles: the cluster computes counts and sums, not exact quantiles yet.
QUANTILE_KINDS = ("quantile_bins",)


def _distributed(p: Params) -> list[str]:
    """What a fit on a Dask cluster needs; checkpoints and warm starts belong to it."""
    from driftline.core.estimators import distributed_kinds

    training, found = p.training, []
    if training.distributed is None:
        found += [f"training.{key}: only the distributed fit {what}; set training.distributed (or remove {key})"
                  for key, what in (("checkpoint_every", "writes checkpoints"), ("warm_start", "starts warm"))
                  if getattr(training, key) is not None]
        return found
    kinds = distributed_kinds()
    if training.estimator.kind not in kinds:
        found.append(f"training.distributed: {training.estimator.kind} has no distributed fit; the kinds that have "
                     f"one: {', '.join(kinds)}")
    if p.split.method == "time":
        found.append("split.method: 'time' orders every row, which training.distributed does not do; use the hash "
                     "split (applied per partition)")
    for i, d in enumerate(p.data.derived):
        if d.kind in QUANTILE_KINDS or getattr(d, "quantiles", None):
            found.append(f"data.derived.{i}.kind: {d.kind} learns exact quantiles, which training.distributed does "
                         "not compute yet; use fixed bounds (clip lower/upper) or another kind")
    if p.validation.previous.enabled:
        found.append("validation.previous.enabled: the checks against the champion's data version read both versions "
                     "in one process, which training.distributed does not do yet; set it to false")
    if p.evaluation.pinned.source == "champion_holdout":
        found.append("evaluation.pinned.source: champion_holdout reads the champion's data version in one process, "
                     "which training.distributed does not do yet; use golden or none")
    return found


def _search(p: Params) -> list[str]:
    """Each searched parameter is one of the estimator's, and each value it may take is valid.
    Only for a search that runs: a switched-off section must not stop a run that changes the
    estimator's kind (`--search` switches it on, and then it is checked)."""
    from pydantic import ValidationError

    from driftline.config.estimators import flat_fields
    from driftline.core import estimator_checks

    search, est = p.training.search, p.training.estimator
    if search is None or not search.enabled:
        return []
    found = []
    fields = type(est).model_fields
    flat = flat_fields(est)
    others = estimator_checks.searchable(est, p.data.task)
    for name, dim in search.space.items():
        key = f"training.search.space.{name}"
        values = dim.choices if hasattr(dim, "choices") else \
            [int(dim.low), int(dim.high)] if dim.int else [dim.low, dim.high]
        if name in flat and name not in est.params:
            if hasattr(dim, "low") and fields[name].annotation in (int, int | None) and not dim.int:
                found.append(f"{key}: {name} is a whole number: set int: true")
                continue
            for value in values:
                try:
                    type(est).model_validate({**est.model_dump(), name: value})
                except ValidationError as err:
                    found.append(f"{key}: {value!r} is not a valid {name}: {err.errors()[0]['msg']}")
                    break
            continue
        if others is not None and name not in others[1]:
            known = ", ".join(dict.fromkeys([*flat, *others[0]]))
            found.append(f"{key}: {est.kind} has no parameter {name!r} ({known})")
            continue
        for value in values:
            if why := estimator_checks.refused(est, p.data.task, name, value):
                found.append(f"{key}: {value!r} is not a valid {name}: {why}")
                break
    return found


def _derived(p: Params) -> list[str]:
    """Each derived feature reads features of the right type, and its name is new."""
    from driftline.config.features import DATETIME_INPUTS, NUMERIC_INPUTS, inputs

    types = {f.name: f.type for f in p.data.features}
    taken = set(p.data.columns)
    found = []
    for i, d in enumerate(p.data.derived):
        key = f"data.derived.{i}"  # as pydantic names list items
        if d.name in taken:
            found.append(f"{key}.name: {d.name!r} is already a column or another derived feature")
        taken.add(d.name)
        wanted = ("numeric" if d.kind in NUMERIC_INPUTS else "datetime" if d.kind in DATETIME_INPUTS
                  else "categorical")
        for field, column in inputs(d):
            if column not in types:
                found.append(f"{key}.{field}: {column!r} is not a feature (derived features read data.features)")
            elif types[column] != wanted and d.kind != "custom":  # a function reads any type
                found.append(f"{key}.{field}: {d.kind} needs a {wanted} feature, {column!r} is {types[column]}")
        if d.kind == "target_encoding" and p.data.task == "multiclass":
            found.append(f"{key}.kind: target_encoding is for binary and regression tasks, not multiclass")
    read = {column for d in p.data.derived for _, column in inputs(d)}
    found += [f"data.features.{i}.type: datetime feature {f.name!r} is read by no derived feature (the estimator "
              "never sees a raw timestamp; add a date_part or days_since that reads it)"
              for i, f in enumerate(p.data.features) if f.type == "datetime" and f.name not in read]
    return found


def _metrics(p: Params) -> list[str]:
    task = p.data.task
    allowed = metrics_for(task)
    problems = []
    metrics = {
        "evaluation.primary_metric": [p.evaluation.primary_metric],
        "evaluation.thresholds": list(p.evaluation.thresholds),
        "evaluation.comparison.metric": [p.evaluation.comparison.metric or allowed[0]],
    }
    for key, names in metrics.items():
        for name in names:
            if name not in allowed:
                problems.append(f"{key}: {name!r} is not a {task} metric ({', '.join(allowed)})")
    # The paired bootstrap computes AUC from one score per row: binary only.
    if task == "multiclass" and p.comparison_metric == "roc_auc":
        others = ", ".join(m for m in allowed if m != "roc_auc")
        what = ("'roc_auc'" if p.evaluation.comparison.metric else
                "not set, so it defaults to evaluation.primary_metric 'roc_auc', which")
        problems.append(f"evaluation.comparison.metric: {what} is supported for binary tasks only "
                        f"(the champion comparison bootstraps a binary AUC); set "
                        f"evaluation.comparison.metric to one of {others}")
    if p.evaluation.comparison.method == "delong" and (task != "binary" or p.comparison_metric != "roc_auc"):
        problems.append(f"evaluation.comparison.method: 'delong' is an interval for a binary task's roc_auc, and "
                        f"this comparison is of {p.comparison_metric} on a {task} task; use 'bootstrap'")
    return problems

def _estimator(p: Params) -> list[str]:
    from driftline.core import estimator_checks

    return estimator_checks.problems(p.training.estimator, p.data.task)


def _fairness(p: Params) -> list[str]:
    task = p.data.task
    # selection_rate is undefined beyond binary (a NaN gap would pass); regression slices are MAE.
    fair_metrics = {"binary": ("accuracy", "recall", "precision", "selection_rate"),
                    "multiclass": ("accuracy", "recall", "precision"), "regression": ("mae",)}[task]
    problems = []
    for gate in p.evaluation.fairness:
        if gate.attribute not in p.data.sensitive_attributes:
            problems.append(f"evaluation.fairness.attribute: {gate.attribute!r} is not in "
                            "data.sensitive_attributes")
        if gate.metric not in fair_metrics:
            problems.append(f"evaluation.fairness.metric: {gate.metric!r} is not a {task} slice metric "
                            f"({', '.join(fair_metrics)})")
    return problems

def _behavioral(p: Params) -> list[str]:
    names = set(p.data.feature_names)
    numeric = {f.name for f in p.data.features if f.type == "numeric"}
    problems = []
    for test in p.evaluation.behavioral:
        key = f"evaluation.behavioral[{test.name}]"
        features = [test.feature] if hasattr(test, "feature") else [
            name for case in test.cases for name in case.record
        ]
        unknown = sorted(set(features) - names)
        if unknown:
            problems.append(f"{key}: unknown feature {', '.join(unknown)}")
            continue
        if test.kind == "directional" and test.feature not in numeric:
            problems.append(f"{key}: directional tests shift a numeric feature; {test.feature} is categorical")
        elif test.kind == "invariance":
            problems += _value_types(f"{key}.values", test.feature, test.values, test.feature in numeric)
        elif test.kind == "minimum_functionality":
            for i, case in enumerate(test.cases):
                for name, value in case.record.items():
                    if value is not None:  # None: the feature is missing in this case
                        problems += _value_types(f"{key}.cases.{i}.record", name, [value], name in numeric)
    return problems


def _value_types(key: str, feature: str, values: list, numeric: bool) -> list[str]:
    """A number for a numeric feature, text for a categorical one (YAML reads `12` as a number)."""
    if numeric:
        wrong = [v for v in values if isinstance(v, str)]
        return [f"{key}: {feature} is numeric, so its values must be numbers, not {', '.join(map(repr, wrong))}"] \
            if wrong else []
    wrong = [v for v in values if not isinstance(v, str)]
    return [f"{key}: {feature} is categorical, so its values must be strings, not {', '.join(map(repr, wrong))} "
            f"(quote them in YAML)"] if wrong else []


