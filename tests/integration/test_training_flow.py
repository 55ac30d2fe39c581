"""The training pipeline end to end against a real Prefect server, MLflow on SQLite and DVC."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import mlflow.artifacts
import mlflow.pyfunc
import numpy as np
import pytest
from mlflow.models import Model

from driftline.adapters.registry.store import CHALLENGER, CHAMPION
from driftline.config import load_params
from driftline.core import demo_data, frames, training
from driftline.errors import GatesFailed
from tests.integration.conftest import git, prefect_api, run_artifact
from tests.waiting import wait_until


def test_first_run_registers_the_first_champion_with_full_lineage(project):
    result = project.train()
    assert result["status"] == "registered"
    store = project.store()
    champion = store.version_by_alias(CHAMPION)
    assert champion is not None and champion.version == result["version"] == "1"
    assert store.version_by_alias(CHALLENGER) is None

    run = store.client.get_run(champion.run_id)
    md5 = (project.root / "data.dvc").read_text().split("md5: ")[1].split()[0]
    assert run.data.tags["driftline.dvc_md5"] == md5
    assert run.data.tags["driftline.git_commit"] == git(project.root, "rev-parse", "HEAD").strip()
    for tag in ("driftline.params_hash", "driftline.uv_lock_hash", "driftline.code_hash"):
        assert run.data.tags[tag]
    assert run.data.tags["driftline.reason"] == "test"
    assert run.data.metrics["holdout_roc_auc"] > 0.8
    assert run.data.params["estimator.kind"] == "hist_gradient_boosting"
    # The dataset is an MLflow input whose digest is the DVC md5.
    inputs = run.inputs.dataset_inputs
    assert [d.dataset.digest for d in inputs] == [md5]
    # The model carries its signature and input example, and a training reference sample.
    artifacts = {a.path for a in store.client.list_artifacts(champion.run_id)}
    assert {"reference", "validation", "report.md"} <= artifacts
    p = load_params(project.root / "params.yaml")
    meta = Model.load(f"models:/loan-default/{champion.version}")
    assert meta.signature.inputs.input_names() == p.data.feature_names
    assert meta.signature.outputs is not None
    example = meta.load_input_example(mlflow.artifacts.download_artifacts(f"models:/loan-default/{champion.version}"))
    assert list(example.columns) == p.data.feature_names and len(example) > 0
    requirements = mlflow.pyfunc.get_model_dependencies(f"models:/loan-default/{champion.version}")
    pinned = Path(requirements).read_text().split()
    for name in ("scikit-learn", "pandas", "numpy", "cloudpickle"):
        assert f"{name}=={version(name)}" in pinned, pinned
    model = store.load_model(champion)
    reference = store.load_reference(champion)
    assert reference is not None and "prediction" in reference.columns
    assert model.predict_proba(frames.features(reference.head(10), p.data)).shape == (10, 2)


def test_report_artifact_has_the_gate_table_and_mlflow_link(project):
    result = project.train()

    flow_run_id = project.store().client.get_run(result["run_id"]).data.tags["driftline.flow_run_id"]
    text = run_artifact("training-loan-default", flow_run_id)
    assert "| gate | challenger | champion | threshold | result |" in text
    assert "holdout roc_auc" in text and "fairness" in text and "behavioral" in text
    assert result["run_id"] in text and "#/experiments/" in text


def test_second_model_becomes_challenger_and_champion_is_untouched(project, monkeypatch):
    project.train()
    result = project.train("training.seed=7", "registry.description='Approves loans under 50k'")
    assert result["status"] == "registered" and result["version"] == "2"
    store = project.store()
    assert store.version_by_alias(CHAMPION).version == "1"
    assert store.version_by_alias(CHALLENGER).version == "2"
    run = store.client.get_run(result["run_id"])
    assert "delta_ci_low" in run.data.metrics and "champion_roc_auc" in run.data.metrics
    # Its pictures, the champion's curves and the bootstrap among them, linked from the report.
    pictures = [a.path for a in store.client.list_artifacts(result["run_id"], "plots")]
    assert pictures == [f"plots/{n}.png" for n in ("behavioral", "bootstrap", "calibration", "confusion_matrix",
                                                   "permutation_importance", "roc_pr", "score_distribution",
                                                   "slices")]
    text = run_artifact("training-loan-default", run.data.tags["driftline.flow_run_id"])
    assert f"[roc_pr]({store.run_url(project.settings.mlflow_ui_url, result['run_id'])}/artifacts/plots/roc_pr.png)" \
        in text
    # Its model card, with the champion's metrics beside its own, printed by `driftline card`.
    from typer.testing import CliRunner

    from driftline.app.cli import app

    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(project.root))
    printed = CliRunner().invoke(app, ["card", "--version", "2"])
    assert printed.exit_code == 0, printed.output
    champion_auc = run.data.metrics["champion_roc_auc"]
    assert "# Model card: loan-default version 2" in printed.output and "Approves loans under 50k" in printed.output
    assert f"| roc_auc | {run.data.metrics['holdout_roc_auc']:.4f} | {champion_auc:.4f} |" in printed.output
    assert run.data.tags["driftline.git_commit"] in printed.output and "## Known limitations" in printed.output
    first = CliRunner().invoke(app, ["card"])  # @champion: version 1, which had no champion to compare
    assert "# Model card: loan-default version 1" in first.output and "| roc_auc |" in first.output
    assert "<table>" in CliRunner().invoke(app, ["card", "--version", "2", "--html"]).output
    assert CliRunner().invoke(app, ["card", "--version", "9"]).exit_code == 2


def test_a_clearly_worse_challenger_is_refused_by_the_bootstrap_gate(project):
    project.train()
    store = project.store()
    before = store.versions()
    # A crippled model that clears no absolute threshold we keep: only the comparison decides.
    with pytest.raises(GatesFailed) as failed:
        project.train("training.estimator={kind: hist_gradient_boosting, max_iter: 3, max_depth: 1}",
                      "evaluation.thresholds={}", "evaluation.behavioral=[]", "evaluation.fairness=[]")
    assert "vs champion" in failed.value.paragraph and "worse than" in failed.value.paragraph
    assert "1 of 1 gates failed" in failed.value.paragraph
    assert [v.version for v in store.versions()] == [v.version for v in before]
    assert store.version_by_alias(CHAMPION).version == "1"
    assert store.version_by_alias(CHALLENGER) is None
    rejected = store.client.search_runs([store.experiment_id], "tags.`driftline.outcome` = 'rejected'")
    assert len(rejected) == 1 and rejected[0].info.status == "FAILED"


def test_absolute_gate_failure_without_champion_registers_nothing(project):
    with pytest.raises(GatesFailed) as failed:
        project.train("evaluation.thresholds.roc_auc.min=0.99")
    assert "holdout roc_auc" in failed.value.paragraph and ">= 0.99" in failed.value.paragraph
    assert project.store().versions() == []


def test_unchanged_inputs_skip_the_work_and_a_failed_gate_rerun_hits_the_cache(project):
    first = project.train()
    again = project.train()
    assert again["status"] == "unchanged" and again["version"] == first["version"]
    assert len(project.store().versions()) == 1

    # Nothing registered for a failing run: the rerun replays validation, training and
    # evaluation from Prefect's cache and fails the same way.
    override = "evaluation.thresholds.roc_auc.min=0.99"
    first_fail, states = _train_states(project, "training.seed=3", override)
    assert first_fail.is_failed() and states["train-model"] == "Completed"
    again, states = _train_states(project, "training.seed=3", override)
    assert again.is_failed() and "roc_auc" in str(again.message)
    assert states["train-model"] == "Cached" and states["evaluate-model"] == "Cached"
    assert states["validate-data"] == "Cached"


def test_a_threshold_only_change_does_not_retrain(project):
    project.train()
    state, states = _train_states(project, "evaluation.decision_threshold=0.35")
    assert state.is_completed() and state.result()["version"] == "2"
    assert states["train-model"] == "Cached" and states["evaluate-model"] == "Completed"
    assert project.store().load_model(project.store().versions()[-1]).threshold == 0.35


def _train_states(project, *overrides: str):
    """One training run's final state and its own task runs' states (never the newest on the server)."""
    from flows.training import training_pipeline

    state = training_pipeline(overrides=list(overrides), reason="test", project_dir=str(project.root),
                              return_state=True)

    def recorded():
        # Task states reach the server as events: on a busy server a task run may exist a moment
        # before its final state does.
        found = prefect_api("POST", "/task_runs/filter", {
            "flow_runs": {"id": {"any_": [str(state.state_details.flow_run_id)]}}, "limit": 200, "offset": 0,
            "sort": "ID_DESC"})
        return found if found and all(t["state"] and t["state"]["type"] not in ("PENDING", "RUNNING")
                                      for t in found) else None

    tasks = wait_until(recorded, 60)
    assert tasks, "the flow run's task states did not all arrive within 60 s"
    return state, {t["name"].rsplit("-", 1)[0]: t["state"]["name"] for t in tasks}


def test_same_data_params_and_code_give_bit_identical_models(tmp_path):
    from tests.integration.conftest import make_project

    a, b = make_project(tmp_path / "a"), make_project(tmp_path / "b")
    ra, rb = a.train(), b.train()
    ma, mb = a.store().client.get_run(ra["run_id"]).data.metrics, b.store().client.get_run(rb["run_id"]).data.metrics
    assert {k: v for k, v in ma.items()} == {k: v for k, v in mb.items()}
    p = load_params(a.root / "params.yaml")
    holdout = training.split(demo_data.generate(6000, 7), p).holdout
    x = frames.features(holdout, p.data)
    pa = a.store().load_model(a.store().version_by_alias(CHAMPION)).predict_proba(x)
    pb = b.store().load_model(b.store().version_by_alias(CHAMPION)).predict_proba(x)
    assert np.array_equal(pa, pb)


def test_the_registered_model_decides_at_the_gated_threshold(project):
    project.train()
    store = project.store()
    model = store.load_model(store.version_by_alias(CHAMPION))
    p = load_params(project.root / "params.yaml")
    assert model.threshold == p.evaluation.decision_threshold == 0.3
    x = frames.features(demo_data.generate(500, 3), p.data)
    assert np.array_equal(model.predict(x), (model.predict_proba(x)[:, 1] >= 0.3).astype(int))


def _params_without(project, feature: str, name: str) -> str:
    import yaml

    raw = yaml.safe_load((project.root / "params.yaml").read_text())
    raw["data"]["features"] = [f for f in raw["data"]["features"] if f["name"] != feature]
    raw["evaluation"]["behavioral"] = [t for t in raw["evaluation"]["behavioral"] if t.get("feature") != feature]
    raw["validation"]["allow_extra_columns"] = True
    (project.root / name).write_text(yaml.safe_dump(raw))
    return name


def test_a_feature_dropped_from_the_config_is_compared_on_the_champions_own_features(project):
    project.train()
    params = _params_without(project, "application_channel", "fewer.yaml")
    result = project.train(params=params)
    assert result["status"] == "registered" and result["version"] == "2"
    gate = next(g for g in result["gates"] if g["name"].startswith("vs champion"))
    assert gate["passed"] and "holdout rows the champion never trained on" in gate["detail"]
    assert project.store().version_by_alias(CHALLENGER).version == "2"


def test_a_champion_that_cannot_be_scored_on_the_new_data_blocks_replacement(project):
    project.train()
    params = _params_without(project, "application_channel", "fewer.yaml")
    project.write_data(demo_data.generate(6000, 7).drop(columns=["application_channel"]))
    with pytest.raises(GatesFailed) as failed:
        project.train(params=params)
    assert "cannot be scored on this data" in failed.value.paragraph
    assert "application_channel" in failed.value.paragraph
    store = project.store()
    assert store.version_by_alias(CHAMPION).version == "1" and store.version_by_alias(CHALLENGER) is None


def test_a_drift_retraining_records_what_the_monitor_saw(project):
    from flows.training import training_pipeline

    summary = "drift: 57% of features drifted (age, annual_income, ...)"
    result = training_pipeline(reason="drift", drift_summary=summary, project_dir=str(project.root))
    tags = project.store().client.get_run(result["run_id"]).data.tags
    assert tags["driftline.reason"] == "drift" and tags["driftline.drift_summary"] == summary


def test_a_registration_whose_run_cannot_be_recorded_is_undone(project, monkeypatch):
    """Registration is one transaction: the record failing rolls the new version (and its alias) back."""
    from driftline.adapters.registry import training_run

    def stopped(*args, **kwargs):
        raise RuntimeError("the registry stopped answering")

    monkeypatch.setattr(training_run, "record_registered", stopped)
    with pytest.raises(RuntimeError, match="stopped answering"):
        project.train()
    store = project.store()
    assert store.versions() == [] and store.aliases() == {}
