"""Rollout faults against real processes: `driftline deploy` runs as its own process (so it can
be killed), against a real git+DVC project with trained versions, a real model server on
loopback with live traffic, and a Prefect server. Each test starts a canary that would take
ten minutes and does something to it mid-way: kills it (SIGKILL, SIGINT), starts a second
deploy, retrains, or promotes by hand behind its back."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from driftline.adapters.registry.store import CHALLENGER, CHAMPION
from driftline.app.traffic import Traffic
from driftline.config import load_params
from driftline.serving.loader import STRATEGY_TAG, WEIGHT_TAG
from tests.integration.conftest import make_project, prefect_api
from tests.integration.test_serving import Server
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
# Retrains with another seed that these tests need registered: what they test is the rollout, not
# the vs-champion gate, which a seed alone can miss by a hair on this 1,200-row holdout.
ACCEPTED = "evaluation.comparison.margin=0.03"
LONG_CANARY = ["--set", "rollout.steps=[0.5, 1.0]", "--set", "rollout.window_seconds=600"]


pytestmark = pytest.mark.usefixtures("prefect_url")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """v1 @champion, v2 and v3 trained (v3 @challenger), a server polling every 0.5 s. Only the test
    whose canary must reach a verdict sends traffic: the others never end their analysis."""
    project = make_project(tmp_path_factory.mktemp("rollout-faults") / "proj")
    project.train()
    assert project.train("training.seed=7", ACCEPTED)["version"] == "2"
    assert project.train("training.seed=11", ACCEPTED)["version"] == "3"
    server = Server(project, project.root / ".driftline")
    yield project, server
    server.stop()


class Deploy:
    """`driftline deploy ...` in its own process (and session, so a signal reaches only it), started
    with SIGINT ignored as a shell's background job is: the command must still stop on SIGINT."""

    def __init__(self, project, *args: str):
        from prefect.settings import PREFECT_API_URL

        self.out = project.root / f"deploy-{time.monotonic_ns()}.log"
        env = {**os.environ, "DRIFTLINE_PROJECT_DIR": str(project.root), "PYTHONPATH": str(REPO),
               "PREFECT_API_URL": PREFECT_API_URL.value(), "OMP_NUM_THREADS": "1"}
        with self.out.open("wb") as sink:
            self.proc = subprocess.Popen([sys.executable, "-m", "driftline.app.cli", *args], cwd=project.root, env=env,
                                         stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))

    @property
    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def wait(self, timeout: float = 180) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


def _in_canary(store, version: str, process: Deploy) -> None:
    """Wait until the deploy has put `version` in a canary (or say why it did not)."""
    def there() -> bool:
        assert process.proc.poll() is None, f"the deploy ended early:\n{process.output[-3000:]}"
        return store.model_tags().get(STRATEGY_TAG) == "canary" and store.aliases().get(CHALLENGER) == version
    assert wait_until(there, 180, interval=0.2), process.output[-3000:]


def _models(server) -> dict:
    return httpx.get(f"{server.url}/models", timeout=10).json()


def _status(project) -> str:
    env = {**os.environ, "DRIFTLINE_PROJECT_DIR": str(project.root), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "driftline.app.cli", "status"], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _run_of(store, version: str) -> str:
    """The flow run that put `version` in @challenger for its rollout (from the alias history)."""
    return [h for h in store.history() if h["alias"] == CHALLENGER and h["to"] == version][-1]["flow_run_id"]


def _fresh(project):
    """Every test starts from v1 @champion and no @challenger (whatever ran before it), so its
    deploy moves @challenger itself and the history names its flow run."""
    store = project.store()
    store.move_alias(CHAMPION, "1", "test: start from v1", "test")
    store.move_alias(CHALLENGER, None, "test: start from no challenger", "test")
    assert store.model_tags().get(WEIGHT_TAG, "0") == "0"
    return store


def _record(project) -> dict:
    from driftline.app.traffic import demo_records

    return demo_records(load_params(project.root / "params.yaml"), 1, 5)[0][0]


@contextlib.contextmanager
def _canary_of_v2(project, *options: str):
    """From v1 @champion, a `driftline deploy` process holding v2 in a long canary: yields the
    store, the process and the flow run that holds the rollout; the process is killed at the end."""
    store = _fresh(project)
    deploy = Deploy(project, "deploy", "--version", "2", *options, *LONG_CANARY)
    try:
        _in_canary(store, "2", deploy)
        yield store, deploy, _run_of(store, "2")
    finally:
        deploy.stop()


