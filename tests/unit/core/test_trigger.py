"""monitoring.trigger: which rule makes drift a retraining, with the numbers in the decision line.
Unset, the rule is today's (features, and the live accuracy's decline)."""

from __future__ import annotations

import numpy as np
import pytest

from driftline.config import ConfigError, MonitoringConfig
from driftline.core import monitoring, trigger
from driftline.core.calibration import uncalibrated
from driftline.core.drift import ColumnDrift
from driftline.core.estimation import Estimate, Realized, Value
from driftline.core.window_performance import Judged, Scoring

SCORING = Scoring(uncalibrated("binary", [0, 1]), 1, {"roc_auc": 0.84, "accuracy": 0.80, "rmse": 2.0})
NO_LABELS = monitoring.Performance(0, None, None, None, False, "no labels yet")
DECLINED = monitoring.Performance(500, 0.6, 0.64, 0.8, True, "live accuracy 0.600 on 500 labels: declined")


def _cols(moved: bool) -> list[ColumnDrift]:
    return [ColumnDrift(n, "wasserstein", 0.5 if moved and n in "ab" else 0.01, 0.1, moved and n in "ab")
            for n in "abcd"]


def _judged(estimated: float | None, realized: float | None = None, labelled: int = 0, rows: int = 1000,
            metric: str = "roc_auc", spread: float = 0.02) -> Judged:
    none = np.zeros(0)
    est = None if estimated is None else Estimate(
        rows, {metric: Value(estimated, estimated - spread, estimated + spread)}, True, "calibrated scores", none, none)
    real = None if realized is None else Realized(
        rows, labelled, {metric: Value(realized, realized - spread, realized + spread)}, none, none)
    return Judged(est, real, [])


def _decide(cfg: MonitoringConfig, moved: bool, judged: Judged | None, perf=NO_LABELS, metric="roc_auc"):
    rules = trigger.rules(cfg.trigger, judged, SCORING, metric, cfg)
    return monitoring.decide(_cols(moved), 1000, perf, cfg, None, frozenset(), rules)


def test_unset_keeps_todays_rule_and_only_reports_the_estimate():
    cfg = MonitoringConfig(min_rows=100)
    moved = _decide(cfg, True, _judged(0.9))
    assert moved.drift and moved.fired == ["features"]
    assert "estimated_performance: estimated roc_auc 0.900" in moved.message  # reported beside
    fallen = _decide(cfg, False, _judged(0.5))
    assert fallen.status == "no_drift" and "upper bound 0.520 below holdout 0.840" in fallen.message
    declined = _decide(cfg, False, None, DECLINED)
    assert declined.drift and declined.fired == ["realized_accuracy"]
    quiet = _decide(cfg.model_copy(update={"retrain_on_decline": False}), False, None, DECLINED)
    assert quiet.status == "no_drift"


def test_features_retrains_on_moved_features_and_nothing_else():
    cfg = MonitoringConfig(min_rows=100, trigger="features")
    assert _decide(cfg, True, _judged(0.9)).fired == ["features"]
    assert _decide(cfg, False, _judged(0.5), DECLINED).status == "no_drift"


def test_estimated_performance_judges_the_estimate_and_only_reports_the_features():
    cfg = MonitoringConfig(min_rows=100, trigger="estimated_performance")
    harmless = _decide(cfg, True, _judged(0.86))
    assert harmless.status == "no_drift"
    assert harmless.message.startswith("no drift (monitoring.trigger=estimated_performance); 50% of features "
                                       "drifted (monitoring.drift_share=25%): a, b (reported:")
    assert "estimated roc_auc 0.860 (95% bounds 0.840–0.880; 1,000 rows, calibrated scores); within holdout " \
           "0.840 − 0.05 (monitoring.max_metric_drop) = 0.790: holding" in harmless.message
    harmful = _decide(cfg, False, _judged(0.70))
    assert harmful.drift and harmful.fired == ["estimated_performance"]
    assert "upper bound 0.720 below holdout 0.840 − 0.05 (monitoring.max_metric_drop) = 0.790: declined" \
        in harmful.reasons[0]
    # Within the band of the floor is not a decline: the upper bound decides.
    assert _decide(cfg, False, _judged(0.775)).status == "no_drift"
    # Accuracy keeps its own tolerance.
    loose = cfg.model_copy(update={"max_accuracy_drop": 0.3})
    assert _decide(loose, False, _judged(0.70, metric="accuracy"), metric="accuracy").status == "no_drift"


