"""Faults on the team stack (`driftline up --profile team`, real PostgreSQL, Prefect server, `mlflow
server`, two process workers): a worker killed with its flow run in the middle of a CI training."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from driftline.adapters.tracking import CHAMPION, MlflowStore
from tests.team_stack import HAS_POSTGRES, WHY_NO_POSTGRES, moto_s3, team
from tests.waiting import wait_until

pytestmark = pytest.mark.skipif(not HAS_POSTGRES, reason=WHY_NO_POSTGRES)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with moto_s3() as (s3_env, _):
        t = team(tmp_path_factory.mktemp("team") / "proj", s3_env)
        t.start()
        try:
            yield t
        finally:
            t.stop()


def _events(api: str, name: str, run_id: str) -> list[dict]:
    """Events `name` of one flow run: a worker's relate to the run, the run's own are about it."""
    for where in ("related", "resource"):
        found = httpx.post(f"{api}/events/filter", json={"filter": {
            "event": {"name": [name]}, where: {"id": [f"prefect.flow-run.{run_id}"]}}, "limit": 10}).json()["events"]
        if found:
            return found
    return []


def _run(api: str, run_id: str) -> dict:
    return httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()


def _worker(stack, name: str) -> psutil.Process:
    return next(p for p in psutil.Process(stack.proc.pid).children(recursive=True)
                if "worker" in p.cmdline() and name in p.cmdline())


@pytest.mark.timeout(900)
def test_a_worker_killed_mid_training_crashes_its_run_and_ci_reruns_it_on_the_other_worker(stack):
    api = stack.api
    store = MlflowStore(stack.tracking, "mlflow-artifacts:/driftline", "driftline", "loan-default").start()
    deployment = httpx.get(f"{api}/deployments/name/training-pipeline/training-ci").json()["id"]
    run_id = httpx.post(f"{api}/deployments/{deployment}/create_flow_run", json={}).json()["id"]
    submitted = wait_until(lambda: _events(api, "prefect.worker.submitted-flow-run", run_id), 120)
    assert submitted, _run(api, run_id)["state"]
    took = submitted[0]["resource"]["prefect.resource.name"]
    # Running, and its first heartbeat is in: the automation watches runs that sent one.
    assert wait_until(lambda: _events(api, "prefect.flow-run.heartbeat", run_id), 120), _run(api, run_id)["state"]
    assert _run(api, run_id)["state"]["type"] == "RUNNING"

    worker = _worker(stack, took)
    machine = [worker, *worker.children(recursive=True)]  # the worker and the flow run it started
    assert len(machine) > 1, "the worker runs no flow run process"
    for process in machine:
        process.kill()
    killed = time.monotonic()

    crashed = wait_until(lambda: (r := _run(api, run_id))["state"]["type"] == "CRASHED" and r, 300)
    assert crashed, _run(api, run_id)["state"]
    detected = time.monotonic() - killed
    assert "No heartbeat for 90 s" in crashed["state"]["message"], crashed["state"]
    assert store.versions() == [] and store.aliases() == {}  # the killed run registered nothing

    # CI's rerun: the slot the crashed run held is free, and the surviving worker runs it.
    began = time.monotonic()
    ci = subprocess.run([sys.executable, "-m", "prefect", "deployment", "run", "training-pipeline/training-ci",
                         "--watch"], env={**stack.env, "PREFECT_API_URL": api}, capture_output=True, text=True,
                        timeout=600)
    assert ci.returncode == 0, ci.stdout + ci.stderr
    rerun = re.search(r"UUID: ([0-9a-f-]{36})", ci.stdout).group(1)
    ran = wait_until(lambda: _events(api, "prefect.worker.submitted-flow-run", rerun), 30)
    assert [e["resource"]["prefect.resource.name"] for e in ran] == [
        {"driftline-worker-1": "driftline-worker-2", "driftline-worker-2": "driftline-worker-1"}[took]]
    assert store.aliases().get(CHAMPION) == "1"
    print(f"killed run marked Crashed {detected:.0f} s after the kill; "
          f"CI's rerun took {time.monotonic() - began:.0f} s")
