"""Faults on the team stack (`driftline up --profile team`, real PostgreSQL, Prefect server, `mlflow
server`, two process workers, two replicas and staging): a worker killed with its flow run in the
middle of a CI training, and PostgreSQL restarted in the middle of a canary rollout. Each test
starts its own stack, so each passes alone and in any order."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import psutil
import psycopg
import pytest

from driftline.adapters.registry import lease
from driftline.adapters.registry.lease import ROLLOUT
from driftline.adapters.registry.store import CHALLENGER, CHAMPION, PREVIOUS
from driftline.adapters.serving_client import client_records
from driftline.config import load_params
from driftline.core import demo_data, frames
from driftline.serving.loader import WEIGHT_TAG
from tests.faults.registry_tools import history_is_consistent
from tests.integration.conftest import REPO
from tests.team_stack import HAS_POSTGRES, TOKEN, WHY_NO_POSTGRES, moto_s3, team
from tests.waiting import wait_until

pytestmark = pytest.mark.skipif(not HAS_POSTGRES, reason=WHY_NO_POSTGRES)


@pytest.fixture
def stack(tmp_path):
    with moto_s3() as (s3_env, _):
        t = team(tmp_path / "proj", s3_env)
        _short_rollouts(t.project)
        t.start()
        try:
            yield t
        finally:
            t.stop()


def _worker(stack, name: str) -> psutil.Process:
    return next(p for p in psutil.Process(stack.proc.pid).children(recursive=True)
                if "worker" in p.cmdline() and name in p.cmdline())


@pytest.mark.timeout(900)
def test_a_worker_killed_mid_training_crashes_its_run_and_ci_reruns_it_on_the_other_worker(stack):
    store = stack.store()
    run_id = stack.start_run("training-pipeline/training-ci")
    submitted = wait_until(lambda: stack.events("prefect.worker.submitted-flow-run", run_id), 120)
    assert submitted, stack.flow_run(run_id)["state"]
    took = submitted[0]["resource"]["prefect.resource.name"]
    # Running, and its first heartbeat is in: the automation watches runs that sent one.
    assert wait_until(lambda: stack.events("prefect.flow-run.heartbeat", run_id), 120), stack.flow_run(run_id)["state"]
    assert stack.flow_run(run_id)["state"]["type"] == "RUNNING"

    worker = _worker(stack, took)
    machine = [worker, *worker.children(recursive=True)]  # the worker and the flow run it started
    assert len(machine) > 1, "the worker runs no flow run process"
    for process in machine:
        process.kill()
    killed = time.monotonic()

    crashed = wait_until(lambda: (r := stack.flow_run(run_id))["state"]["type"] == "CRASHED" and r, 300)
    assert crashed, stack.flow_run(run_id)["state"]
    detected = time.monotonic() - killed
    assert "No heartbeat for 90 s" in crashed["state"]["message"], crashed["state"]
    assert store.versions() == [] and store.aliases() == {}  # the killed run registered nothing

    # CI's rerun: the slot the crashed run held is free, and the surviving worker runs it.
    began = time.monotonic()
    rerun = stack.run("training-pipeline/training-ci")
    ran = wait_until(lambda: stack.events("prefect.worker.submitted-flow-run", rerun), 30)
    assert [e["resource"]["prefect.resource.name"] for e in ran] == [
        {"driftline-worker-1": "driftline-worker-2", "driftline-worker-2": "driftline-worker-1"}[took]]
    assert store.aliases().get(CHAMPION) == "1"
    print(f"killed run marked Crashed {detected:.0f} s after the kill; "
          f"CI's rerun took {time.monotonic() - began:.0f} s")


def _short_rollouts(project) -> None:
    """Staging first, then one canary step at 0.5 judged on a short window."""
    project.commit_params("short rollouts", "rollout.staging=true", "rollout.steps=[0.5]", "rollout.window_seconds=8.0",
                          "rollout.min_requests=20", "rollout.max_wait_seconds=120.0")


class Traffic:
    """Requests to both production replicas, as clients would send them, until stopped."""

    def __init__(self, ports: tuple[int, int]):
        record = client_records(frames.features(demo_data.generate(1, 5), load_params(REPO / "params.yaml").data))[0]
        self.ports, self.record, self.codes, self.stopped = ports, record, [], threading.Event()
        self.thread = threading.Thread(target=self._send, daemon=True)

    def _send(self) -> None:
        with httpx.Client(timeout=10, headers={"authorization": f"Bearer {TOKEN}"}) as client:
            while not self.stopped.is_set():
                for port in self.ports:
                    try:
                        self.codes.append(client.post(f"http://127.0.0.1:{port}/predict", json=self.record).status_code)
                    except httpx.HTTPError as err:
                        self.codes.append(type(err).__name__)
                time.sleep(0.03)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(30)


def _connects(stack) -> bool:
    try:
        psycopg.connect(f"postgresql://driftline:{stack.password}@127.0.0.1:{stack.pg_port}/mlflow",
                        connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        return False


def _postmaster(stack) -> psutil.Process | None:
    """PostgreSQL's main process (its backends are named "postgres" too, but run without -D)."""
    for p in psutil.Process(stack.proc.pid).children(recursive=True):
        try:
            if p.name() == "postgres" and "-D" in p.cmdline():
                return p
        except psutil.NoSuchProcess:
            continue
    return None