def test_realized_values_replace_the_estimate_only_above_the_minimum_coverage():
    cfg = MonitoringConfig(min_rows=100, min_labels=200, min_label_coverage=0.5, trigger="estimated_performance")
    # A concept change: the estimate holds, the labels say otherwise.
    few = trigger.estimated_rule(_judged(0.84, 0.6, labelled=300), SCORING, "roc_auc", cfg)
    assert few.source == "estimated" and not few.fired and "300 labels (30% of the rows) do not replace it" in few.line
    enough = trigger.estimated_rule(_judged(0.84, 0.6, labelled=600), SCORING, "roc_auc", cfg)
    assert enough.source == "realized" and enough.fired and "which replace the estimate" in enough.line


def test_realized_performance_needs_its_minimum_of_labels_and_any_reads_every_rule():
    cfg = MonitoringConfig(min_rows=100, min_labels=200, trigger="realized_performance")
    assert _decide(cfg, True, _judged(0.5, 0.6, labelled=100)).status == "no_drift"
    assert _decide(cfg, True, _judged(0.9, 0.6, labelled=300)).fired == ["realized_performance"]
    anything = cfg.model_copy(update={"trigger": "any"})
    assert _decide(anything, True, _judged(0.9)).fired == ["features"]
    assert _decide(anything, False, _judged(0.5)).fired == ["estimated_performance"]
    both = _decide(anything, False, _judged(0.5, 0.6, labelled=300))
    assert both.fired == ["estimated_performance", "realized_performance"]
    # Once labels replace the estimate the two rules are one: said once.
    covered = _decide(anything, False, _judged(0.5, 0.6, labelled=900))
    assert covered.fired == ["estimated_performance"] and covered.message.count("realized roc_auc") == 1


def test_an_error_metric_declines_upwards_by_a_share_of_its_holdout_value():
    cfg = MonitoringConfig(min_rows=100, trigger="estimated_performance", max_metric_drop=0.1)
    assert trigger.allowed("rmse", 2.0, cfg)[0] == pytest.approx(2.2)
    assert _decide(cfg, False, _judged(2.5, metric="rmse", spread=0.1), metric="rmse").drift
    assert not _decide(cfg, False, _judged(2.25, metric="rmse", spread=0.1), metric="rmse").drift


def test_a_trigger_on_labels_alone_cannot_be_switched_off_by_retrain_on_decline(make_params):
    with pytest.raises(ConfigError, match=r"monitoring\.retrain_on_decline: false contradicts"):
        make_params("monitoring.trigger=realized_performance", "monitoring.retrain_on_decline=false")


def test_labels_that_arrive_for_an_earlier_window_of_the_champion_are_realized_evidence_now():
    from driftline.core.past_windows import PastWindow, Rejudged

    cfg = MonitoringConfig(min_rows=100, min_labels=200, trigger="any")
    earlier = Rejudged(PastWindow("r1", "3", "2026-01-01T00:00:00+00:00", "2026-01-01T10:00:00+00:00",
                                  {"roc_auc": 0.84}), _judged(None, 0.62, labelled=900), {"roc_auc": 0.22}, 900)
    other_version = Rejudged(earlier.window.__class__("r0", "2", earlier.window.first, earlier.window.last),
                             _judged(None, 0.5, labelled=900), {}, 900)
    now = _judged(0.84)  # no labels yet for today's window: its estimate holds
    rule = trigger.realized_rule(now, SCORING, "roc_auc", cfg, [other_version, earlier], version="3")
    assert rule.fired and "realized roc_auc 0.620" in rule.line
    assert "of the rows of the earlier window 2026-01-01T00:00:00 – 2026-01-01T10:00:00" in rule.line
    decided = monitoring.decide(_cols(False), 1000, NO_LABELS, cfg, None, frozenset(),
                                trigger.rules("any", now, SCORING, "roc_auc", cfg, [earlier], "3"))
    assert decided.fired == ["realized_performance"]
    # Another champion's window says nothing about this one; too few labels say nothing at all.
    assert not trigger.realized_rule(now, SCORING, "roc_auc", cfg, [other_version], version="3").fired
    thin = Rejudged(earlier.window, _judged(None, 0.62, labelled=50), {}, 50)
    assert not trigger.realized_rule(now, SCORING, "roc_auc", cfg, [thin], version="3").fired
