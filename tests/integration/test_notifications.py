"""Webhook notifications through Prefect automations on the real Prefect server, received by a
local HTTP receiver: the server's own automation service renders and posts each message."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prefect import flow
from prefect.events import emit_event

from deployments import notifications
from driftline.adapters.registry.tags import ROLLED_BACK, rolled_back_payload
from tasks.monitor import emit_drift
from tests.integration.conftest import free_port, make_project
from tests.waiting import wait_until


class Receiver:
    """Collects the JSON bodies POSTed to it."""

    def __init__(self):
        self.messages: list[dict] = []
        received = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append({"path": self.path, "type": self.headers.get("content-type"),
                                  "json": json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T000/B000/secret-part"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self, needle: str) -> list[str]:
        return [m["json"]["text"] for m in self.messages if needle in m["json"]["text"]]

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def receiver(prefect_server):
    receiver = Receiver()
    notifications.install(receiver.url)
    yield receiver
    notifications.remove()
    receiver.stop()


def test_a_rollback_and_a_drift_event_each_send_one_message_saying_why(receiver):
    model = f"model-{uuid.uuid4().hex[:8]}"  # this test's messages, whatever else the server sees
    emit_event(event=ROLLED_BACK, resource={"prefect.resource.id": f"driftline.model.{model}"},
               payload=rolled_back_payload(model, "7", "6", "canary step 0.1: error rate 4.2% above 1.0%"))
    emit_drift.fn(model, {"model_name": model, "version": "6", "drift_share": 0.43, "rows": 1200,
                          "drifted_columns": ["annual_income"], "reasons": ["feature drift"],
                          "summary": "43% of features drifted (annual_income, debt_ratio)",
                          "report_url": "http://mlflow/report.html"}, str(uuid.uuid4()))
    assert wait_until(lambda: len(receiver.texts(model)) == 2, 60), receiver.messages
    rolled, drift = sorted(receiver.texts(model), key=lambda t: "drift on" in t)
    assert rolled == (f"*driftline: {model} version 7 rolled back*\n"
                      "canary step 0.1: error rate 4.2% above 1.0%\n@champion is version 6.")
    assert drift.startswith(f"*driftline: drift on {model} version 6*\n43% of features drifted (annual_income")
    assert "Drift share 0.43 over 1200 rows; report: http://mlflow/report.html" in drift
    # The secret part of the URL is where it was posted, and JSON is what Slack-style hooks expect.
    mine = [m for m in receiver.messages if model in m["json"]["text"]]
    assert {(m["path"], m["type"]) for m in mine} == {("/hooks/T000/B000/secret-part", "application/json")}


def test_a_failed_training_run_sends_a_message_naming_the_run_and_the_error(receiver, tmp_path):
    project = make_project(tmp_path / "proj")
    state = project.train_state("training.no_such_key=1")
    assert state.is_failed()
    run = state.state_details.flow_run_id
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        name = client.read_flow_run(run).name
    assert wait_until(lambda: receiver.texts(name), 60), receiver.messages
    [text] = receiver.texts(name)
    assert text.startswith(f"*driftline: training run {name} failed*\n")
    assert "no_such_key" in text, text


def test_other_events_and_other_flows_failing_send_nothing(receiver):
    before = len(receiver.messages)
    model = f"model-{uuid.uuid4().hex[:8]}"

    @flow(name="not-training")
    def not_training():
        raise RuntimeError(f"{model} not a training run")

    assert not_training(return_state=True).is_failed()
    emit_event(event="driftline.challenger.registered", resource={"prefect.resource.id": f"driftline.model.{model}"},
               payload={"version": "3"})
    # A rollback event emitted after it: once its message is in, the earlier event had its chance.
    emit_event(event=ROLLED_BACK, resource={"prefect.resource.id": f"driftline.model.{model}"},
               payload=rolled_back_payload(model, "3", "2", "smoke test failed"))
    assert wait_until(lambda: receiver.texts(model), 60)
    # Actions run asynchronously: give a message for the failed run (or the registration) time to
    # arrive after the rollback's, so that a missing filter would show up here.
    time.sleep(5)
    assert [m["json"]["text"].split("\n")[0] for m in receiver.messages[before:]
            if model in m["json"]["text"]] == [f"*driftline: {model} version 3 rolled back*"]
