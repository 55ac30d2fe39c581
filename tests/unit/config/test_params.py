"""The whole parameter set: the section renamed deployment: -> rollout: is read under its old name for one release."""

from __future__ import annotations

import re
import warnings

import pytest
import yaml

from driftline.config import Canary, ConfigError, Params, Shadow, load_params, parse_params

from ..conftest import PARAMS_FILE


def test_the_old_deployment_section_is_read_as_rollout_with_a_warning_naming_it(raw_params):
    del raw_params["rollout"]
    raw_params["deployment"] = {"strategy": "shadow", "window_seconds": 5}
    with pytest.warns(FutureWarning, match=r"params: `deployment:` is deprecated, it is now `rollout:`"):
        p = parse_params(raw_params)
    assert isinstance(p.rollout, Shadow)
    assert p.rollout.window_seconds == 5


def test_an_old_deployment_override_is_read_as_rollout_with_a_warning_naming_it():
    with pytest.warns(FutureWarning) as caught:
        p = load_params(PARAMS_FILE, ["deployment.window_seconds=5", "deployment.steps=[0.5, 1.0]"])
    assert [str(w.message).split(" is deprecated")[0] for w in caught] == [
        "--set deployment.window_seconds: `deployment.`", "--set deployment.steps: `deployment.`"]
    assert isinstance(p.rollout, Canary)
    assert (p.rollout.window_seconds, p.rollout.steps) == (5, [0.5, 1.0])


def test_the_new_name_reads_without_a_warning(raw_params):
    raw_params["rollout"] = {"window_seconds": 5}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_params(raw_params).rollout.window_seconds == 5


def test_both_names_at_once_are_an_error_naming_the_old_one(raw_params):
    raw_params["deployment"] = {"window_seconds": 5}
    raw_params["rollout"] = {"window_seconds": 6}
    with pytest.raises(ConfigError, match="deployment: renamed rollout, and both are given; keep only rollout"):
        parse_params(raw_params)


def test_params_yaml_shows_every_section_and_says_what_each_key_is_for():
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    assert list(raw) == list(Params.model_fields)
    keys = [line for line in PARAMS_FILE.read_text().splitlines()
            if re.match(r"^ *[a-z_]+:", line) and not line.lstrip().startswith("- ")]
    uncommented = [line for line in keys if "#" not in line and not line.endswith(":")]
    assert not uncommented, uncommented
