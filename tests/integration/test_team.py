"""`driftline up --profile team` for real: PostgreSQL, the Prefect server and `mlflow server` on
it, artifacts on S3 (moto's server on loopback), a process work pool with two workers running
the deployments of prefect.yaml, and two model server replicas. CI's command runs a training on
a worker; everything it wrote is found where the team profile says."""

from __future__ import annotations

import re
import shutil
import time

import httpx
import psutil
import psycopg
import pytest

from driftline.adapters.registry.lease import ROLLOUT, Lease
from driftline.adapters.registry.store import CHALLENGER, CHAMPION
from driftline.adapters.serving_client import client_records
from driftline.config import load_params
from driftline.core import demo_data, frames
from driftline.serving.loader import STRATEGY_TAG, WEIGHT_TAG
from tests.integration.conftest import REPO
from tests.team_stack import BUCKET, HAS_POSTGRES, TOKEN, WHY_NO_POSTGRES, Team, moto_s3, team
from tests.waiting import wait_until

pytestmark = pytest.mark.skipif(not HAS_POSTGRES, reason=WHY_NO_POSTGRES)


@pytest.fixture(scope="module")
def s3():
    with moto_s3() as server:
        yield server


@pytest.mark.timeout(900)
def test_the_team_profile_runs_ci_on_a_worker_with_state_in_postgres_and_artifacts_on_s3(tmp_path, s3):
    s3_env, bucket = s3
    stack = team(tmp_path / "proj", s3_env)
    pg_port = stack.pg_port
    stack.start()
    try:
        out, started = stack.out, stack.started_seconds
        assert f"PostgreSQL: postgresql://driftline:***@127.0.0.1:{pg_port}" in out, out
        password = stack.password
        assert password not in out
        assert "Workers: 2 on driftline-process" in out and "training-ci" in out, out
        assert "Crash detection: a flow run without a heartbeat for 90 s is marked Crashed" in out, out

        # The control plane answers only with credentials, and only its own UI's origin.
        assert httpx.get(f"{stack.api}/deployments/name/training-pipeline/training-ci", timeout=10).status_code == 401
        assert httpx.post(f"{stack.api}/flow_runs/filter", json={}, timeout=10).status_code in (401, 403)
        assert httpx.get(f"{stack.tracking}/api/2.0/mlflow/registered-models/search", timeout=10).status_code == 401
        assert httpx.get(f"{stack.tracking}/health", timeout=10).status_code == 200  # liveness stays open
        preflight = httpx.options(f"{stack.api}/flow_runs/filter", timeout=10, headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
        assert preflight.headers.get("access-control-allow-origin") is None, dict(preflight.headers)
        for secret in (":".join(stack.prefect_auth), stack.mlflow_env["MLFLOW_TRACKING_PASSWORD"]):
            assert secret not in out

        # CI's command, against the team's server: without the auth string it is refused; with it
        # the run is executed by a worker of the pool and its gate table read back.
        code, ci_out = stack.ci(tmp_path / "refused.md", auth=False)
        assert code != 0 and "401" in ci_out and not (tmp_path / "refused.md").exists(), ci_out[-2000:]
        began_run = time.monotonic()
        code, ci_out = stack.ci(tmp_path / "report.md")
        ran = time.monotonic() - began_run
        assert code == 0, ci_out[-3000:]
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", ci_out).group(1)
        assert "registered loan-default version 1" in (tmp_path / "report.md").read_text()
        run = stack.flow_run(run_id)
        assert run["state"]["type"] == "COMPLETED" and run["work_pool_name"] == "driftline-process", run
        # Which worker took it: the worker's own event, related to the run.
        submitted = wait_until(lambda: stack.events("prefect.worker.submitted-flow-run", run_id), 30)
        assert [e["resource"]["prefect.resource.name"] for e in submitted] in (
            ["driftline-worker-1"], ["driftline-worker-2"]), submitted

        # A run's job variables cannot carry a shell command, an environment or a directory to the workers.
        marker = tmp_path / "shell-ran"
        found = stack.api_call("GET", "/deployments/name/training-pipeline/training-ci")["id"]
        try:
            forged = stack.api_call("POST", f"/deployments/{found}/create_flow_run", {"job_variables": {
                "command": f"touch {marker}", "env": {"PYTHONSTARTUP": str(marker)}, "working_dir": "/tmp"}})["id"]
        except httpx.HTTPStatusError as err:
            assert err.response.status_code == 422, err.response.text  # noqa: PT017 - refused at the door is a pass
        else:
            assert wait_until(lambda: stack.flow_run(forged)["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED"),
                              300, interval=1)
        assert not marker.exists()

        # All state in PostgreSQL: the flow run in Prefect's database, the version in MLflow's.
        pg = f"postgresql://driftline:{password}@127.0.0.1:{pg_port}"
        with pytest.raises(psycopg.OperationalError, match="password"):  # no trust: a password is required
            psycopg.connect(f"postgresql://driftline@127.0.0.1:{pg_port}/prefect", connect_timeout=5).close()
        with psycopg.connect(f"{pg}/prefect") as conn:
            assert conn.execute("SELECT count(*) FROM flow_run WHERE id = %s", (run_id,)).fetchone() == (1,)
        with psycopg.connect(f"{pg}/mlflow") as conn:
            assert conn.execute("SELECT version FROM model_versions WHERE name = 'loan-default'").fetchall() == [(1,)]
            alias = conn.execute("SELECT version FROM registered_model_aliases WHERE alias = 'champion'").fetchall()
        assert alias == [(1,)]
        # Artifacts on S3, through the tracking server's proxy.
        keys = [o["Key"] for o in bucket.list_objects_v2(Bucket=BUCKET, Prefix="mlflow/").get("Contents", [])]
        assert any(k.endswith("/MLmodel") for k in keys), keys[:20]
        assert not (stack.project.root / ".driftline" / "mlartifacts").exists()
        # Both production replicas serve the new champion.
        replicas = stack.replicas
        for port in replicas:
            assert wait_until(lambda p=port: _ready(p) == "1", 60), port
        converged = _replicas_agree(stack)
        print(f"team stack up in {started:.1f} s; CI training run on a worker in {ran:.1f} s; "
              f"replicas on the promoted version {converged:.2f} s after the alias moved")
    finally:
        code, rest = stack.stop()
    assert code == 0, rest
    assert "stopped the PostgreSQL" in rest and "stopped the worker 2" in rest, rest
    _, alive = psutil.wait_procs(stack.children, timeout=30)
    assert alive == [], [p.cmdline() for p in alive]


def _replicas_agree(stack) -> float:
    """A challenger trained on a worker, a canary at 0.5: both replicas give every request id the
    same arm. Then @champion moves to it: both serve it, the seconds that took returned."""
    stack.run("training-pipeline/training-ci", "training.seed=7")
    store = stack.store()
    assert store.aliases().get(CHALLENGER) == "2", store.aliases()
    # The staging server, on the port after the replicas, serves the challenger alone.
    staging, replicas = stack.staging_port, stack.replicas
    assert wait_until(lambda: (m := stack.models(staging))["role"] == "staging" and m["loaded"] == ["2"], 30), \
        stack.models(staging)
    lease = Lease(store, ROLLOUT, "test_team", 600)  # rollout tags count only under a live lease
    assert lease.acquire()
    try:
        store.set_model_tags({STRATEGY_TAG: "canary", WEIGHT_TAG: "0.5"})
        for port in replicas:
            assert wait_until(lambda p=port: (m := stack.models(p))["challenger"] == "2"
                              and m["challenger_weight"] == 0.5, 60), stack.models(port)
        record = client_records(frames.features(demo_data.generate(1, 5), load_params(REPO / "params.yaml").data))[0]
        arms = {port: [httpx.post(f"http://127.0.0.1:{port}/predict", json=record, headers={
            "authorization": f"Bearer {TOKEN}", "x-request-id": f"team-{i}"}).json()["variant"] for i in range(40)]
            for port in replicas}
        assert arms[replicas[0]] == arms[replicas[1]] and set(arms[replicas[0]]) == {"champion", "challenger"}
        store.move_alias(CHAMPION, "2", "test_team: promote")
        moved = time.monotonic()
        store.set_model_tags({STRATEGY_TAG: "none", WEIGHT_TAG: "0"})
        # One poll interval (1 s) is the goal; a loaded 2-core machine gets a few more.
        promoted = wait_until(lambda: all(stack.models(p)["champion"] == "2" for p in replicas), 5)
        assert promoted, [stack.models(p) for p in replicas]
        return time.monotonic() - moved
    finally:
        lease.release()


def _ready(port: int) -> str | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).json().get("champion")
    except (httpx.HTTPError, ValueError):
        return None


