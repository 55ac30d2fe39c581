"""Progressive delivery end to end: the real server, live traffic with labels fed back, the
rollout flow moving weights and aliases, automatic rollback, history and `rollback`.

The module trains its versions once (1: champion, 2: a good challenger, 3: a model that learned
the target backwards); each test starts from the same aliases, so every test passes alone and in
any order."""

from __future__ import annotations

import httpx
import pytest
from prefect import flow

from driftline.adapters.registry.store import CHALLENGER, CHAMPION, PREVIOUS, MlflowStore
from driftline.app.traffic import Traffic
from driftline.config import load_params
from driftline.core import demo_data
from driftline.serving.loader import STRATEGY_TAG, WEIGHT_TAG
from flows.rollout import RolledBack, promote, rollback, rollout
from tests.integration.conftest import flow_run_events, make_project, run_artifact
from tests.integration.test_serving import Server
from tests.waiting import wait_until

FAST = ["rollout.steps=[0.5, 1.0]", "rollout.window_seconds=2", "rollout.min_requests=150",
        "rollout.min_labels=20", "rollout.max_wait_seconds=60", "rollout.max_latency_p95_ratio=10"]
LAX = ["evaluation.thresholds={}", "evaluation.behavioral=[]", "evaluation.fairness=[]",
       # its data is the good data with every label flipped: the version checks would stop it first
       "validation.previous.enabled=false", "evaluation.pinned.source=none",
       "evaluation.comparison.margin=1.0"]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    project = make_project(root / "proj")
    assert project.train()["version"] == "1"
    assert project.train("training.seed=7")["version"] == "2"
    good = demo_data.generate(6000, 7)
    project.write_data(good.assign(defaulted=1 - good["defaulted"]))  # a model that learned it backwards
    assert project.train(*LAX)["version"] == "3"
    server = Server(project, project.root / ".driftline")
    # 60 labelled requests a second fill a 50% step's 150 in ~5 s; uncapped, the four threads and the
    # server took a core for the whole module.
    traffic = Traffic(server.url, load_params(project.root / "params.yaml"), rate=60)
    yield project, server, traffic
    traffic.stop()
    server.stop()


def given(project, champion: str, challenger: str | None = None, previous: str | None = None) -> MlflowStore:
    """Put the aliases where a test starts, with no rollout under way, and wait for the server."""
    store = project.store()
    store.set_model_tags({STRATEGY_TAG: "none", WEIGHT_TAG: "0"})
    for alias, version in ((CHAMPION, champion), (CHALLENGER, challenger), (PREVIOUS, previous)):
        store.move_alias(alias, version, "test setup")
    return store


def deploy(project, **kwargs) -> tuple[object, str]:
    """rollout's final state and its flow run id (to scope artifacts and events to this run)."""
    state = rollout(overrides=FAST, project_dir=str(project.root), return_state=True, **kwargs)
    return state, str(state.state_details.flow_run_id)


def test_a_good_challenger_goes_through_the_canary_and_is_promoted(live):
    """A better model goes through the canary under live labelled traffic and becomes @champion."""
    project, server, traffic = live
    given(project, champion="1", challenger="2")
    state, run_id = deploy(project, strategy="canary")
    result = state.result()
    assert result["status"] == "promoted"
    aliases = project.store().aliases()
    assert aliases.get(CHAMPION) == "2" and aliases.get(PREVIOUS) == "1" and CHALLENGER not in aliases
    assert wait_until(lambda: httpx.get(f"{server.url}/models").json()["champion"] == "2", 15)
    assert httpx.get(f"{server.url}/models").json()["challenger_weight"] == 0.0
    text = run_artifact("rollout-loan-default", run_id)
    assert "promoted version 2" in text and "canary 50%" in text and "canary 100%" in text
    assert "score distribution" in text and "**FAIL**" not in text
    # Each step's picture, on the challenger's training run, linked from the report.
    store = project.store()
    v2 = store.version("2")
    drawn = [a.path for a in store.client.list_artifacts(v2.run_id, f"rollout/{run_id}")]
    assert drawn == [f"rollout/{run_id}/canary-100.png", f"rollout/{run_id}/canary-50.png"]
    assert f"[canary 50%]({store.run_url(project.settings.mlflow_ui_url, v2.run_id)}/artifacts/rollout/{run_id}/" \
           "canary-50.png)" in text
    history = project.store().history()
    assert [(h["alias"], h["from"], h["to"]) for h in history][-3:] == [
        ("previous", "-", "1"), ("champion", "1", "2"), ("challenger", "2", "-")]
    assert not flow_run_events("driftline.rollout.rolled_back", run_id, timeout=3)
    assert traffic.failures == []


