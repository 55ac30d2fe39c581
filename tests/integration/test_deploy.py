"""Progressive delivery end to end: the real server, live traffic with labels fed back, the
deploy_model flow moving weights and aliases, automatic rollback, history and `rollback`."""

from __future__ import annotations

import httpx
import pytest
from prefect import flow

from driftline.config import load_params
from driftline.core import demo_data
from driftline.serving.loader import wait_until
from driftline.tracking import CHALLENGER, CHAMPION, PREVIOUS, MlflowStore
from driftline.traffic import Traffic
from flows.deploy import RolledBack, deploy_model, promote, rollback
from tests.integration.conftest import latest_artifact, make_project
from tests.integration.test_serving import Server

FAST = ["deployment.steps=[0.5, 1.0]", "deployment.window_seconds=2", "deployment.min_requests=150",
        "deployment.min_labels=20", "deployment.max_wait_seconds=60", "deployment.max_latency_p95_ratio=10"]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    project = make_project(root / "proj")
    project.train()
    server = Server(project, project.root / ".driftline")
    traffic = Traffic(server.url, load_params(project.root / "params.yaml"))
    yield project, server, traffic
    traffic.stop()
    server.stop()


def test_a_good_challenger_goes_through_the_canary_and_is_promoted(live):
    project, server, traffic = live
    assert project.train("training.seed=7")["version"] == "2"
    result = deploy_model(strategy="canary", overrides=FAST, project_dir=str(project.root))
    assert result["status"] == "promoted"
    aliases = project.store().aliases()
    assert aliases.get(CHAMPION) == "2" and aliases.get(PREVIOUS) == "1" and CHALLENGER not in aliases
    assert httpx.get(f"{server.url}/models").json()["challenger_weight"] == 0.0
    text = latest_artifact("deployment-loan-default")
    assert "promoted version 2" in text and "canary 50%" in text and "score distribution" in text
    history = project.store().history()
    assert [(h["alias"], h["from"], h["to"]) for h in history][-3:] == [
        ("previous", "-", "1"), ("champion", "1", "2"), ("challenger", "2", "-")]
    assert traffic.failures == []


def test_rollback_restores_previous_and_says_so(live):
    project, _, _ = live
    result = rollback(project_dir=str(project.root), reason="test says so")
    assert "back to version 1" in result["message"]
    aliases = project.store().aliases()
    assert aliases[CHAMPION] == "1" and aliases[PREVIOUS] == "2"
    assert project.store().history()[-2]["reason"] == "test says so"


def test_a_bad_challenger_is_rolled_back_automatically(live):
    project, _, traffic = live
    good = demo_data.generate(6000, 7)
    project.write_data(good.assign(defaulted=1 - good["defaulted"]))  # a model that learned it backwards
    result = project.train("evaluation.thresholds={}", "evaluation.behavioral=[]", "evaluation.fairness=[]",
                           "evaluation.comparison.margin=1.0")
    bad = result["version"]
    with pytest.raises(RolledBack) as rolled:
        deploy_model(strategy="canary", overrides=FAST, project_dir=str(project.root))
    assert "rolled back" in str(rolled.value) and "@champion stays on 1" in str(rolled.value)
    store = project.store()
    aliases = store.aliases()
    assert aliases[CHAMPION] == "1" and CHALLENGER not in aliases
    assert store.model_tags()["driftline.rollout.weight"] == "0"
    assert "rolled back" in latest_artifact("deployment-loan-default")
    assert any(h["to"] == "-" and h["from"] == bad and "rolled back" in h["reason"] for h in store.history())
    assert traffic.failures == []


def test_blue_green_smoke_tests_live_then_switches_and_keeps_the_old_version_warm(live, monkeypatch):
    project, server, traffic = live
    monkeypatch.setenv("DRIFTLINE_SERVE_URL", server.url)
    assert project.store().aliases()[CHAMPION] == "1"
    result = deploy_model(version="2", strategy="blue-green", overrides=FAST, project_dir=str(project.root))
    assert result["status"] == "promoted" and "the server switched in" in result["message"]
    assert "version 1 kept warm for rollback" in result["message"]
    text = latest_artifact("deployment-loan-default")
    assert "smoke test" in text and "50/50 answers equal the registered model's offline predictions" in text
    models = httpx.get(f"{server.url}/models").json()
    assert models["champion"] == "2" and models["previous"] == "1" and "1" in models["loaded"]
    # Nothing outside a blue-green stage may ask for the smoke variant.
    smoke = httpx.post(f"{server.url}/predict", json=traffic.records[0], headers={"x-driftline-variant": "smoke"})
    assert smoke.status_code == 409
    rollback(project_dir=str(project.root), reason="blue-green test")
    assert wait_until(lambda: httpx.get(f"{server.url}/models").json()["champion"] == "1", 10)
    assert traffic.failures == []


class _RegistryDiesMidPromotion(MlflowStore):
    """The registry stops answering after @previous and @champion have moved."""

    def move_alias(self, alias, version, reason, flow_run_id="-"):
        if alias == CHALLENGER and version is None:
            raise ConnectionError("registry went away")
        super().move_alias(alias, version, reason, flow_run_id)


def test_a_crash_mid_promotion_puts_every_alias_back(live):
    project, _, _ = live
    store = project.store()
    store.move_alias(CHALLENGER, "3", "test setup")
    before = store.aliases()
    assert before[CHAMPION] == "1" and before[CHALLENGER] == "3"
    crashing = _RegistryDiesMidPromotion(store.tracking_uri, store.artifact_location, store.experiment,
                                         store.model_name).start()

    @flow
    def promotion() -> None:
        promote(crashing, "3", "1", "test promotion")

    with pytest.raises(ConnectionError):
        promotion()
    assert store.aliases() == before
    undone = [h for h in store.history() if h["reason"].startswith("undo failed promotion")]
    assert {(h["alias"], h["to"]) for h in undone} == {(CHAMPION, "1"), (PREVIOUS, before[PREVIOUS])}
    store.move_alias(CHALLENGER, None, "test teardown")
