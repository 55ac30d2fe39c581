"""Progressive delivery end to end: the real server, live traffic with labels fed back, the
deploy_model flow moving weights and aliases, automatic rollback, history and `rollback`."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest

from driftline.config import load_params
from driftline.core import demo_data, frames
from driftline.tracking import CHALLENGER, CHAMPION, PREVIOUS
from flows.deploy import RolledBack, deploy_model, rollback
from tests.integration.conftest import latest_artifact, make_project
from tests.integration.test_serving import Server

FAST = ["deployment.steps=[0.5, 1.0]", "deployment.window_seconds=2", "deployment.min_requests=150",
        "deployment.min_labels=20", "deployment.max_wait_seconds=60", "deployment.max_latency_p95_ratio=10"]


class Traffic:
    """Single-row requests with unique ids, each answered by its true label through /feedback."""

    def __init__(self, url: str, params):
        frame = demo_data.generate(2000, 21)
        self.records = frames.features(frame, params.data).to_dict("records")
        self.records = [{k: (None if v != v else v) for k, v in r.items()} for r in self.records]
        self.labels = frame["defaulted"].tolist()
        self.url, self.failures, self.sent = url, [], 0
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(4)]
        for t in self.threads:
            t.start()

    def _run(self, offset: int) -> None:
        with httpx.Client(timeout=30) as http:
            i = offset
            while not self.stop_event.is_set():
                k = i % len(self.records)
                rid = uuid.uuid4().hex
                r = http.post(f"{self.url}/predict", json=self.records[k], headers={"x-request-id": rid})
                if r.status_code != 200:
                    self.failures.append(r.status_code)
                http.post(f"{self.url}/feedback", json={"request_id": rid, "label": self.labels[k]})
                self.sent += 1
                i += 4

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=30)


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
