"""The bring-your-own-model guide's examples are the ones that work: each YAML block is a valid
`training:` section on the demo's params, each command's overrides pass `driftline config`, and the
example factories train."""

from __future__ import annotations

import re
import shlex
import shutil

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from driftline.app.cli import app
from driftline.config import load_params
from driftline.core import frames, training
from tests.unit.conftest import PARAMS_FILE, REPO

PAGE = (REPO / "docs" / "guides" / "your-model.md").read_text()
YAML_BLOCKS = [b for b in re.findall(r"```yaml\n(.*?)```", PAGE, re.S) if "training:" in b]
COMMANDS = [shlex.split(c) for c in re.findall(r"```bash\n(.*?)```", PAGE, re.S) if "driftline train" in c]


def test_the_page_shows_each_kind_with_an_example():
    kinds = {yaml.safe_load(b)["training"]["estimator"]["kind"] for b in YAML_BLOCKS}
    assert kinds >= {"xgboost", "lightgbm", "sklearn", "custom"}
    assert len(COMMANDS) >= 4


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=lambda b: yaml.safe_load(b)["training"]["estimator"]["kind"])
def test_each_yaml_example_is_a_valid_training_section(block, tmp_path):
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["training"] = {**raw["training"], **yaml.safe_load(block)["training"]}
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    assert load_params(tmp_path / "params.yaml").training.estimator.kind in block


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[c.index("--set") + 1][:40])
def test_each_command_passes_driftline_config(command, monkeypatch):
    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(REPO))
    overrides = command[command.index("train") + 1:]
    result = CliRunner().invoke(app, ["config", *overrides])
    assert result.exit_code == 0, result.output
    assert ": valid (binary" in result.output


@pytest.mark.parametrize("factory", ["make_model", "own_pipeline"])
def test_the_example_factories_train(factory, loans, tmp_path):
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    shutil.copy(PARAMS_FILE, tmp_path / "params.yaml")
    none = ", preprocessing: none" if factory == "own_pipeline" else ""
    estimator = f"{{kind: custom, factory: 'examples.models.credit:{factory}', params: {{max_iter: 30}}{none}}}"
    p = load_params(tmp_path / "params.yaml", [f"training.estimator={estimator}", "training.search=null"])
    parts = training.split(loans, p)
    model = training.train(parts.train, p)
    score = model.predict_proba(frames.features(parts.holdout, p.data))[:, 1]
    assert np.corrcoef(score, frames.target(parts.holdout, p.data))[0, 1] > 0.2  # it learned the risk
