"""What a deployment run's overrides may change (driftline.config.tuning): tune, never loosen."""

from __future__ import annotations

import pytest

from driftline.config.tuning import refused


@pytest.mark.parametrize("override", [
    "training.seed=7", "training.estimator.max_iter=300", "training.n_jobs=1",
    "training.search.enabled=true", "rollout.steps=[0.5, 1.0]", "rollout.window_seconds=5",
])
def test_tuning_is_allowed(params, make_params, override):
    assert refused(params, make_params(override)) == []


@pytest.mark.parametrize(("override", "key"), [
    ("evaluation.thresholds={}", "evaluation:"),
    ("evaluation.comparison.margin=1.0", "evaluation:"),
    ("validation.previous.max_label_change_share=1.0", "validation:"),
    ("validation.distribution.enabled=false", "validation:"),
    ("data.path=data/other.parquet", "data:"),
    ("split.test_size=0.01", "split:"),
    ("registry.model_name=someone-else", "registry:"),
    ("monitoring.drift_share=0.01", "monitoring:"),
    ("rollout.max_error_rate=1.0", "rollout.max_error_rate:"),
    ("rollout.min_requests=1", "rollout.min_requests:"),
    ("training.estimator={kind: random_forest}", "training.estimator.kind:"),
    ("training={estimator: {kind: lightgbm}}", "training.estimator.kind:"),
])
def test_loosening_or_choosing_code_is_refused_naming_the_key(params, make_params, override, key):
    found = refused(params, make_params(override))
    assert any(line.startswith(key) for line in found), found
