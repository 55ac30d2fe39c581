"""The drift decision: thresholds, key columns, minimum window, cooldown, and live accuracy."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from driftline.config import MonitoringConfig
from driftline.core import demo_data, monitoring
from driftline.core.drift import ColumnDrift


def _cols(drifted: set[str], names=("a", "b", "c", "d"), prediction: bool = False) -> list[ColumnDrift]:
    out = [ColumnDrift(n, "wasserstein", 0.5 if n in drifted else 0.01, 0.1, n in drifted) for n in names]
    if prediction:
        out.append(ColumnDrift("prediction", "wasserstein", 0.5, 0.1, True))
    return out


NO_LABELS = monitoring.Performance(0, None, None, None, False, "no labels yet")
CFG = MonitoringConfig(min_rows=100, drift_share=0.5, cooldown_hours=24)


def test_share_at_the_threshold_is_drift_below_is_not():
    assert monitoring.decide(_cols({"a", "b"}), 1000, NO_LABELS, CFG, None).status == "drift"
    result = monitoring.decide(_cols({"a"}), 1000, NO_LABELS, CFG, None)
    assert result.status == "no_drift" and result.drift_share == 0.25
    assert "25% of features drifted (a)" in result.message


def test_the_prediction_column_is_not_a_feature_but_can_count_alone():
    result = monitoring.decide(_cols(set(), prediction=True), 1000, NO_LABELS, CFG, None)
    assert result.status == "no_drift" and result.drift_share == 0
    cfg = CFG.model_copy(update={"drift_columns": ["prediction"]})
    result = monitoring.decide(_cols(set(), prediction=True), 1000, NO_LABELS, cfg, None)
    assert result.drift and "prediction drifted, and it alone counts" in result.reasons[0]


def test_too_little_data_gives_no_verdict_even_when_everything_drifted():
    result = monitoring.decide(_cols({"a", "b", "c", "d"}), 99, NO_LABELS, CFG, None)
    assert result.status == "too_little_data" and "99 rows" in result.message


def test_cooldown_holds_back_the_event_and_says_why():
    result = monitoring.decide(_cols({"a", "b"}), 1000, NO_LABELS, CFG, hours_since_last=2.0)
    assert result.status == "cooldown" and "2.00 h ago" in result.message
    assert monitoring.decide(_cols({"a", "b"}), 1000, NO_LABELS, CFG, hours_since_last=30).drift


def test_the_cooldown_runs_from_the_newer_of_the_last_version_and_the_last_event():
    now = 1_000_000.0
    assert monitoring.hours_since_last(now, [], None) is None
    assert monitoring.hours_since_last(now, [now - 7200, now - 3600], None) == 1.0
    assert monitoring.hours_since_last(now, [now - 7200], now - 1800) == 0.5


def test_recheck_turns_drift_into_cooldown_when_another_monitor_emitted_meanwhile():
    drift = monitoring.decide(_cols({"a", "b"}), 1000, NO_LABELS, CFG, hours_since_last=None)
    assert drift.status == "drift"
    again = monitoring.recheck(drift, 0.01, CFG)
    assert again.status == "cooldown" and again.reasons == drift.reasons and "0.01 h ago" in again.message
    assert monitoring.recheck(drift, 25.0, CFG) is drift and monitoring.recheck(drift, None, CFG) is drift
    no_drift = monitoring.decide(_cols({"a"}), 1000, NO_LABELS, CFG, None)
    assert monitoring.recheck(no_drift, 0.01, CFG) is no_drift


def _answers(n: int, right_share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, n)
    predicted = np.where(rng.random(n) < right_share, truth, 1 - truth)
    rows = pd.DataFrame({"request_id": [f"r{i}" for i in range(n)], "prediction": predicted})
    feedback = pd.DataFrame({"request_id": rows["request_id"], "label": [json.dumps(int(t)) for t in truth]})
    return rows, feedback


def test_a_real_accuracy_decline_is_detected_and_counts_as_drift():
    rows, feedback = _answers(1000, 0.6)
    perf = monitoring.performance(rows, feedback, expected_accuracy=0.85, cfg=CFG)
    assert perf.declined and perf.live_accuracy == pytest.approx(0.6, abs=0.05)
    result = monitoring.decide(_cols(set()), 1000, perf, CFG, None)
    assert result.drift and "performance declined" in result.reasons[0]


def test_accuracy_within_chance_of_the_holdout_is_not_a_decline():
    rows, feedback = _answers(300, 0.83)
    assert not monitoring.performance(rows, feedback, expected_accuracy=0.85, cfg=CFG).declined
    few_rows, few_labels = _answers(50, 0.1)
    perf = monitoring.performance(few_rows, few_labels, 0.85, CFG.model_copy(update={"min_labels": 200}))
    assert not perf.declined and "fewer than monitoring.min_labels=200" in perf.note


def test_wilson_upper_bound_covers_the_true_rate():
    rng = np.random.default_rng(1)
    covered = sum(monitoring.wilson_upper(int(rng.binomial(200, 0.7)), 200) >= 0.7 for _ in range(2000))
    assert 0.93 <= covered / 2000 <= 0.98


def test_only_live_answers_inside_the_window_are_read():
    now = pd.Timestamp.now(tz="UTC")
    log = pd.DataFrame({
        "timestamp": [(now - pd.Timedelta(hours=h)).isoformat() for h in (30, 2, 1, 1, 0.5, 0.1)],
        "variant": ["champion", "champion", "smoke", "shadow", "challenger", "champion"],
        "status": ["ok", "ok", "ok", "ok", "ok", "error"],
        "request_id": list("abcdef")})
    live = monitoring.live_rows(log)
    assert list(live["request_id"]) == ["a", "b", "e"]
    assert list(monitoring.window(live, now - pd.Timedelta(hours=24), None)["request_id"]) == ["b", "e"]
    assert list(monitoring.window(live, now - pd.Timedelta(hours=48), 1)["request_id"]) == ["e"]


def test_assess_on_shifted_traffic_decides_drift_with_the_prediction_column(params):
    reference = demo_data.generate(3000, seed=1)
    reference["prediction"] = np.random.default_rng(0).random(len(reference)) * 0.5
    current = demo_data.generate(3000, seed=2, scenario="covariate_shift")
    current["model_version"] = "3"
    current["score"] = np.random.default_rng(1).random(len(current)) * 0.5 + 0.3
    result = monitoring.assess(current, pd.DataFrame(), reference, params, "3", 0.8, None)
    assert result.decision.drift and "prediction" in result.decision.drifted_columns
    assert len(result.columns) == len(params.data.features) + 1 and result.rows == 3000


def test_derived_features_count_alone_when_named_never_twice_in_the_share():
    cols = [*_cols({"a"}), ColumnDrift("a_per_b", "wasserstein", 0.5, 0.1, True)]
    result = monitoring.decide(cols, 1000, NO_LABELS, CFG, None, frozenset({"a_per_b"}))
    assert result.status == "no_drift" and result.drift_share == 0.25  # over the four raw features
    assert "a_per_b" in result.drifted_columns  # reported all the same
    named = CFG.model_copy(update={"drift_columns": ["a_per_b"]})
    result = monitoring.decide(cols, 1000, NO_LABELS, named, None, frozenset({"a_per_b"}))
    assert result.reasons == ["a_per_b drifted, and it alone counts (monitoring.drift_columns)"]


def test_assess_watches_the_derived_features_the_champion_computes(make_params):
    from driftline.core import features, frames, training
    from tests.unit.core.test_features import WITH_DATE

    p = make_params(WITH_DATE, "training.estimator.max_iter=20", "data.derived=["
                    "{kind: ratio, name: loan_to_income, numerator: loan_amount, denominator: annual_income},"
                    "{kind: days_since, name: days_since_launch, column: application_date, date: '2023-12-01'}]")
    reference = demo_data.generate(3000, seed=1)
    step = features.derive_step(training.train(reference, p))
    reference["prediction"] = 0.2
    current = frames.features(demo_data.generate(3000, seed=2, scenario="covariate_shift"), p.data)
    current["region"] = current["region"].astype("category")  # as the prediction log reads it back
    result = monitoring.assess(current, pd.DataFrame(), reference, p, "3", None, None, step)
    by_name = {c.column: c for c in result.columns}
    assert by_name["loan_to_income"].drifted  # lower incomes and larger loans: the ratio moved
    assert by_name["days_since_launch"].drifted  # baseline applications are from 2024, shifted ones from 2026
    raw = [c for c in result.columns if c.column not in ("loan_to_income", "days_since_launch")]
    assert result.decision.drift_share == sum(c.drifted for c in raw) / len(raw)
    # Without the champion's step nothing derived is watched, and the raw verdict is the same.
    plain = monitoring.assess(current, pd.DataFrame(), reference, p, "3", None, None)
    assert {c.column for c in plain.columns} == {c.column for c in raw}
    assert plain.decision.drift_share == result.decision.drift_share


def test_a_drifted_column_within_its_sampling_noise_says_so():
    from driftline.core import drift

    rng = np.random.default_rng(3)
    reference = pd.Series(rng.lognormal(11, 0.5, 10_000))
    same = pd.Series(np.random.default_rng(100).lognormal(11, 0.5, 60))  # the same population, 60 rows
    moved = pd.Series(rng.lognormal(11.4, 0.5, 60))
    small = drift.with_noise(drift.column_drift("income", reference, same, True), reference, 60, True)
    shifted = drift.with_noise(drift.column_drift("income", reference, moved, True), reference, 60, True)
    assert small.drifted and small.score <= small.noise  # flagged, but sampling alone scores as high
    assert shifted.drifted and shifted.score > 3 * shifted.noise  # real drift stands far above the noise
    # The noise shrinks as the window grows, and is not computed for what did not drift.
    assert drift.sampling_noise(reference, 120, True) > 2 * drift.sampling_noise(reference, 2_000, True)
    calm = drift.ColumnDrift("x", "wasserstein", 0.01, 0.1, False)
    assert drift.with_noise(calm, reference, 120, True) is calm


def test_the_monitor_report_names_the_drifted_columns_within_sampling_noise():
    from driftline.core.drift import ColumnDrift
    from flows.monitor import _markdown

    cols = [ColumnDrift("annual_income", "wasserstein", 0.11, 0.1, True, 0.13),
            ColumnDrift("age", "wasserstein", 0.4, 0.1, True, 0.12), ColumnDrift("region", "jensenshannon", 0.01, 0.1,
                                                                                False)]
    result = monitoring.Assessment(600, cols, [], NO_LABELS, monitoring.decide(cols, 600, NO_LABELS, CFG, None))
    text = _markdown("m", "1", result, None)
    assert ("- within sampling noise (two samples of the reference of 600 rows score as high): "
            "annual_income (0.110, noise up to 0.130)") in text
    assert "age (" not in text.split("within sampling noise")[1]
