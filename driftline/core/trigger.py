"""The trigger policy: which rule makes the monitor's drift a retraining (`monitoring.trigger`).

- `features`: monitoring.drift_share of the features drifted, or a monitoring.drift_columns one.
- `estimated_performance`: the primary metric, estimated from calibrated scores (or realized on
  labels, when they cover monitoring.min_label_coverage of the window and number
  monitoring.min_labels), is past its holdout value by more than the allowed drop at its 95% bound.
- `realized_performance`: the same on labels alone.
- `any`: any of the three.
- unset: features, and the live accuracy's decline when monitoring.retrain_on_decline (the rule
  from before the trigger existed, kept as the default).
"""

from __future__ import annotations

from dataclasses import dataclass

from driftline.config import MonitoringConfig
from driftline.core.estimation import Value
from driftline.core.metrics import LOWER_IS_BETTER
from driftline.core.window_performance import Judged, Scoring


@dataclass(frozen=True)
class Rule:
    name: str  # estimated_performance | realized_performance
    fired: bool
    line: str  # the numbers, in words
    source: str = "none"  # estimated | realized | none (not judged)
    value: Value | None = None
    limit: float | None = None  # the floor (or, for an error metric, the ceiling) it is held against


def allowed(metric: str, holdout: float, cfg: MonitoringConfig) -> tuple[float, str]:
    """The floor (ceiling for an error metric) of `metric`, and how it was reached, in words."""
    if metric in LOWER_IS_BETTER:
        return holdout * (1 + cfg.max_metric_drop), f"holdout {holdout:.4g} × (1 + {cfg.max_metric_drop:g})"
    drop, key = (cfg.max_accuracy_drop, "max_accuracy_drop") if metric == "accuracy" else \
        (cfg.max_metric_drop, "max_metric_drop")
    return holdout - drop, f"holdout {holdout:.3f} − {drop:g} (monitoring.{key})"


def _held(name: str, source: str, metric: str, v: Value, holdout: float | None, cfg: MonitoringConfig,
          said: str) -> Rule:
    if holdout is None:
        return Rule(name, False, f"{said}; no holdout {metric} to compare with", source, v)
    limit, how = allowed(metric, holdout, cfg)
    worse = metric in LOWER_IS_BETTER
    fired = v.low > limit if worse else v.high < limit
    bound = f"lower bound {v.low:.3f} above" if worse else f"upper bound {v.high:.3f} below"
    verdict = f"{bound} {how} = {limit:.3f}: declined" if fired else f"within {how} = {limit:.3f}: holding"
    return Rule(name, fired, f"{said}; {verdict}", source, v, limit)


def _realized_said(judged: Judged, metric: str, where: str = "the window's rows") -> str:
    r = judged.realized
    v = r.metrics[metric]
    return (f"realized {metric} {v.value:.3f} (95% bounds {v.low:.3f}–{v.high:.3f}) on {r.labelled:,} labels, "
            f"{r.coverage:.0%} of {where}")


def estimated_rule(judged: Judged, scoring: Scoring, metric: str, cfg: MonitoringConfig) -> Rule:
    """The estimate, or the realized value where labels cover enough of the window."""
    name, holdout, r, e = "estimated_performance", scoring.holdout.get(metric), judged.realized, judged.estimate
    said = ""
    if e is not None and metric in e.metrics:
        v = e.metrics[metric]
        said = f"estimated {metric} {v.value:.3f} (95% bounds {v.low:.3f}–{v.high:.3f}; {e.rows:,} rows, {e.source})"
    if r is not None and metric in r.metrics:
        if r.labelled >= cfg.min_labels and r.coverage >= cfg.min_label_coverage:
            return _held(name, "realized", metric, r.metrics[metric], holdout, cfg,
                         f"{_realized_said(judged, metric)}, which replace the estimate"
                         + (f" ({said})" if said else ""))
        said += (f"; {r.labelled:,} labels ({r.coverage:.0%} of the rows) do not replace it (monitoring."
                 f"min_labels={cfg.min_labels}, min_label_coverage={cfg.min_label_coverage:.0%})")
    if e is None or metric not in e.metrics:
        return Rule(name, False, f"{metric} cannot be estimated here" + (f" ({e.source})" if e else ""))
    return _held(name, "estimated", metric, e.metrics[metric], holdout, cfg, said)


