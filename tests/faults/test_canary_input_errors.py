"""A canary and one anonymous request that breaks `predict`: 300 records, one of them with
annual_income=1e39, which neither random forest can score (sklearn's forests cast to float32). It
is sent at the 100% step, so it reaches the challenger. The champion fails on the same rows, so the
failure is the input's, not the challenger's: the step is judged on the honest requests and the
good challenger is promoted. Before, its 300 rows were 300 challenger errors (min_requests and the
error rate counted rows) and the canary rolled back."""

from __future__ import annotations

import threading

import httpx
import pytest

from driftline.adapters.predlog_reader import read_log
from driftline.app.traffic import Traffic, demo_records
from driftline.config import load_params
from flows.rollout import rollout
from tests.integration.conftest import make_project
from tests.integration.test_serving import Server
from tests.waiting import wait_until

FOREST = "training.estimator={kind: random_forest, n_estimators: 60, min_samples_leaf: 5}"
FAST = ["rollout.steps=[0.5, 1.0]", "rollout.window_seconds=6", "rollout.min_requests=150",
        "rollout.min_labels=20", "rollout.max_wait_seconds=120", "rollout.max_latency_p95_ratio=10"]
LABEL_TOKEN = "labels-come-from-the-loan-system"
RECORDS = 300

pytestmark = pytest.mark.usefixtures("prefect_url")


class OneBadRequest:
    """Waits for the canary's last step (the weight as the label token's holder sees it on /models),
    then sends one anonymous request whose values break both models."""

    def __init__(self, url: str, records: list[dict]):
        self.url, self.records = url, [*records[:RECORDS - 1], {**records[RECORDS - 1], "annual_income": 1e39}]
        self.answer: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            def last_step() -> bool:
                shown = client.get("/models", headers={"authorization": f"Bearer {LABEL_TOKEN}"}).json()
                return shown.get("challenger_weight") == 1.0
            if wait_until(last_step, 600, interval=0.1):
                self.answer = client.post("/predict", json=self.records)

    def join(self) -> None:
        self._thread.join(30)


def test_one_failing_multi_record_request_does_not_roll_back_a_good_canary(tmp_path):
    project = make_project(tmp_path / "proj")
    project.train(FOREST)
    # As good as version 1; the margin keeps a seed's hair-width miss of the vs-champion gate (not
    # what this test is about) from stopping its registration.
    assert project.train(FOREST, "training.seed=7", "evaluation.comparison.margin=0.03")["version"] == "2"
    params = load_params(project.root / "params.yaml")
    server = Server(project, project.root / ".driftline", feedback_token=LABEL_TOKEN)
    honest = Traffic(server.url, params, feedback_token=LABEL_TOKEN)
    bad = OneBadRequest(server.url, demo_records(params, RECORDS, seed=78)[0])
    try:
        result = rollout(strategy="canary", overrides=FAST, project_dir=str(project.root))
    finally:
        bad.join()
        honest.stop()
        server.stop()
    # The request was answered by the champion's failure, 422 for its own input, never a 5xx.
    assert bad.answer is not None and bad.answer.status_code == 422, bad.answer and bad.answer.text
    request_id = bad.answer.json()["request_id"]
    assert result["status"] == "promoted", result
    assert honest.failures == []
    # The cause: the challenger's 300 rows were logged as the input's error, not the challenger's ...
    log = read_log(project.root / ".driftline" / "predictions")
    rows = log[log["request_id"] == request_id]
    assert sorted({(v, s, n) for (v, s), n in rows.groupby(["variant", "status"]).size().items()}) == [
        ("challenger", "input_error", RECORDS), ("champion", "error", RECORDS)]
    assert set(log.loc[log["request_id"] != request_id, "status"]) == {"ok"}
    # ... and the last step was judged on the honest requests, counting the bad one apart.
    last = result["steps"]["canary 100%"]
    assert "challenger error rate 0.00%" in last, last
    assert "1 challenger requests not judged (the champion did not answer them either)" in last, last
    # Every request came from 127.0.0.1: one client key, named with its share.
    assert log["client_key"].nunique() == 1 and "the top client sent 100% of the window's requests" in last, last
