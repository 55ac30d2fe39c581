"""The rollout strategies: a discriminated union on `strategy`, each with only its own settings."""

from __future__ import annotations

import pytest

from driftline.config import STRATEGIES, BlueGreen, Canary, ConfigError, Shadow, load_params

from ..conftest import PARAMS_FILE


def test_the_strategy_chooses_the_model_and_canary_is_the_default():
    assert isinstance(load_params(PARAMS_FILE).rollout, Canary)
    assert isinstance(load_params(PARAMS_FILE, ["rollout.window_seconds=5"]).rollout, Canary)
    shadow = load_params(PARAMS_FILE, ["rollout={strategy: shadow, min_agreement: 0.9}"]).rollout
    assert isinstance(shadow, Shadow) and shadow.min_agreement == 0.9
    assert isinstance(load_params(PARAMS_FILE, ["rollout={strategy: blue-green}"]).rollout, BlueGreen)
    assert STRATEGIES == ("canary", "shadow", "blue-green")


def test_an_unknown_strategy_is_rejected_naming_the_key_and_the_choices():
    with pytest.raises(ConfigError) as info:
        load_params(PARAMS_FILE, ["rollout.strategy=big-bang"])
    assert "rollout: strategy 'big-bang' is not one of canary, shadow, blue-green" in str(info.value)


def test_a_setting_of_another_strategy_is_rejected_naming_its_key():
    with pytest.raises(ConfigError) as info:
        load_params(PARAMS_FILE, ["rollout={strategy: blue-green, steps: [0.5]}"])
    assert "rollout.steps: Extra inputs are not permitted (a key of canary, not of blue-green)" in str(info.value)


def test_switching_strategy_in_place_names_the_keys_the_new_one_does_not_take():
    # params.yaml writes out the canary's keys, so `--set rollout.strategy=shadow` alone is refused, clearly.
    with pytest.raises(ConfigError) as info:
        load_params(PARAMS_FILE, ["rollout.strategy=shadow"])
    assert str(info.value).splitlines()[1:] == ["rollout.steps: Extra inputs are not permitted "
                                                "(a key of canary, not of shadow)"]


def test_another_strategy_keeps_the_shared_settings_and_takes_its_own_defaults():
    canary = Canary(steps=[0.5], window_seconds=5, max_wait_seconds=30)
    shadow = canary.as_strategy("shadow")
    assert isinstance(shadow, Shadow)
    assert (shadow.window_seconds, shadow.max_wait_seconds, shadow.min_agreement) == (5, 30, 0.8)
    blue_green = canary.as_strategy("blue-green")
    assert (blue_green.max_wait_seconds, blue_green.smoke_requests) == (30, 50)
    assert canary.as_strategy("canary") is canary


def test_each_strategy_says_its_traffic_stages():
    assert Canary(steps=[0.1, 1.0]).stages == [("canary", 0.1), ("canary", 1.0)]
    assert Shadow().stages == [("shadow", 0.0)]
    assert BlueGreen().stages == [("blue-green", 0.0)]
