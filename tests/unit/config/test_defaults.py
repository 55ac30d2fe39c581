"""A params file without `training:` trains the demo's estimator, and says so."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from driftline.app.cli import app
from driftline.config import parse_params


def test_without_a_training_section_the_demo_estimator_is_chosen_and_named(raw_params, params):
    del raw_params["training"]
    p = parse_params(raw_params)
    # The demo's params.yaml writes the default out (and adds a search, switched off).
    assert p.training == params.training.model_copy(update={"search": None})
    assert p.defaults_chosen() == [
        "training: not in the params file, so the default: hist_gradient_boosting (max_iter=200, "
        "learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=40, l2_regularization=1.0), seed 42"]
    assert params.defaults_chosen() == []


def test_driftline_config_says_which_default_it_chose(raw_params, tmp_path):
    del raw_params["training"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params))
    result = CliRunner().invoke(app, ["config", "--params", str(tmp_path / "params.yaml")])
    assert result.exit_code == 0, result.output
    assert "hist_gradient_boosting" in result.output
    assert "training: not in the params file, so the default: hist_gradient_boosting" in result.output