def realized_rule(judged: Judged, scoring: Scoring, metric: str, cfg: MonitoringConfig, past: list | tuple = (),
                  version: str = "") -> Rule:
    """The window's realized value; with too few labels in it, the newest earlier window of the same
    champion that its labels (arriving months later, in lending) have now judged (`past`:
    past_windows.Rejudged, newest first)."""
    name, r = "realized_performance", judged.realized
    if r is not None and metric in r.metrics and r.labelled >= cfg.min_labels:
        return _held(name, "realized", metric, r.metrics[metric], scoring.holdout.get(metric), cfg,
                     _realized_said(judged, metric))
    for earlier in past:
        found = earlier.judged.realized
        if earlier.window.version == version and found is not None and metric in found.metrics \
                and found.labelled >= cfg.min_labels:
            span = f"the rows of the earlier window {earlier.window.first[:19]} – {earlier.window.last[:19]}"
            return _held(name, "realized", metric, found.metrics[metric], scoring.holdout.get(metric), cfg,
                         _realized_said(earlier.judged, metric, span))
    got = r.labelled if r is not None else 0
    return Rule(name, False, f"{got:,} labels in the window and none enough in an earlier one "
                             f"(monitoring.min_labels={cfg.min_labels}): realized {metric} not judged")


def rules(trigger: str | None, judged: Judged | None, scoring: Scoring | None, metric: str,
          cfg: MonitoringConfig, past: list | tuple = (), version: str = "") -> list[Rule]:
    """The performance rules the trigger reads, judged (reported all the same when none is)."""
    if judged is None or scoring is None:
        return []
    estimated = estimated_rule(judged, scoring, metric, cfg)
    if trigger == "realized_performance" or (trigger == "any" and cfg.retrain_on_decline):
        realized = realized_rule(judged, scoring, metric, cfg, past, version)
        # Once labels replace the estimate the two rules say the same thing: say it once.
        return [estimated] if estimated.source == "realized" and trigger == "any" else \
            ([realized] if trigger == "realized_performance" else [estimated, realized])
    return [estimated]


def counts(trigger: str | None, rule: str) -> bool:
    """Whether `rule` (features, estimated_performance, realized_performance, realized_accuracy)
    may make drift a retraining under `trigger` (retrain_on_decline is applied by the caller)."""
    if trigger is None:
        return rule in ("features", "realized_accuracy")
    return (trigger == "any" and rule != "realized_accuracy") or trigger == rule


def verdict(rules: list[Rule], judged: Judged | None, metric: str, version: str, holdout: float | None,
            newest_error: float | None = None) -> dict:
    """The newest performance verdict for /metrics (ops/prometheus): the primary metric estimated
    and realized with their bounds, the limit, the label coverage, which rule declined, and the
    newest estimation error measured on an earlier window."""
    out: dict = {"version": version, "metric": metric, "holdout": holdout}
    for kind, found in (("estimated", judged.estimate if judged else None),
                        ("realized", judged.realized if judged else None)):
        v = found.metrics.get(metric) if found is not None else None
        if v is not None and v.value == v.value:
            out.update({kind: v.value, f"{kind}_low": v.low, f"{kind}_high": v.high})
    if judged is not None and judged.realized is not None:
        out.update(labelled=judged.realized.labelled, coverage=judged.realized.coverage)
    for rule in rules:
        if rule.limit is not None:
            out["limit"] = rule.limit
        if rule.source in ("estimated", "realized"):
            out[f"declined_{rule.source}"] = int(rule.fired) | out.get(f"declined_{rule.source}", 0)
    if newest_error is not None:
        out["estimation_error"] = newest_error
    return out