@pytest.mark.timeout(900)
def test_postgres_restarted_mid_canary_ends_in_a_promotion_or_a_rollback_with_a_consistent_history(stack):
    stack.run("training-pipeline/training-ci")
    stack.run("training-pipeline/training-ci", "training.seed=7")
    store = stack.store()
    assert store.aliases() == {CHAMPION: "1", CHALLENGER: "2"}
    with Traffic(stack.replicas) as traffic:
        run_id = stack.start_run("rollout/canary")
        # Past staging, in the canary window: both replicas route half the traffic to version 2.
        assert wait_until(lambda: all(stack.models(p)["challenger_weight"] == 0.5 for p in stack.replicas), 240), \
            (stack.flow_run(run_id)["state"], [stack.models(p) for p in stack.replicas])
        old = _postmaster(stack)
        down = time.monotonic()
        old.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown: what `pg_ctl restart -m fast` begins with
        old.wait(30)
        assert wait_until(lambda: (new := _postmaster(stack)) and new.pid != old.pid, 60)
        assert wait_until(lambda: _connects(stack), 60)
        restarted = time.monotonic()
        final = wait_until(lambda: (r := stack.flow_run(run_id))["state"]["type"] in (
            "COMPLETED", "FAILED", "CRASHED", "CANCELLED") and r, 400)
    assert final, stack.flow_run(run_id)["state"]
    state = final["state"]
    aliases = store.aliases()
    # A promotion, or a rollback that says so: never a crash or a half-moved alias.
    if state["type"] == "COMPLETED":
        assert aliases == {CHAMPION: "2", PREVIOUS: "1"}, aliases
    else:
        assert state["type"] == "FAILED" and "rolled back" in state["message"], state
        assert aliases == {CHAMPION: "1"}, aliases
    assert history_is_consistent(store), store.history()
    assert lease.holder(store, ROLLOUT) is None  # the lease is released
    assert store.model_tags().get(WEIGHT_TAG) in (None, "0", "0.0")
    for port in stack.replicas:  # both replicas follow the registry again
        assert wait_until(lambda p=port: (m := stack.models(p))["champion"] == aliases[CHAMPION]
                          and m["challenger_weight"] == 0, 30), stack.models(port)
    served = [c for c in traffic.codes if c != 200]
    assert "the PostgreSQL exited (code 0); started it again" in stack.printed(), stack.printed()
    print(f"PostgreSQL refused connections for {restarted - down:.1f} s; "
          f"rollout {state['type'].lower()} {time.monotonic() - restarted:.0f} s after it was back; "
          f"{len(traffic.codes)} requests during the rollout, {len(served)} not answered 200: {served[:5]}")
    assert served == [], served[:20]  # the replicas kept answering from what they had loaded
