"""A deployment run asks only for what its deployment allows: anyone who reaches the Prefect API
can start one, with any parameters. Each attack is a real `create_flow_run` against deployments
served by `deployments.serve` on the session's Prefect server, and each fails before any work,
naming the parameter; a run that only tunes goes through."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from tests.integration.conftest import REPO, clear_prefect, committed, make_project, prefect_api
from tests.waiting import wait_until

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, prefect_server):
    root = tmp_path_factory.mktemp("control")
    project = make_project(root / "proj")
    assert project.train()["version"] == "1"
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "DRIFTLINE_PROJECT_DIR": str(project.root)}
    log = root / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen([sys.executable, "-m", "deployments.serve"], cwd=REPO, env=env, stdout=sink,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_until(lambda: server.poll() is None and {"training-ci", "canary", "drift-monitor"} <= set(
            _deployments()), 180, interval=1), log.read_text()[-3000:]
        time.sleep(3)  # the runner starts polling for its runs
        yield project, root
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)
        clear_prefect()


def _deployments() -> dict[str, str]:
    return {d["name"]: d["id"] for d in prefect_api("POST", "/deployments/filter", {"limit": 200, "offset": 0})}


def _run(name: str, parameters: dict) -> dict:
    """A run of deployment `name` with `parameters`, as an anonymous API call starts it; its final state."""
    run = prefect_api("POST", f"/deployments/{_deployments()[name]}/create_flow_run", {"parameters": parameters})
    final = wait_until(lambda: (r := prefect_api("GET", f"/flow_runs/{run['id']}"))["state"]["type"] in FINAL and r,
                       300, interval=1)
    assert final, f"run {run['id']} did not finish"
    return final


def _versions(project) -> set[str]:
    return {str(v.version) for v in project.store().client.search_model_versions("name='loan-default'")}


def _refused(run: dict, needle: str) -> None:
    assert run["state"]["type"] == "FAILED", run["state"]
    assert "this deployment run asks for what its deployment does not allow" in run["state"]["message"], run["state"]
    assert needle in run["state"]["message"], run["state"]["message"]


def test_a_params_file_outside_the_project_is_refused_and_its_code_never_runs(served, tmp_path):
    project, _ = served
    before = _versions(project)  # another test of this module may have registered a version already
    marker = tmp_path / "ran"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    raw = yaml.safe_load(committed("params.yaml"))
    raw["data"]["derived"].append({"kind": "custom", "name": "evil", "function": "evil:f", "columns": ["age"]})
    (elsewhere / "params.yaml").write_text(yaml.safe_dump(raw))
    (elsewhere / "evil.py").write_text(textwrap.dedent(f"""
        from pathlib import Path
        Path({str(marker)!r}).write_text("ran")
        def f(x):
            return x["age"] * 0
    """))
    run = _run("training-ci", {"params_path": str(elsewhere / "params.yaml")})
    _refused(run, f"params_path: {str(elsewhere / 'params.yaml')!r} resolves to")
    relative = os.path.relpath(elsewhere / "params.yaml", project.root)  # ../../… out of the project
    _refused(_run("training-ci", {"params_path": relative}), "outside the project")
    assert not marker.exists()
    assert _versions(project) == before


@pytest.mark.parametrize(("deployment", "parameters", "needle"), [
    ("training-ci", {"overrides": ["evaluation.thresholds={}"]}, "overrides: evaluation: decides what the run accepts"),
    ("training-ci", {"overrides": ["validation.distribution.enabled=false"]}, "overrides: validation:"),
    ("training-ci", {"overrides": ["training.estimator={kind: random_forest}"]},
     "overrides: training.estimator.kind: chooses the code the run executes"),
    ("training-ci", {"reason": "drift"}, "reason: a deployment run cannot set it (the deployment's is 'ci')"),
    ("training-ci", {"dask_address": "tcp://203.0.113.9:8786"}, "dask_address: a deployment run cannot set it"),
    ("training-ci", {"project_dir": "/tmp"}, "project_dir: a deployment run cannot set it"),
    ("canary", {"force": True}, "force: a deployment run cannot set it"),
    ("canary", {"lease_ttl_seconds": 1e9}, "lease_ttl_seconds: a deployment run cannot set it"),
    ("canary", {"overrides": ["rollout.max_error_rate=1.0"]}, "overrides: rollout.max_error_rate:"),
    ("drift-monitor", {"overrides": ["monitoring.drift_share=0.01"]}, "overrides: monitoring:"),
])
def test_a_deployment_run_cannot_loosen_a_check_or_take_what_the_deployment_holds(served, deployment, parameters,
                                                                                   needle):
    _refused(_run(deployment, parameters), needle)


def test_a_run_that_only_tunes_goes_through(served):
    project, _ = served
    before = _versions(project)
    run = _run("training-ci", {"overrides": ["training.seed=7", "training.estimator.max_iter=60"]})
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert len(_versions(project) - before) == 1
