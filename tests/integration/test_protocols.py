"""MLflow's and the Open Inference Protocol's own clients, unchanged, against driftline's server
(real uvicorn on a loopback port, a project trained by the real pipeline, a token configured):
the answers equal the registered model's offline and `mlflow models serve`'s on the same champion;
a canary splits and logs every protocol's requests as `/predict`'s; hostile bodies get a 4xx."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import requests
import tritonclient.http as triton
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.pyfunc.scoring_server.client import ScoringServerClient
from tritonclient.utils import InferenceServerException

from driftline.adapters.predlog_reader import read_log
from driftline.adapters.registry.lease import ROLLOUT, Lease
from driftline.adapters.registry.store import CHALLENGER
from driftline.adapters.serving_client import client_records
from driftline.config import load_params
from driftline.core import demo_data, frames
from driftline.serving.ids import RequestIds
from driftline.serving.loader import STRATEGY_TAG, WEIGHT_TAG
from tests.integration.conftest import free_port, make_project
from tests.integration.test_serving import Server, json_values, version_one_alone
from tests.waiting import wait_until

TOKEN = "protocols-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}  # tritonclient adds to the dict it is given: pass it a copy
MODEL = "loan-default"
INVOCATIONS, INFER = "/invocations", f"/v2/models/{MODEL}/infer"
JSON, CSV = {"content-type": "application/json"}, {"content-type": "text/csv"}


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("protocols")
    project = make_project(root / "proj")
    assert project.train()["version"] == "1"
    assert project.train("training.seed=7")["version"] == "2"  # @challenger, for the canary test
    server = Server(project, root / "logs", token=TOKEN)
    yield project, server, root / "logs"
    server.stop()


@pytest.fixture
def served(module_server):
    return version_one_alone(module_server, AUTH)


@pytest.fixture
def netrc(tmp_path, monkeypatch, served):
    """The token where `requests` (under MLflow's ScoringServerClient) finds it: a netrc entry."""
    (tmp_path / "netrc").write_text(f"machine 127.0.0.1 login driftline password {TOKEN}\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))


def _frame(n: int, seed: int = 5) -> pd.DataFrame:
    """Feature rows as a pandas client holds them: NaN and None for missing values."""
    p = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
    return frames.features(demo_data.generate(n, seed), p.data).reset_index(drop=True)


def _offline(project, version: str):
    """The registered model, loaded from the registry as MLflow loads it (pyfunc) and as sklearn."""
    import mlflow.artifacts
    import mlflow.pyfunc
    import mlflow.sklearn

    local = mlflow.artifacts.download_artifacts(f"models:/{MODEL}/{version}", tracking_uri=project.settings.mlflow_uri)
    return mlflow.pyfunc.load_model(local), mlflow.sklearn.load_model(local)


def _mlflow_serve(project, version: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # `--env-manager local` runs a bare `uvicorn`
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": project.settings.mlflow_uri}
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{MODEL}/{version}",
                             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return proc, port


def test_mlflows_client_gets_the_registered_models_answers_and_those_of_mlflow_models_serve(served, netrc):
    project, server, _ = served
    proc, mlflow_port = _mlflow_serve(project, "1")
    try:
        frame = _frame(200)
        pyfunc, sklearn_model = _offline(project, "1")
        ours, theirs = ScoringServerClient("127.0.0.1", server.port), ScoringServerClient("127.0.0.1", mlflow_port)
        theirs.wait_server_ready(timeout=180, scoring_server_proc=proc)
        ours.wait_server_ready(timeout=30)
        offline = pyfunc.predict(frame).tolist()
        answer = ours.invoke(frame)  # the token travels in the netrc entry, as HTTP Basic
        assert answer["predictions"] == offline == theirs.invoke(frame)["predictions"]
        assert answer["model_version"] == "1" and answer["variant"] == "champion"
        proba = ours.invoke(frame, params={"predict_fn": "predict_proba"})["predictions"]
        np.testing.assert_allclose(proba, sklearn_model.predict_proba(frame), rtol=0, atol=1e-12)

        records = client_records(frame.head(20))  # the other bodies mlflow models serve takes: the same answers
        columns = {c: [r[c] for r in records] for c in records[0]}
        sends = [{"json": body} for body in ({"dataframe_records": records}, {"instances": records},
                                             {"inputs": records}, {"inputs": columns}, {"instances": columns})]
        for send in [*sends, {"data": frame.head(20).to_csv(index=False), "headers": CSV}]:
            ours_, theirs_ = (requests.post(f"http://127.0.0.1:{port}/invocations", timeout=30, **send)
                              for port in (server.port, mlflow_port))
            assert ours_.status_code == theirs_.status_code == 200, (ours_.text, theirs_.text)
            assert ours_.json()["predictions"] == theirs_.json()["predictions"] == offline[:20], send
    finally:
        proc.terminate()
        proc.wait(30)


def test_mlflows_client_without_the_token_is_refused_in_mlflows_error_shape(served):
    _, server, _ = served
    with pytest.raises(Exception, match="error code 401") as err:
        ScoringServerClient("127.0.0.1", server.port).invoke(_frame(2))
    assert '"error_code": "UNAUTHENTICATED"' in str(err.value)
    ping = requests.get(f"{server.url}/ping", timeout=10)  # no token needed, as MLflow's
    assert (ping.status_code, ping.text) == (200, "\n")


def _triton_inputs(client, frame: pd.DataFrame, binary: bool) -> list:
    inputs = []
    for tensor in client.get_model_metadata(MODEL)["inputs"]:
        values = frame[tensor["name"]].to_numpy(dtype="float64" if tensor["datatype"] == "FP64" else object)
        infer_input = triton.InferInput(tensor["name"], [len(frame)], tensor["datatype"])
        inputs.append(infer_input.set_data_from_numpy(values, binary_data=binary))
    return inputs


def _as_tritonclient_sends(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame the model is asked about: tritonclient writes a missing string as "None"."""
    strings = [c for c in frame if frame[c].dtype == object]
    return frame.assign(**{c: frame[c].map(lambda v: "None" if v is None or v != v else v) for c in strings})


def test_tritons_client_gets_the_registered_models_answers_with_and_without_binary_tensors(served):
    project, server, _ = served
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(MODEL)
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    frame = _frame(200, seed=6)
    assert frame["loan_purpose"].isna().any()
    _, sklearn_model = _offline(project, "1")
    sent = _as_tritonclient_sends(frame)
    offline, offline_proba = sklearn_model.predict(sent), sklearn_model.predict_proba(sent)

    binary = client.infer(MODEL, _triton_inputs(client, frame, True), headers=dict(AUTH))  # the client's defaults
    assert binary.as_numpy("predict").tolist() == offline.tolist()
    np.testing.assert_allclose(binary.as_numpy("predict_proba"), offline_proba, rtol=0, atol=1e-12)
    as_json = client.infer(MODEL, _triton_inputs(client, frame, False), headers=dict(AUTH), request_id="batch-9",
                           outputs=[triton.InferRequestedOutput("predict", binary_data=False)])
    assert as_json.as_numpy("predict").tolist() == offline.tolist() and as_json.as_numpy("predict_proba") is None
    response = as_json.get_response()
    assert response["id"] == "batch-9" and response["model_version"] == "1"

    # The request id the server issued names the rows in /feedback, as /predict's does.
    labels = [{"request_id": response["parameters"]["request_id"], "index": i, "label": 1} for i in range(3)]
    assert httpx.post(f"{server.url}/feedback", json=labels, headers=AUTH).json() == {"accepted": 3}
    with pytest.raises(InferenceServerException, match="bearer token"):
        client.infer(MODEL, _triton_inputs(client, frame.head(1), True))
    with pytest.raises(InferenceServerException, match="a version cannot be chosen"):
        client.infer(MODEL, _triton_inputs(client, frame.head(1), True), model_version="1", headers=dict(AUTH))


def _bodies(record: dict, columns: dict[str, str]) -> dict[str, tuple[str, dict]]:
    """One record as each protocol's body: path and JSON."""
    oip = {"inputs": [{"name": c, "shape": [1], "datatype": "FP64" if k == "double" else "BYTES", "data": [record[c]]}
                      for c, k in columns.items()]}
    return {"predict": ("/predict", record), "mlflow": (INVOCATIONS, {"dataframe_records": [record]}),
            "oip": (INFER, oip)}


def _said(protocol: str, answer: dict) -> tuple[str, str, str]:
    """(request id, variant, version) from each protocol's answer."""
    own = answer["parameters"] if protocol == "oip" else answer
    return own["request_id"], own["variant"], answer["model_version"]


def test_a_canary_splits_and_logs_every_protocols_requests_as_predicts(served):
    project, server, logs = served
    store = project.store()
    store.move_alias(CHALLENGER, "2", "test setup")
    lease = Lease(store, ROLLOUT, "test_protocols_canary", 600)  # rollout tags count only under a live lease
    assert lease.acquire()
    try:
        store.set_model_tags({STRATEGY_TAG: "canary", WEIGHT_TAG: "0.5"})
        assert wait_until(lambda: httpx.get(f"{server.url}/models", headers=AUTH).json()["challenger_weight"] == 0.5,
                          30)
        columns = {t["name"]: ("double" if t["datatype"] == "FP64" else "string")
                   for t in httpx.get(f"{server.url}/v2/models/{MODEL}").json()["inputs"]}
        record = client_records(_frame(1))[0]
        seen: dict[str, list[tuple[str, str, str]]] = {}
        # The split is keyed by the server's request-id key: the test reads it, as a client cannot.
        key = (project.settings.state / "request-id.key").read_text().strip().encode()
        canary_share = RequestIds(key, 3600).share
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            for protocol, (path, body) in _bodies(record, columns).items():
                answers = [client.post(path, json=body) for _ in range(40)]
                assert all(a.status_code == 200 for a in answers), protocol
                seen[protocol] = [_said(protocol, a.json()) for a in answers]
                # The id in the header is the one in the body: the id the split and the log use.
                assert all(a.headers["x-driftline-request-id"] == s[0] for a, s in zip(answers, seen[protocol]))
                # A token holder's X-Request-ID picks the arm, whichever protocol carries it.
                own = client.post(path, json=body, headers={"x-request-id": f"order-{protocol}"}).json()
                assert _said(protocol, own)[1] == ("challenger" if canary_share(f"order-{protocol}") < 0.5
                                                   else "champion")
        for protocol, answers in seen.items():
            # The arm is the hash of the server's request id, as for /predict, and both arms answered.
            assert all((variant == "challenger") == (canary_share(rid) < 0.5) for rid, variant, _ in answers)
            assert {v for _, v, _ in answers} == {"champion", "challenger"}, protocol
            assert all(version == {"champion": "1", "challenger": "2"}[variant] for _, variant, version in answers)
        wanted = {rid: (variant, version) for answers in seen.values() for rid, variant, version in answers}

        def logged() -> dict:
            log = read_log(logs / "predictions")
            rows = log[log["request_id"].isin(list(wanted))] if len(log) else log
            return {r.request_id: (r.variant, r.model_version) for r in rows.itertuples()}
        assert wait_until(lambda: logged() == wanted, 20), "every protocol's rows logged as answered"
    finally:
        store.set_model_tags({STRATEGY_TAG: "none", WEIGHT_TAG: "0"})
        lease.release()


BINARY_HEAD = json.dumps({"inputs": [{"name": "region", "datatype": "BYTES", "shape": [1],
                                      "parameters": {"binary_data_size": 8}}]}).encode()
HOSTILE = {  # name: (path, headers, body, status)
    "nested 100,000 deep": (INVOCATIONS, JSON, b"[" * 100_000, 422),
    "a log field as a column": (INVOCATIONS, JSON, b'{"dataframe_records": [{"variant": "challenger"}]}', 422),
    "CSV past the record limit": (INVOCATIONS, CSV, b"age\n" + b"1\n" * 20_000, 413),
    "CSV not UTF-8": (INVOCATIONS, CSV, b"age,region\n\xff\xfe,x\n", 422),
    "gzip": (INVOCATIONS, {**JSON, "content-encoding": "gzip"}, b"\x1f\x8b", 415),
    "a form post": (INVOCATIONS, {"content-type": "application/x-www-form-urlencoded"}, b"a=1", 415),
    "a shape of 10**12 records": (INFER, {}, b'{"inputs": [{"name": "age", "datatype": "FP64", "shape": [10000000000'
                                              b'00]}]}', 413),
    "a 4 GB string in 8 bytes": (INFER, {"inference-header-content-length": str(len(BINARY_HEAD))},
                                 BINARY_HEAD + b"\xff\xff\xff\xffabcd", 422),
    "a browser's simple post": (INFER, {"origin": "https://elsewhere.example"}, b'{"inputs": []}', 415),
    "2 MB": (INFER, {}, b'{"inputs": [], "x": "' + b"a" * 2_000_000 + b'"}', 413),
}


@pytest.mark.parametrize(("path", "headers", "body", "status"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_body_through_each_protocol_gets_a_4xx_in_its_shape(served, path, headers, body, status):
    _, server, _ = served
    response = httpx.post(f"{server.url}{path}", content=body, headers={**AUTH, **headers}, timeout=30)
    assert response.status_code == status, response.text
    shape = {"error"} if path.startswith("/v2") else {"error_code", "message"}
    assert shape <= set(response.json()), response.text
    assert httpx.get(f"{server.url}/ready").status_code == 200  # and the server still serves


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values, where=st.sampled_from(["mlflow", "oip-inputs", "oip-data"]))
def test_fuzzed_bodies_through_each_protocol_never_get_a_5xx(served, body, where):
    _, server, _ = served
    path, payload = {
        "mlflow": (INVOCATIONS, {"dataframe_records": [body]} if isinstance(body, dict) else body),
        "oip-inputs": (INFER, {"inputs": body}),
        "oip-data": (INFER, {"inputs": [{"name": "age", "datatype": "FP64", "shape": [1], "data": body}]})}[where]
    response = httpx.post(f"{server.url}{path}", content=json.dumps(payload), headers={**AUTH, **JSON}, timeout=30)
    assert response.status_code in (200, 413, 422), (payload, response.text)


PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_the_guides_clients_run_as_written(served, netrc):
    """The guide's two clients, run as written against this server (its port for 8080), on a frame
    with missing values: their labels and scores are the registered model's."""
    project, server, _ = served
    guide = Path(__file__).resolve().parents[2] / "docs" / "guides" / "protocols.md"
    blocks = PYTHON_BLOCK.findall(guide.read_text())
    assert len(blocks) == 2 and "ScoringServerClient" in blocks[0] and "tritonclient" in blocks[1]
    frame = _frame(50, seed=8)
    _, sklearn_model = _offline(project, "1")
    for block, asked in zip(blocks, (frame, _as_tritonclient_sends(frame)), strict=True):
        names = {"frame": frame, "token": TOKEN}
        exec(block.replace("8080", str(server.port)), names)  # the docs' own code
        assert list(names["labels"]) == sklearn_model.predict(asked).tolist()
        scores = np.asarray(names["scores"])
        np.testing.assert_allclose(scores, sklearn_model.predict_proba(asked), rtol=0, atol=1e-12)
        assert len(names["request_id"]) == 56
