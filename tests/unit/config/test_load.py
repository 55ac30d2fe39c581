"""`--set KEY=VALUE` overrides (OmegaConf) and the error lines that name each key."""

from __future__ import annotations

import pytest

from driftline.config import ConfigError, HistGradientBoosting, load_params
from driftline.config.load import apply_overrides

from ..conftest import PARAMS_FILE


def test_an_override_sets_a_nested_key_and_keeps_its_siblings():
    p = load_params(PARAMS_FILE, ["training.estimator.learning_rate=0.2", "evaluation.comparison.margin=0.03"])
    assert isinstance(p.training.estimator, HistGradientBoosting)
    assert p.training.estimator.learning_rate == 0.2
    assert p.training.estimator.max_iter == 200  # from params.yaml, untouched
    assert p.evaluation.comparison.margin == 0.03


def test_an_override_takes_a_list_value_and_indexes_into_lists():
    p = load_params(PARAMS_FILE, ["monitoring.drift_columns=[age, prediction]",
                                  "evaluation.fairness.0.max_gap=0.25"])
    assert p.monitoring.drift_columns == ["age", "prediction"]
    assert p.evaluation.fairness[0].max_gap == 0.25
    assert p.evaluation.fairness[0].attribute == "gender"


def test_a_mapping_value_replaces_the_mapping_instead_of_merging_into_it():
    # Merged, the ridge would inherit max_iter and learning_rate and be rejected as extra keys.
    raw = {"training": {"estimator": {"kind": "hist_gradient_boosting", "max_iter": 5}}}
    assert apply_overrides(raw, ["training.estimator={kind: ridge, alpha: 2}"]) == {
        "training": {"estimator": {"kind": "ridge", "alpha": 2}}}


def test_an_override_of_an_unknown_key_is_an_error_naming_the_key_and_the_reason():
    with pytest.raises(ConfigError) as info:
        load_params(PARAMS_FILE, ["training.estimatr.max_iter=50", "training.seed=7"])
    lines = str(info.value).splitlines()
    assert lines[0] == f"{PARAMS_FILE} is invalid:"
    assert lines[1:] == ["training.estimatr: Extra inputs are not permitted"]


def test_an_override_into_a_number_is_refused_rather_than_replacing_it():
    with pytest.raises(ConfigError, match=r"^--set training.seed.value: training.seed is not a mapping$"):
        load_params(PARAMS_FILE, ["training.seed.value=1"])


def test_error_locations_leave_out_the_union_tags():
    with pytest.raises(ConfigError) as info:
        load_params(PARAMS_FILE, ["training.estimator.max_iter=0", "evaluation.behavioral.1.tolerance=-1"])
    message = str(info.value)
    assert "training.estimator.max_iter: Input should be greater than or equal to 1" in message
    assert "evaluation.behavioral.1.tolerance: Input should be greater than or equal to 0" in message
    assert "hist_gradient_boosting" not in message and "directional" not in message
