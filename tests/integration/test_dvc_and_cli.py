"""`dvc repro` gives the flow's metrics; `driftline init` works on a fresh clone; the CLI's exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from driftline.adapters import dvc_data
from driftline.adapters.registry.store import CHAMPION
from driftline.app.cli import app
from tests.integration.conftest import REPO, committed, git, make_project


def test_dvc_repro_gives_the_same_metrics_as_the_prefect_flow(project):
    # dvc.yaml lists the library's source files as dependencies, as in the real repository.
    (project.root / "driftline").symlink_to(REPO / "driftline")
    result = project.train()
    flow_metrics = project.store().client.get_run(result["run_id"]).data.metrics
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    repro = json.loads((project.root / "metrics.json").read_text())
    assert repro, "dvc repro wrote no metrics"
    for name, value in repro.items():
        assert flow_metrics[name] == value, name


def test_dvc_repro_stops_at_validation_on_broken_data(project):
    (project.root / "driftline").symlink_to(REPO / "driftline")
    from driftline.core import demo_data

    project.write_data(demo_data.generate(3000, 7).drop(columns=["credit_score"]))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "missing columns: credit_score" in out
    assert not (project.root / "metrics.json").exists(), "a stage after validation ran"


def test_init_on_a_fresh_clone_regenerates_checks_and_pushes_the_demo_data(tmp_path, monkeypatch):
    """What `make demo` does first on a new machine: the remote is empty, data.dvc is committed."""
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q")
    for name in ("params.yaml", "dvc.yaml", ".gitignore", ".dvcignore"):
        (origin / name).write_bytes(committed(name))
    (origin / ".dvc").mkdir()
    for name in ("config", ".gitignore"):
        (origin / ".dvc" / name).write_bytes(committed(f".dvc/{name}"))
    (origin / "data.dvc").write_bytes(committed("data.dvc"))
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "as committed")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(clone))

    runner = CliRunner()
    first = runner.invoke(app, ["init"])
    assert first.exit_code == 0, first.output
    assert "regenerated the demo data; md5" in first.output and "matches data.dvc" in first.output
    assert "pushed" in first.output
    assert not git(clone, "status", "--porcelain", "data.dvc"), "init rewrote data.dvc"
    remote = clone / ".driftline" / "dvc-remote"
    assert any(remote.rglob("*")), "nothing was pushed to the local remote"

    # Idempotent, and the pull step is now a real `dvc pull` from the remote.
    again = runner.invoke(app, ["init"])
    assert again.exit_code == 0, again.output
    assert "matches data.dvc" in again.output and "already up to date" in again.output
    (clone / "data" / "loans.parquet").unlink()
    (clone / ".dvc" / "cache").rename(tmp_path / "old-cache")
    dvc_data.pull(clone, clone / "data.dvc")
    assert (clone / "data" / "loans.parquet").exists()


def test_cli_train_status_and_exit_codes(project, monkeypatch):
    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(project.root))
    runner = CliRunner()

    bad = runner.invoke(app, ["train", "--set", "training.estimator.max_iter=-3"])
    assert bad.exit_code == 2
    assert "training.estimator.max_iter" in bad.output and "greater than or equal to 1" in bad.output

    typo = runner.invoke(app, ["train", "--set", "training.estimatr.kind=ridge"])
    assert typo.exit_code == 2 and "training.estimatr" in typo.output and "Extra inputs" in typo.output

    gate = runner.invoke(app, ["train", "--set", "evaluation.thresholds.accuracy.min=0.999"])
    assert gate.exit_code == 1
    assert "training stopped at gates" in gate.output and "holdout accuracy" in gate.output

    ok = runner.invoke(app, ["train", "--reason", "cli-test"])
    assert ok.exit_code == 0, ok.output
    assert "as @champion" in ok.output and "MLflow run:" in ok.output and "Model version:" in ok.output

    status = runner.invoke(app, ["status", "--json"])
    doc = json.loads(status.output)
    assert doc["versions"][0]["aliases"] == [CHAMPION]
    assert doc["versions"][0]["reason"] == "cli-test" and doc["versions"][0]["metrics"]["roc_auc"] > 0.8

    schema = runner.invoke(app, ["config", "--schema"])
    assert schema.exit_code == 0
    assert "estimator" in json.loads(schema.output)["$defs"]["TrainingConfig"]["properties"]


def test_bring_your_own_regression_csv(tmp_path):
    """Any tabular CSV works through a params file alone: here a regression with categoricals."""
    project = make_project(tmp_path / "byod", rows=3000)
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame({"size_m2": rng.uniform(20, 200, n), "rooms": rng.integers(1, 7, n).astype(float),
                          "city": rng.choice(["lyon", "paris", "nantes"], n)})
    frame.loc[rng.random(n) < 0.05, "rooms"] = np.nan
    frame["price"] = 3000 * frame["size_m2"] * frame["city"].map({"lyon": 1.0, "paris": 2.5, "nantes": 0.8}) \
        + rng.normal(0, 20_000, n)
    frame.to_csv(project.root / "data" / "houses.csv", index=False)
    dvc_data.push(project.root, dvc_data.add(project.root, "data"))
    (project.root / "houses.yaml").write_text("""
data:
  path: data/houses.csv
  target: price
  task: regression
  max_null_rate: 0.1
  features:
    - {name: size_m2, type: numeric, min: 0}
    - {name: rooms, type: numeric}
    - {name: city, type: categorical}
training:
  estimator: {kind: ridge, alpha: 1.0}
evaluation:
  primary_metric: r2
  thresholds: {r2: {min: 0.5}}
registry:
  model_name: houses
""")
    result = project.train(params="houses.yaml")
    assert result["status"] == "registered" and result["metrics"]["r2"] > 0.5
    assert project.store("houses").version_by_alias(CHAMPION).version == "1"
