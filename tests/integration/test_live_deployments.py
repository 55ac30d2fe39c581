"""The served deployments on a real Prefect server: the exact CI command (`prefect deployment
run 'training-pipeline/training-ci' --watch`, through scripts/training-ci.sh) exits 0 when the
gates pass and non-zero when one fails, with the gate table read back through the API; a burst
of drift events retrains once; and forged events (real events on the real server, as anyone who
reaches its API can emit them) start runs that hold to what the registry says."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import REPO, clear_prefect, deployment_runs, git, make_project, prefect_api
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from prefect.settings import PREFECT_API_URL

    project = make_project(tmp_path_factory.mktemp("live") / "proj")
    # The champion exists before either test: a drift retraining in one test must not be the
    # first registration the other test's CI run expects to make (the order is random).
    assert project.train()["version"] == "1"
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "DRIFTLINE_PROJECT_DIR": str(project.root)}
    log = open(project.root.parent / "serve.log", "wb")  # noqa: SIM115
    server = subprocess.Popen([sys.executable, "-m", "deployments.serve"], cwd=REPO, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while not {"training-ci", "retrain-on-drift"} <= {
            d["name"] for d in prefect_api("POST", "/deployments/filter", {"limit": 200, "offset": 0})}:
        assert server.poll() is None and time.monotonic() < deadline, (project.root.parent / "serve.log").read_text()
        time.sleep(1)
    time.sleep(3)  # the runner starts polling for its runs
    yield project, env
    os.killpg(server.pid, 15)
    server.wait(30)
    log.close()
    clear_prefect()  # the deployments and their triggers outlive the process that served them


def _ci(env: dict, tmp_path) -> tuple[int, str, str]:
    report = tmp_path / "report.md"
    tools = {"PREFECT": f"{sys.executable} -m prefect", "PYTHON": sys.executable, "WATCH_TIMEOUT": "600",
             "REPORT_FILE": str(report)}
    done = subprocess.run(["bash", str(REPO / "scripts" / "training-ci.sh")], cwd=REPO, capture_output=True,
                          text=True, timeout=900, env={**env, **tools})
    return done.returncode, done.stdout + done.stderr, report.read_text() if report.exists() else ""


@pytest.mark.timeout(1200)
def test_the_ci_command_passes_on_good_gates_and_fails_on_a_failed_gate(served, tmp_path):
    project, env = served
    project.commit_params("a new training seed", "training.seed=43")  # a commit that changes the model
    code, out, report = _ci(env, tmp_path)
    assert code == 0, out[-3000:]
    assert "Completed" in out and "registered loan-default version" in report and "as @challenger" in report
    assert "roc_auc" in report

    project.commit_params("raise the roc_auc bar", "evaluation.thresholds.roc_auc.min=0.99")  # a pull request
    try:
        code, out, report = _ci(env, tmp_path)
    finally:  # the module's other tests train this project too: put the bar back
        git(project.root, "revert", "--no-edit", "HEAD")
    assert code != 0, out[-3000:]
    assert "Failed" in out
    assert "rejected" in report and "FAIL" in report.upper()
    assert "roc_auc" in report and ">= 0.99" in report  # failed for the raised bar, not anything else
    assert project.store().aliases().get("champion") == "1"  # production untouched


@pytest.mark.timeout(900)
def test_a_burst_of_drift_events_retrains_once(served):
    from prefect.events import emit_event

    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    for i in range(3):
        emit_event(event="driftline.drift.detected", resource={"prefect.resource.id": "driftline.model.loan-default"},
                   payload={"model_name": "loan-default", "version": "1", "summary": f"test burst {i}"})
    deadline = time.monotonic() + 600
    while True:
        runs = deployment_runs("retrain-on-drift", since)
        final = [r for r in runs if r["state"]["type"] in ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")]
        if len(runs) >= 3 and len(final) == len(runs):
            break
        assert time.monotonic() < deadline, [r["state"]["name"] for r in runs]
        time.sleep(2)
    states = sorted(r["state"]["type"] for r in runs)
    assert states == ["CANCELLED", "CANCELLED", "COMPLETED"], states  # one retraining ran, and it worked
    ran = next(r for r in runs if r["state"]["type"] != "CANCELLED")
    assert ran["parameters"]["reason"] == "drift" and ran["parameters"]["drift_summary"].startswith("test burst")
    assert isinstance(ran["parameters"]["drift_event_at"], float)  # the trigger passed when the event occurred
    # Cancelled for the burst: by the one-at-a-time limit while the retraining ran, or, picked up
    # after it finished, because a retraining that started after their event had answered it.
    why = [r["state"]["message"] for r in runs if r["state"]["type"] == "CANCELLED"]
    assert all("concurrency limit" in m or "answered by the drift retraining" in m for m in why), why
    # The monitor recorded none of this drift: the events were forged, so the retraining that ran
    # kept its distribution check blocking (it passed: the data did not drift).
    said = "no drift recorded by the monitor matches this run's event: the distribution check stays blocking"

    def logged() -> list[str]:  # a run's logs reach the API in batches, after its final state can
        logs = prefect_api("POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [ran["id"]]}}, "limit": 200})
        return [line["message"] for line in logs]
    assert wait_until(lambda: any(said in m for m in logged()), 60, interval=1), logged()[:20]


@pytest.mark.timeout(600)
def test_a_forged_challenger_announcement_rolls_out_nothing(served):
    from prefect.events import emit_event

    from driftline.adapters.registry.tags import AUTO_DEPLOY_LABEL, CHALLENGER_REGISTERED, model_resource

    project, _ = served
    history = project.store().history()
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    # @champion (version 1) announced as a new challenger, to be rolled out blue-green at once.
    emit_event(event=CHALLENGER_REGISTERED,
               resource={"prefect.resource.id": model_resource("loan-default"), "prefect.resource.name": "loan-default",
                         AUTO_DEPLOY_LABEL: "true"},
               payload={"model_name": "loan-default", "version": "1", "strategy": "blue-green"})
    deadline = time.monotonic() + 300
    while not (runs := [r for r in deployment_runs("auto-deploy", since)
                        if r["state"]["type"] in ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")]):
        assert time.monotonic() < deadline, deployment_runs("auto-deploy", since)
        time.sleep(2)
    [run] = runs
    assert run["parameters"]["version"] == "1" and run["state"]["type"] == "FAILED", run["state"]
    message = run["state"]["message"]
    assert "this deployment run asks for what its deployment does not allow" in message, message
    assert "version: '1' is not @challenger" in message, message
    assert "strategy: 'blue-green' is not the deployment's" in message, message
    assert project.store().aliases().get("champion") == "1" and project.store().history() == history


@pytest.mark.timeout(600)
def test_a_drift_run_picked_up_after_a_retraining_answered_its_event_retrains_nothing(served):
    from prefect.deployments import run_deployment

    before = time.time() - 5  # an event that occurred before the retraining below started
    first = run_deployment("training-pipeline/retrain-on-drift", timeout=600,
                           parameters={"drift_summary": "test late: first", "drift_event_at": time.time()})
    assert first.state.is_completed(), first.state
    late = run_deployment("training-pipeline/retrain-on-drift", timeout=600,
                          parameters={"drift_summary": "test late: second", "drift_event_at": before})
    assert late.state.is_cancelled(), late.state
    assert "answered by the drift retraining that started at" in late.state.message
    # Drift seen after that retraining began is not answered by it.
    fresh = run_deployment("training-pipeline/retrain-on-drift", timeout=600,
                           parameters={"drift_summary": "test late: third", "drift_event_at": time.time()})
    assert fresh.state.is_completed(), fresh.state
