"""The end-to-end story, as a user runs it (`driftline demo`), against real services: a Prefect
server (the session's), the served deployments with their triggers, MLflow, DVC in git, the model
server over HTTP with live labelled traffic. Every step is asserted from outside the demo too:
no retraining on normal traffic, one retraining started by the drift event, the cooldown holding
back a second event, the canary started by the challenger event promoting, and a bad challenger
rolled back by the same path."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from driftline.adapters import dvc_data
from driftline.adapters.registry.store import CHAMPION, PREVIOUS, MlflowStore
from driftline.app.project import DEMO_ROWS
from driftline.config import Settings
from tests.integration.conftest import (
    clear_prefect,
    deployment_runs,
    flow_run_events,
    free_port,
    git,
    make_project,
    run_artifact,
)


@pytest.mark.timeout(1500)
def test_the_demo_closes_the_loop_from_drift_to_promotion(tmp_path):
    from prefect.settings import PREFECT_API_URL

    # The demo's own 50,000 rows, not the tests' usual 6,000: a first champion trained on 4,800
    # rows scores the drifted traffic so differently from the retrained one (65,000 rows) that
    # the good canary's score PSI crossed 0.25; on the demo's data it is about 0.1.
    project = make_project(tmp_path / "proj", rows=DEMO_ROWS)
    before = {name: len(deployment_runs(name)) for name in ("retrain-on-drift", "auto-deploy")}
    port = free_port()
    env = {**os.environ, "DRIFTLINE_PROJECT_DIR": str(project.root), "DRIFTLINE_SERVE_PORT": str(port),
           "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run([sys.executable, "-m", "driftline.app.cli", "demo", "--no-keep-serving", "--no-mlflow-ui"],
                          cwd=project.root, env=env, capture_output=True, text=True, timeout=1440)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]

    # Normal traffic: judged normal, no event, no retraining before the drift.
    assert "[no_drift] no drift" in out
    # A shift the champion handles: the features moved, the estimate holds, no event.
    assert "[no_drift] no drift (monitoring.trigger=estimated_performance)" in out
    assert "the estimate holds: no event, no retraining" in out and "estimated roc_auc" in out
    # The harmful shift: the estimate falls before any label is back, one event; the second check
    # right away is held back by the cooldown.
    assert "[drift] drift: estimated_performance: estimated roc_auc" in out
    assert "a second check right away: cooldown (no second event)" in out
    retrains = deployment_runs("retrain-on-drift")[before["retrain-on-drift"]:]
    assert [r["state"]["type"] for r in retrains] == ["COMPLETED"]
    assert retrains[0]["parameters"]["reason"] == "drift" and "drift" in retrains[0]["parameters"]["drift_summary"]
    # The challenger event started the canary that promoted; the bad one was rolled back.
    deploys = deployment_runs("auto-deploy")[before["auto-deploy"]:]
    assert [r["state"]["type"] for r in deploys] == ["COMPLETED", "FAILED"]
    # Rolled back by the analysis of live traffic (not a timeout waiting for it), and said so in an event.
    assert "analysis failed" in deploys[1]["state"]["message"], deploys[1]["state"]["message"]
    assert "not enough traffic" not in deploys[1]["state"]["message"]
    rolled = flow_run_events("driftline.rollout.rolled_back", deploys[1]["id"])
    assert [e["payload"]["version"] for e in rolled] == ["3"] and rolled[0]["payload"]["champion"] == "2"
    # The demo's own registry (a new sandbox each time), and the user's repository as it was.
    assert f"{project.root / '.driftline' / 'demo'} (new for each demo" in out
    demo = Settings(project_dir=project.root, state_dir=project.root / ".driftline" / "demo")
    store = MlflowStore(demo.mlflow_uri, demo.mlflow_artifacts, "driftline", "loan-default").start()
    assert not git(project.root, "status", "--porcelain", "data.dvc"), "the demo left data.dvc changed"
    assert not dvc_data.workspace_changed(project.root, project.root / "data.dvc"), "data/ differs from data.dvc"
    assert "are back as they were before the demo" in out
    aliases = store.aliases()
    assert aliases[CHAMPION] == "2" and aliases[PREVIOUS] == "1" and "challenger" not in aliases
    assert store.versions()[-1].version == "3"
    trained = {v.version: v.tags.get("driftline.reason") for v in store.versions()}
    assert trained["2"] == "drift"
    history = [(h["alias"], h["from"], h["to"]) for h in store.history()]
    assert ("champion", "1", "2") in history and ("challenger", "3", "-") in history
    # The monitor's record: one MLflow run per check, the HTML report with the drift run, the table in Prefect.
    monitors = store.client.search_runs([store.experiment_id], "tags.`driftline.kind` = 'monitor'",
                                        order_by=["attributes.start_time ASC"])
    assert [r.data.tags["driftline.decision"] for r in monitors] == ["no_drift", "no_drift", "drift", "cooldown",
                                                                      "cooldown"]
    assert monitors[2].data.tags["driftline.rules"] == "estimated_performance"
    assert [a.path for a in store.client.list_artifacts(monitors[2].info.run_id, "drift")] == [
        "drift/columns.png", "drift/report.html"]  # the per-column chart and the report
    assert monitors[2].data.metrics["drift_credit_score"] >= 0.1 > monitors[0].data.metrics["drift_credit_score"]
    # The harmless window, judged again once its labels arrived: realized beside what was estimated.
    later = monitors[1].data.metrics
    assert later["label_coverage"] > 0.9 and "estimation_error_roc_auc" in later
    assert "step 4's window judged again on its labels: realized ROC AUC" in out
    table = run_artifact("drift-loan-default", monitors[2].data.tags["driftline.flow_run_id"])
    assert "credit_score" in table and "wasserstein" in table
    assert "none failed" in out
    with pytest.raises(httpx.ConnectError):  # --no-keep-serving: the stack is gone
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    clear_prefect()  # the stack's served deployments outlive it