def test_an_unknown_profile_is_refused_naming_the_option():
    from typer.testing import CliRunner

    from driftline.app.cli import app

    result = CliRunner().invoke(app, ["up", "--profile", "cluster"])
    assert result.exit_code == 2 and "--profile: 'cluster' is not one of embedded, team" in result.output


@pytest.mark.timeout(900)
def test_drift_in_the_replicas_traffic_retrains_on_a_worker(tmp_path, s3):
    """The loop's last leg on the team profile: traffic on both replicas drifts, the drift-monitor
    deployment (its hourly schedule, run now) judges the replicas' prediction log and emits
    `driftline.drift.detected`, and the `retrain-on-drift` trigger's run executes on a worker."""
    stack = team(tmp_path / "proj", s3[0])
    stack.project.commit_params("no drift cooldown", "monitoring.cooldown_hours=0.0")  # the champion is minutes old
    stack.start()
    try:
        stack.run("training-pipeline/training-ci")
        for port in stack.replicas:
            assert wait_until(lambda p=port: _ready(p) == "1", 60), port
        began = time.monotonic()
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        drifted = client_records(frames.features(demo_data.generate(600, 11, "covariate_shift"),
                                                 load_params(REPO / "params.yaml").data))
        with httpx.Client(timeout=30, headers={"authorization": f"Bearer {TOKEN}"}) as client:
            for i, record in enumerate(drifted):
                port = stack.replicas[i % 2]
                assert client.post(f"http://127.0.0.1:{port}/predict", json=record).status_code == 200
        time.sleep(3)  # the prediction log's writers flush every 2 s
        monitor = stack.run("drift-monitor/drift-monitor")
        event = wait_until(lambda: stack.events("driftline.drift.detected", monitor), 30)
        assert event and event[0]["payload"]["rows"] == 600, event

        def retrained():
            runs = stack.api_call("POST", "/flow_runs/filter", {"flow_runs": {
                "start_time": {"after_": since}, "state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}},
                "deployments": {"name": {"any_": ["retrain-on-drift"]}}})
            return runs or None

        runs = wait_until(retrained, 300)
        assert runs and [r["state"]["type"] for r in runs] == ["COMPLETED"], runs
        run = runs[0]
        assert run["work_pool_name"] == "driftline-process" and run["parameters"]["reason"] == "drift", run
        assert run["parameters"]["drift_summary"] == event[0]["payload"]["summary"]
        print(f"team drift loop: 600 drifted requests, monitor, event and retraining on a worker in "
              f"{time.monotonic() - began:.1f} s")
    finally:
        code, rest = stack.stop()
    assert code == 0, rest


def test_the_team_profile_refuses_to_start_without_its_tracking_server():
    from typer.testing import CliRunner

    from driftline.app.cli import app

    result = CliRunner().invoke(app, ["up", "--profile", "team", "--no-mlflow-ui"])
    assert result.exit_code == 2 and "--no-mlflow-ui: the team profile's MLflow tracking server" in result.output


@pytest.mark.timeout(900)
def test_the_team_stack_starts_again_after_its_state_directory_was_made_anew(tmp_path, s3):
    """The database (under /var/lib as root) and the secrets that open it stay together: removing the
    project's state directory (a fresh clone in the same place) leaves a stack that starts again."""
    stack = team(tmp_path / "proj", s3[0])
    stack.start()
    code, rest = stack.stop(keep_data=True)
    assert code == 0, rest
    shutil.rmtree(stack.project.root / ".driftline")
    again = Team(stack.project, stack.env, stack.prefect_port, stack.mlflow_port, stack.pg_port, stack.serve_port)
    again.start()
    try:
        assert "PostgreSQL: postgresql://driftline:***@" in again.out and "Workers: 2" in again.out, again.out
        assert again.prefect_auth == stack.prefect_auth  # the same credentials, kept with the data
    finally:
        code, rest = again.stop()
    assert code == 0, rest
