"""A canary under attack. While honest traffic (its labels sent with the label token) judges a good
challenger, anonymous clients post records carrying forged log fields (variant=challenger,
status=error), pick request ids that land on the challenger's arm, and label what they were
served wrongly. The deploy flow must reach the decision the honest traffic supports: promote."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter

import httpx
import pytest

from driftline.adapters.predlog_reader import read_log
from driftline.app.traffic import Traffic, demo_records
from driftline.config import load_params
from flows.rollout import rollout
from tests.integration.conftest import make_project
from tests.integration.test_serving import Server

FAST = ["rollout.steps=[0.5, 1.0]", "rollout.window_seconds=2", "rollout.min_requests=150",
        "rollout.min_labels=20", "rollout.max_wait_seconds=120", "rollout.max_latency_p95_ratio=10"]
LABEL_TOKEN = "labels-come-from-the-loan-system"


pytestmark = pytest.mark.usefixtures("prefect_url")


def _arm(request_id: str) -> float:
    # The server's canary draw (sha256 of the id): an attacker can compute it too.
    return int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") / 2**64


class Attackers:
    """Anonymous clients: forged log fields, and wrong labels for rows they asked the challenger for."""

    def __init__(self, url: str, records: list[dict]):
        self.url, self.records = url, records
        self.statuses: Counter = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        chosen = (f"attack-{i}" for i in range(10**9) if _arm(f"attack-{i}") < 0.5)
        forged = {"variant": "challenger", "status": "error", "model_version": "2", "latency_ms": 99999}
        with httpx.Client(base_url=self.url, timeout=30) as client:
            i = 0
            while not self._stop.is_set():
                record = self.records[i % len(self.records)]
                i += 1
                answer = client.post("/predict", json={**record, **forged}, headers={"x-request-id": next(chosen)})
                self.statuses["forged", answer.status_code] += 1
                rid = next(chosen)
                served = client.post("/predict", json=record, headers={"x-request-id": rid})
                self.statuses["predict", served.status_code] += 1
                if served.status_code != 200:
                    continue
                body = served.json()
                wrong = 1 - body["predictions"][0]
                for labelled in (rid, body["request_id"]):  # the id it chose, and the id it was given
                    answer = client.post("/feedback", json={"request_id": labelled, "index": 0, "label": wrong})
                    self.statuses["label", answer.status_code] += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def test_forged_fields_chosen_ids_and_poisoned_labels_do_not_decide_a_canary(tmp_path, monkeypatch):
    # As a stack hands them out: every driftline process reads the tokens (the flows read the
    # rollout on /models with the metrics token; the attackers hold none).
    monkeypatch.setenv("DRIFTLINE_SERVE_FEEDBACK_TOKEN", LABEL_TOKEN)
    monkeypatch.setenv("DRIFTLINE_SERVE_METRICS_TOKEN", "prometheus-and-the-deploy-flows")
    project = make_project(tmp_path / "proj")
    project.train()
    assert project.train("training.seed=7")["version"] == "2"  # as good as version 1
    params = load_params(project.root / "params.yaml")
    server = Server(project, project.root / ".driftline", feedback_token=LABEL_TOKEN)
    assert httpx.get(f"{server.url}/models").json().keys() == {"model_name", "role", "ready"}  # no arm, no weight
    honest = Traffic(server.url, params, feedback_token=LABEL_TOKEN)
    attack = Attackers(server.url, demo_records(params, 200, seed=77)[0])
    try:
        result = rollout(strategy="canary", overrides=FAST, project_dir=str(project.root))
    finally:
        attack.stop()
        honest.stop()
        server.stop()
    assert result["status"] == "promoted", result
    assert honest.failures == []
    # Every attack was answered, and refused: forged fields 422, labels without the label token 401.
    refused = dict(attack.statuses)
    assert refused.get(("forged", 422), 0) > 50 and refused.get(("label", 401), 0) > 50, refused
    assert {kind_status for kind_status in refused if kind_status[0] != "predict"} == {("forged", 422),
                                                                                        ("label", 401)}, refused
    log = read_log(project.root / ".driftline" / "predictions")
    assert set(log["status"]) == {"ok"} and not log["request_id"].str.startswith("attack-").any()
    assert len(read_log(project.root / ".driftline" / "feedback")) <= honest.sent