def test_a_deploy_killed_mid_canary_stops_getting_traffic_and_is_reconciled(live):
    """A CI runner dies mid-canary (SIGKILL, no hook runs): users stop reaching the challenger once its
    lease expires, `driftline status` names the dead run, and the next run puts the weight back to 0."""
    project, server = live
    with _canary_of_v2(project, "--lease-ttl", "15") as (store, deploy, run):
        assert wait_until(lambda: _models(server)["challenger_weight"] == 0.5, 30)
        os.killpg(deploy.proc.pid, signal.SIGKILL)  # no hook, no finally: the process is simply gone
        deploy.wait(30)
        # Its lease expires (15 s here, 60 s by default) and the server, reading only, stops routing to
        # the challenger.
        stopped = wait_until(lambda: _models(server)["challenger_weight"] == 0.0, 90, interval=1)
        assert stopped, f"the server still sends half the traffic to a killed deploy's challenger: {_models(server)}"
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answers = [client.post("/predict", json=_record(project)).json() for _ in range(40)]
    assert {a["variant"] for a in answers} == {"champion"}
    assert store.model_tags()[STRATEGY_TAG] == "canary"  # the server wrote nothing: only a reconcile may

    assert f"rollout lease of flow run {run} (deploy v2 (canary)) expired at" in _status(project)
    from driftline.adapters.registry.lease import ROLLOUT, holder
    from tasks.rollout import reconcile_rollout

    done = reconcile_rollout(store, load_params(project.root / "params.yaml"))
    assert f"took back the rollout lease held by flow run {run} (deploy v2 (canary)" in done
    assert "rollout tags canary/0.5 set to none/0" in done
    assert (store.model_tags()[STRATEGY_TAG], store.model_tags()[WEIGHT_TAG]) == ("none", "0")
    assert holder(store, ROLLOUT) is None
    assert "no rollout in progress" in _status(project)


def test_a_second_deploy_waits_then_fails_naming_the_holder_and_changes_nothing(live):
    """Two engineers deploy the same model at once: the second waits, then fails with exit 4 naming the
    first's run, and nothing it could have changed has changed."""
    project, _ = live
    second = None
    try:
        with _canary_of_v2(project) as (store, first, run):
            status = _status(project)
            changes_before = len(store.history())
            second = Deploy(project, "deploy", "--version", "3", "--lease-wait", "10", *LONG_CANARY)
            # The second either gives up, or (without a lease) takes over the model.
            wait_until(lambda: second.proc.poll() is not None or store.aliases().get(CHALLENGER) != "2", 180,
                       interval=0.5)
            assert store.aliases().get(CHALLENGER) == "2", \
                "the second deploy moved @challenger during the first's canary"
            assert second.wait(60) == 4, second.output[-3000:]
            assert f"held by flow run {run} (deploy v2 (canary)" in second.output
            assert "waited 10 s and changed nothing" in second.output
            assert len(store.history()) == changes_before
            assert store.model_tags()[WEIGHT_TAG] == "0.5"
            assert f"rollout in progress: deploy v2 (canary), canary at weight 0.5; lease held by flow run {run}" \
                in status
            # Ctrl-C on the first: its crash hook sets the weight to 0 and releases the lease.
            first.proc.send_signal(signal.SIGINT)
            first.wait(120)
    finally:
        if second:
            second.stop()
    from driftline.adapters.registry.lease import ROLLOUT, holder

    assert (store.model_tags()[STRATEGY_TAG], store.model_tags()[WEIGHT_TAG]) == ("none", "0"), first.output[-3000:]
    assert holder(store, ROLLOUT) is None


def test_a_retrain_mid_canary_waits_and_becomes_challenger_when_the_rollout_ends(live):
    """A scheduled retrain lands mid-canary: the canary keeps its challenger; the new version waits and
    becomes @challenger, announced, when that rollout ends."""
    project, _ = live
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with _canary_of_v2(project) as (store, deploy, run):
        result = project.train("training.seed=13", ACCEPTED)
        new = result["version"]
        assert store.aliases()[CHALLENGER] == "2", f"the retrain moved @challenger to {new} mid-canary"
        assert "a rollout is in progress, so it becomes @challenger when that rollout ends" in result["message"]
        assert store.client.get_model_version(store.model_name, new).tags["driftline.awaiting_rollout"] == "true"
        assert not [h for h in store.history() if h["to"] == new]
        deploy.proc.send_signal(signal.SIGINT)  # the rollout ends (here: its run crashes)
        deploy.wait(120)
    assert store.aliases()[CHALLENGER] == new, deploy.output[-3000:]
    moved = store.history()[-1]
    assert (moved["alias"], moved["from"], moved["to"], moved["flow_run_id"]) == (CHALLENGER, "2", new, run)
    assert moved["reason"] == "registered during a rollout; @challenger once it ended (rollout run crashed)"
    assert "driftline.awaiting_rollout" not in store.client.get_model_version(store.model_name, new).tags
    assert wait_until(lambda: new in _announced(since), 30), "the waiting challenger was not announced"


def _announced(since: str) -> list[str]:
    """Versions announced since this test began (the worker's server saw earlier modules' too)."""
    events = prefect_api("POST", "/events/filter", {"filter": {
        "event": {"name": ["driftline.challenger.registered"]}, "occurred": {"since": since}}, "limit": 50})
    return [e["payload"]["version"] for e in events["events"]]


