"""rollout.staging: the challenger is served by a staging model server (role staging) and tested
there over HTTP, smoke test and behavioural tests, before any production traffic."""

from __future__ import annotations

import threading

import httpx
import pytest

from driftline.adapters.registry.store import CHALLENGER, CHAMPION
from driftline.serving.loader import STRATEGY_TAG, WEIGHT_TAG
from flows.rollout import rollout
from tests.integration.conftest import flow_run_events, make_project, run_artifact
from tests.integration.test_serving import Server, _records
from tests.waiting import wait_until

# One short canary step: with no traffic it rolls back for lack of it after max_wait_seconds.
QUICK = ["rollout.staging=true", "rollout.steps=[0.1]", "rollout.window_seconds=1", "rollout.max_wait_seconds=20"]
# A case the model cannot pass: a textbook safe applicant predicted to default.
STRICT = ("evaluation.behavioral=[{kind: minimum_functionality, name: a safe applicant defaults, min_pass_rate: 1.0, "
          "cases: [{record: {credit_score: 820, debt_to_income: 0.05, delinquencies_2y: 0, interest_rate: 0.05}, "
          "expect: 1}]}]")


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    root = tmp_path_factory.mktemp("staging")
    project = make_project(root / "proj")
    assert project.train()["version"] == "1"
    assert project.train("training.seed=7")["version"] == "2"  # @challenger
    production = Server(project, root / "production-logs")
    staging = Server(project, root / "staging-logs", role="staging")
    yield project, production, staging, root / "staging-logs"
    staging.stop()
    production.stop()


@pytest.fixture
def challenger(staged, monkeypatch):
    project, _, staging, _ = staged
    store = project.store()
    store.set_model_tags({STRATEGY_TAG: "none", WEIGHT_TAG: "0"})
    store.move_alias(CHAMPION, "1", "test setup")
    store.move_alias(CHALLENGER, "2", "test setup")
    monkeypatch.setenv("DRIFTLINE_STAGING_URL", staging.url)
    assert wait_until(lambda: httpx.get(f"{staging.url}/models").json()["champion"] == "2", 30)
    return staged


def _staging_requests(staging: Server) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in httpx.get(f"{staging.url}/metrics").text.splitlines()
               if line.startswith('driftline_requests_total{status="ok",variant="champion",version="2"}'))


def test_the_staging_server_serves_the_challenger_alone_and_logs_nothing(challenger):
    _, _, staging, logs = challenger
    models = httpx.get(f"{staging.url}/models").json()
    assert models["role"] == "staging" and models["loaded"] == ["2"] and models["challenger"] is None
    for record in _records(20):
        answer = httpx.post(f"{staging.url}/predict", json=record).json()
        assert answer["model_version"] == "2" and answer["variant"] == "champion"
    # Its rows are tests, not live traffic: none reach a prediction log the drift monitor reads
    # (the log flushes every 2 s; five give it two chances), and it takes no labels.
    assert not wait_until(lambda: list(logs.rglob("*.parquet")), 5)
    written = [line for line in httpx.get(f"{staging.url}/metrics").text.splitlines()
               if line.startswith('driftline_log_rows_total{log="predictions",outcome="written"}')]
    assert written and float(written[0].rsplit(" ", 1)[1]) == 0.0, written
    refused = httpx.post(f"{staging.url}/feedback", json=[{"request_id": answer["request_id"], "index": 0,
                                                           "label": 1}])
    assert refused.status_code == 404 and "staging" in refused.json()["detail"]


def test_a_challenger_failing_its_behavioural_tests_on_staging_never_gets_production_traffic(challenger):
    project, production, staging, _ = challenger
    before = _staging_requests(staging)
    seen, done = [], threading.Event()

    def watch_production():
        while not done.is_set():
            m = httpx.get(f"{production.url}/models").json()
            seen.append((m["strategy"], m["challenger_weight"]))
            done.wait(0.2)

    watcher = threading.Thread(target=watch_production)
    watcher.start()
    try:
        state = rollout(overrides=[*QUICK, STRICT], strategy="canary", project_dir=str(project.root),
                        return_state=True)
    finally:
        done.set()
        watcher.join()
    assert state.is_failed()
    message = str(state.result(raise_on_failure=False))
    assert message.startswith("version 2 rolled back at staging:") and "a safe applicant defaults" in message, message
    # Production never moved: no strategy, no weight, at any moment of the rollout.
    assert seen and set(seen) == {("none", 0.0)}, set(seen)
    aliases = project.store().aliases()
    assert aliases.get(CHAMPION) == "1" and CHALLENGER not in aliases
    run_id = str(state.state_details.flow_run_id)
    [event] = flow_run_events("driftline.rollout.rolled_back", run_id)
    assert event["payload"]["reason"].startswith("staging:")
    # The tests ran on the staging server, over HTTP: 50 smoke requests, then the behavioural test's.
    assert _staging_requests(staging) - before >= 50 + 1


def test_a_challenger_passing_staging_goes_on_to_the_production_canary(challenger):
    project, _, staging, _ = challenger
    before = _staging_requests(staging)
    state = rollout(overrides=QUICK, strategy="canary", project_dir=str(project.root), return_state=True)
    message = str(state.result(raise_on_failure=False))
    # Staging passed; the canary then began and, with no traffic in this test, rolled back for that.
    assert message.startswith("version 2 rolled back at canary 10%: not enough traffic"), message
    report = run_artifact("rollout-loan-default", str(state.state_details.flow_run_id))
    assert "staging" in report and "behavioral on staging: textbook applicants" in report, report
    assert _staging_requests(staging) > before


def test_staging_without_a_staging_server_address_rolls_back_saying_so(challenger, monkeypatch):
    project, _, _, _ = challenger
    monkeypatch.delenv("DRIFTLINE_STAGING_URL")
    state = rollout(overrides=QUICK, strategy="canary", project_dir=str(project.root), return_state=True)
    message = str(state.result(raise_on_failure=False))
    assert "staging" in message and "DRIFTLINE_STAGING_URL is not set" in message, message
