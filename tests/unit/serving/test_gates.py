"""The hot path's gates: a route's credential is checked from the headers, before the body is
read, and the gate opens to exactly the callers the handler itself accepts. Driven through
`create_app`'s own ASGI app, with a `receive` that records whether the body was asked for."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from driftline.adapters.registry.store import MlflowStore
from driftline.config import ServeSettings
from driftline.serving import gates
from driftline.serving.app import create_app
from driftline.serving.ids import RequestIds
from driftline.serving.protocols import token_from_basic

PREDICT, LABELS, METRICS = "predict-token-1", "label-token-22", "metrics-token-333"
PATHS = ("/predict", "/invocations", "/v2/models/loan-default/infer")


def _app(tmp_path, **settings):
    store = MlflowStore(f"sqlite:///{tmp_path}/unused.db", str(tmp_path), "unit", "loan-default")
    return create_app(store, ServeSettings(log_dir=tmp_path, **settings), tmp_path, RequestIds(b"k" * 32, 3600))


def _call(app, path: str, authorization: str | None = None) -> tuple[int, dict, bool]:
    """POST `path` with a JSON body: (status, answer, whether the body was read)."""
    read = []
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    sent: list[dict] = []

    async def receive():
        read.append(True)
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"]), bool(read)


def _basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"anyone:{password}".encode()).decode()


@pytest.mark.parametrize("path", PATHS)
def test_a_prediction_without_the_token_is_refused_before_its_body_is_read(tmp_path, path):
    app = _app(tmp_path, token=PREDICT, feedback_token=LABELS)
    for authorization in (None, "Bearer wrong", f"Bearer {PREDICT}-", f"Bearer {LABELS}"):
        status, _, read = _call(app, path, authorization)
        assert (status, read) == (401, False), authorization
    status, answer, read = _call(app, path, f"Bearer {PREDICT}")
    assert read and status == 503, answer  # through the gate: read, then "no model loaded yet"


def test_basic_counts_on_the_routes_whose_handlers_take_it_and_nowhere_else(tmp_path):
    app = _app(tmp_path, token=PREDICT)
    assert _call(app, "/invocations", _basic(PREDICT))[2]
    assert _call(app, "/v2/models/loan-default/infer", _basic(PREDICT))[2]
    assert _call(app, "/predict", _basic(PREDICT))[:3:2] == (401, False)  # /predict takes a bearer token only
    assert _call(app, "/invocations", _basic("wrong"))[:3:2] == (401, False)


def test_refusals_keep_each_protocols_shape(tmp_path):
    app = _app(tmp_path, token=PREDICT)
    assert _call(app, "/invocations")[1] == {"error_code": "UNAUTHENTICATED", "message": gates.WRONG_TOKEN}
    assert _call(app, "/v2/models/loan-default/infer")[1] == {"error": gates.WRONG_TOKEN}
    assert _call(app, "/predict")[1] == {"detail": gates.WRONG_TOKEN}


@pytest.mark.parametrize(("settings", "authorization", "status"), [
    ({"token": PREDICT, "feedback_token": LABELS, "metrics_token": METRICS}, None, 401),
    ({"token": PREDICT, "feedback_token": LABELS, "metrics_token": METRICS}, f"Bearer {PREDICT}", 403),
    ({"token": PREDICT, "feedback_token": LABELS, "metrics_token": METRICS}, f"Bearer {METRICS}", 403),
    ({"token": PREDICT, "feedback_token": LABELS, "metrics_token": METRICS}, f"Bearer {LABELS}", None),
    ({"token": PREDICT}, f"Bearer {PREDICT}", 403),
    ({}, None, 403),
    ({"anonymous_labels": True}, None, None),
    ({"anonymous_labels": True, "feedback_token": LABELS}, None, 401),
    ({"role": "staging", "feedback_token": LABELS}, f"Bearer {LABELS}", 404),
])
def test_the_label_gate_refuses_whom_the_feedback_handler_refuses_before_the_body(tmp_path, settings, authorization,
                                                                                   status):
    app = _app(tmp_path, **settings)
    answered, body, read = _call(app, "/feedback", authorization)
    if status is None:  # opened: the handler reads the body, and answers (no model loaded here)
        assert read and answered == 503, body
    else:
        assert (answered, read) == (status, False), body
    # The handler, given the same headers, says the same (its own check stays: defence in depth).
    headers = {b"authorization": authorization.encode()} if authorization else {}
    own = asyncio.run(app.state.server.feedback(headers, b"{}"))
    assert own[0] == answered and (status is None or own[1]["detail"] == body["detail"])


def test_the_bearer_gate_is_open_without_a_token_and_reads_basic_only_when_told():
    assert gates.bearer(None) is None
    gate = gates.bearer(PREDICT)
    assert gate is not None
    assert gate({b"authorization": f"Bearer {PREDICT}".encode()}) is None
    assert gate({b"authorization": _basic(PREDICT).encode()}) == (401, gates.WRONG_TOKEN)
    basic = gates.bearer(PREDICT, token_from_basic)
    assert basic is not None and basic({b"authorization": _basic(PREDICT).encode()}) is None