def test_a_rolled_back_deploy_never_undoes_another_promotion(live):
    """A rollout that fails late must not undo what another rollout promoted meanwhile."""
    project, server = live
    store = _fresh(project)
    # A latency bound no model meets: the analysis fails, so the run rolls back.
    deploy = Deploy(project, "deploy", "--version", "3", "--set", "rollout.steps=[0.5]",
                    "--set", "rollout.window_seconds=20", "--set", "rollout.min_requests=20",
                    "--set", "rollout.max_latency_p95_ratio=0.000001")
    traffic = Traffic(server.url, load_params(project.root / "params.yaml"), rate=40)
    try:
        _in_canary(store, "3", deploy)
        run = _run_of(store, "3")
        store.move_alias(CHAMPION, "2", "an operator promotes version 2 by hand", "operator")
        assert deploy.wait(300) == 1, deploy.output[-3000:]
    finally:
        deploy.stop()
        traffic.stop()
    assert traffic.failures == []
    assert "rolled back at canary 50%" in deploy.output and "latency" in deploy.output
    assert store.aliases()[CHAMPION] == "2", "the rolled-back deploy put back the champion it saw at its start"
    assert "@champion stays on 2" in deploy.output
    mine = [(h["alias"], h["from"], h["to"]) for h in store.history() if h["flow_run_id"] == run]
    assert mine[-1] == (CHALLENGER, "3", "-") and all(alias != CHAMPION for alias, _, _ in mine), mine


def _cleared(store) -> tuple[str, str]:
    tags = store.model_tags()
    return tags.get(STRATEGY_TAG), tags.get(WEIGHT_TAG)


def test_a_deploy_that_times_out_ends_its_rollout(live):
    """A stuck analysis hits the flow timeout: Prefect's hooks end the rollout (weight 0, lease released)."""
    from flows.rollout import rollout

    project, server = live
    store = _fresh(project)
    timed = rollout.with_options(timeout_seconds=30)  # a stuck analysis, as Prefect sees it
    with pytest.raises(TimeoutError):
        timed(version="2", overrides=["rollout.steps=[0.5, 1.0]", "rollout.window_seconds=600"],
              project_dir=str(project.root))
    run = _run_of(store, "2")
    assert prefect_api("GET", f"/flow_runs/{run}")["state"]["name"] == "TimedOut"
    assert _cleared(store) == ("none", "0"), "a timed-out deploy left its canary weight"
    from driftline.adapters.registry.lease import ROLLOUT, holder

    assert holder(store, ROLLOUT) is None
    assert wait_until(lambda: _models(server)["challenger_weight"] == 0.0, 30)


def test_a_cancelled_deploy_run_ends_its_rollout(live):
    """The `canary` deployment served by a runner (as `driftline up` does); the run is cancelled
    from the API mid-canary: the runner kills its process and runs the cancellation hook."""
    from prefect.settings import PREFECT_API_URL

    project, _ = live
    store = _fresh(project)
    # A deployment run rolls out @challenger only (flows/guard.py): training would have moved it.
    store.move_alias(CHALLENGER, "2", "test: v2 registered as the challenger", "test")
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "DRIFTLINE_PROJECT_DIR": str(project.root),
           "PYTHONPATH": str(REPO)}
    log = project.root.parent / "serve.log"
    with log.open("wb") as sink:
        runner = subprocess.Popen([sys.executable, "-m", "deployments.serve"], cwd=REPO, env=env, stdout=sink,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        canary = None
        deadline = time.monotonic() + 180
        while canary is None:
            assert runner.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            found = [d for d in prefect_api("POST", "/deployments/filter", {"limit": 200, "offset": 0})
                     if d["name"] == "canary"]
            canary = found[0] if found else time.sleep(1)
        run = prefect_api("POST", f"/deployments/{canary['id']}/create_flow_run", {
            "parameters": {"version": "2", "overrides": ["rollout.steps=[0.5, 1.0]",
                                                         "rollout.window_seconds=600"]}})["id"]
        assert wait_until(lambda: store.model_tags().get(STRATEGY_TAG) == "canary"
                          and store.aliases().get(CHALLENGER) == "2", 180, interval=0.5), log.read_text()[-3000:]
        prefect_api("POST", f"/flow_runs/{run}/set_state", {"state": {"type": "CANCELLING", "name": "Cancelling"},
                                                            "force": True})
        assert wait_until(lambda: prefect_api("GET", f"/flow_runs/{run}")["state"]["type"] == "CANCELLED", 120,
                          interval=1), log.read_text()[-3000:]
        assert wait_until(lambda: _cleared(store) == ("none", "0"), 60, interval=1), \
            f"a cancelled deploy left its canary weight: {_cleared(store)}\n{log.read_text()[-3000:]}"
    finally:
        os.killpg(runner.pid, signal.SIGTERM)
        runner.wait(60)
        for d in prefect_api("POST", "/deployments/filter", {"limit": 200, "offset": 0}):
            httpx.delete(f"{PREFECT_API_URL.value()}/deployments/{d['id']}", timeout=30)  # their triggers too
    from driftline.adapters.registry.lease import ROLLOUT, holder

    assert holder(store, ROLLOUT) is None
    assert "rollout Cancell" in log.read_text()  # the hook's own line: it ran, and said what it undid