def test_rollback_restores_previous_and_says_so(live):
    project, _, _ = live
    given(project, champion="2", previous="1")
    result = rollback(project_dir=str(project.root), reason="test says so")
    assert "back to version 1" in result["message"]
    aliases = project.store().aliases()
    assert aliases[CHAMPION] == "1" and aliases[PREVIOUS] == "2"
    assert project.store().history()[-2]["reason"] == "test says so"


def test_a_bad_challenger_is_rolled_back_automatically_for_its_scores_and_labels(live):
    """A worse model is caught by the canary's analysis of live scores and labels and rolled back, with
    the failed check named and the rolled_back event emitted."""
    project, _, traffic = live
    given(project, champion="1", challenger="3")
    state, run_id = deploy(project, strategy="canary")
    with pytest.raises(RolledBack) as rolled:
        state.result()
    why = str(rolled.value)
    assert "rolled back" in why and "@champion stays on 1" in why
    # Rolled back by the analysis of live traffic, not by a timeout waiting for it: the backwards
    # model's scores are mirrored and its answers disagree with the labels.
    assert "analysis failed" in why and "not enough traffic" not in why
    assert "score PSI" in why and "live accuracy" in why
    store = project.store()
    aliases = store.aliases()
    assert aliases[CHAMPION] == "1" and CHALLENGER not in aliases
    assert store.model_tags()["driftline.rollout.weight"] == "0"
    text = run_artifact("rollout-loan-default", run_id)
    assert "rolled back" in text and "| score distribution | **FAIL** |" in text
    assert any(h["to"] == "-" and h["from"] == "3" and "rolled back" in h["reason"] for h in store.history())
    events = flow_run_events("driftline.rollout.rolled_back", run_id)
    assert len(events) == 1
    assert events[0]["payload"]["version"] == "3" and events[0]["payload"]["champion"] == "1"
    assert "score PSI" in events[0]["payload"]["reason"]
    # The old name is still emitted for one release, with the same payload and a pointer to the new one.
    old = flow_run_events("driftline.deployment.rolled_back", run_id)
    assert len(old) == 1 and old[0]["payload"]["reason"] == events[0]["payload"]["reason"]
    assert "renamed driftline.rollout.rolled_back" in old[0]["payload"]["deprecated"]
    assert traffic.failures == []


def test_a_shadow_rollout_mirrors_traffic_answers_only_from_the_champion_and_promotes(live):
    """A cautious team shadows the challenger: users only ever get the champion's answers."""
    project, server, traffic = live
    given(project, champion="1", challenger="2")
    assert wait_until(lambda: httpx.get(f"{server.url}/models").json()["challenger"] == "2", 15)
    answered = traffic.sent
    state, run_id = deploy(project, strategy="shadow")
    result = state.result()
    assert result["status"] == "promoted" and result["version"] == "2"
    text = run_artifact("rollout-loan-default", run_id)
    assert "| shadow | agreement | pass |" in text and "mirrored requests" in text
    mirrored = int(text.split(" mirrored requests")[0].rsplit(" on ", 1)[1])
    assert mirrored >= 150  # rollout.min_requests shadow answers were judged
    # The callers were answered by the champion only while the challenger was shadowed.
    assert traffic.sent > answered and traffic.failures == []
    assert project.store().aliases()[CHAMPION] == "2"


def test_blue_green_smoke_tests_live_then_switches_and_keeps_the_old_version_warm(live, monkeypatch):
    """Blue-green: a live smoke test, one switch, and the old version kept warm for an instant rollback."""
    project, server, traffic = live
    monkeypatch.setenv("DRIFTLINE_SERVE_URL", server.url)
    given(project, champion="1")
    assert wait_until(lambda: httpx.get(f"{server.url}/models").json()["champion"] == "1", 15)
    state, run_id = deploy(project, version="2", strategy="blue-green")
    result = state.result()
    assert result["status"] == "promoted" and f"{server.url} switched in" in result["message"]
    assert "version 1 kept warm" in result["message"]
    text = run_artifact("rollout-loan-default", run_id)
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
    """A crash between alias writes leaves the registry as it was before the promotion."""
    project, _, _ = live
    store = given(project, champion="1", challenger="3", previous="2")
    before = store.aliases()
    crashing = _RegistryDiesMidPromotion(store.tracking_uri, store.artifact_location, store.experiment,
                                         store.model_name).start()

    @flow
    def promotion() -> None:
        promote(crashing, "3", "1", "test promotion")

    with pytest.raises(ConnectionError):
        promotion()
    assert store.aliases() == before
    undone = [h for h in store.history() if h["reason"].startswith("undo failed promotion")]
    assert {(h["alias"], h["to"]) for h in undone} == {(CHAMPION, "1"), (PREVIOUS, "2")}
