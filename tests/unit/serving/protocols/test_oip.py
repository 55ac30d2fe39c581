"""The Open Inference Protocol v2: inference requests (JSON and binary tensors) read as driftline's
records, the answer and error shapes, the GET endpoints, and `/v2/models/{name}/infer` through the
same ModelServer.predict as `/predict` (the app in-process)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from driftline.serving.intake import BadInput, TooMany
from driftline.serving.loader import ModelSet, Rollout
from driftline.serving.protocols.oip import Asked, accepts, answer, read_request
from tests.unit.serving.protocols.conftest import TOKEN

INFER = "/v2/models/loan-default/infer"


def tensors(records: list[dict], columns: dict[str, str]) -> list[dict]:
    return [{"name": c, "shape": [len(records)], "datatype": "FP64" if kind == "double" else "BYTES",
             "data": [r[c] for r in records]} for c, kind in columns.items()]


def read(body: dict | bytes, champion, headers: dict | None = None, max_records: int = 100) -> tuple[list, Asked]:
    asked = Asked()
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return read_request(raw, headers or {}, champion, max_records, asked), asked


def test_one_input_a_column_reads_as_records_with_null_and_nan_missing(models):
    champion, records = models["1"], models["records"][:3]
    inputs = {t["name"]: t for t in tensors(records, champion.columns)}
    inputs["age"]["data"][1] = None
    inputs["credit_score"]["data"][0] = "NAN-HERE"  # NaN, as NumPy's clients write a missing number
    inputs["region"]["data"][2] = None
    inputs["home_ownership"]["shape"] = [3, 1]  # nested, one value a row
    inputs["home_ownership"]["data"] = [[v] for v in inputs["home_ownership"]["data"]]
    text = json.dumps({"id": "order-7", "inputs": list(inputs.values())}).replace('"NAN-HERE"', "NaN")
    got, asked = read(text.encode(), champion)
    expected = [dict(r) for r in records]
    expected[1]["age"], expected[0]["credit_score"], expected[2]["region"] = None, None, None
    assert got == expected
    assert asked.id == "order-7" and asked.outputs == [("predict", False), ("predict_proba", False)]


def test_outputs_are_the_requested_ones_each_as_json_or_binary(models):
    champion, inputs = models["1"], tensors(models["records"][:1], models["1"].columns)
    _, default_binary = read({"inputs": inputs, "parameters": {"binary_data_output": True}}, champion)
    assert default_binary.outputs == [("predict", True), ("predict_proba", True)]
    outputs = [{"name": "predict_proba", "parameters": {"binary_data": False}}]
    _, asked = read({"inputs": inputs, "outputs": outputs, "parameters": {"binary_data_output": True}}, champion)
    assert asked.outputs == [("predict_proba", False)]


def test_binary_tensors_read_as_the_json_ones_do(models):
    champion, records = models["1"], models["records"][:3]
    inputs, blobs = tensors(records, champion.columns), []
    for tensor in inputs[:2] + inputs[-2:]:  # two numbers and two strings as binary, the rest as JSON
        if tensor["datatype"] == "FP64":
            blob = np.array([np.nan if v is None else v for v in tensor.pop("data")], dtype="<f8").tobytes()
        else:
            blob = serialize_byte_tensor(np.array(tensor.pop("data"), dtype=object)).item()
        tensor["parameters"] = {"binary_data_size": len(blob)}
        blobs.append(blob)
    head = json.dumps({"inputs": inputs}).encode()
    got, _ = read(head + b"".join(blobs), champion, {b"inference-header-content-length": str(len(head)).encode()})
    assert got == records


def _binary(inputs: list[dict], tail: bytes) -> tuple[bytes, dict]:
    head = json.dumps({"inputs": inputs}).encode()
    return head + tail, {b"inference-header-content-length": str(len(head)).encode()}


@pytest.mark.parametrize(("change", "needle"), [
    (lambda b: [b], "must be an inference request"),
    (lambda b: {**b, "model_name": "x"}, "unknown key(s) ['model_name']"),
    (lambda b: {**b, "id": 7}, "'id' must be a string"),
    (lambda b: {**b, "id": "x" * 257}, "at most 256 characters"),
    (lambda b: {**b, "parameters": []}, "'parameters' must be a JSON object"),
    (lambda b: {**b, "parameters": {"binary_data_output": "yes"}}, "binary_data_output must be true or false"),
    (lambda b: {"inputs": []}, "'inputs' must be a non-empty list"),
    (lambda b: {"inputs": b["inputs"] + b["inputs"][:1]}, "each name once"),
    (lambda b: {"inputs": [{**b["inputs"][0], "datatype": "BYTES"}]}, "'age' is a number column"),
    (lambda b: {"inputs": [{**b["inputs"][-1], "datatype": "FP64"}]}, "is a string column"),
    (lambda b: {"inputs": [{**b["inputs"][0], "shape": [2, 2]}]}, "'shape' must be [n] or [n, 1]"),
    (lambda b: {"inputs": [{**b["inputs"][0], "shape": [0]}]}, "'shape' must be [n] or [n, 1]"),
    (lambda b: {"inputs": [{**b["inputs"][0], "shape": [True]}]}, "'shape' must be [n] or [n, 1]"),
    (lambda b: {"inputs": [{**b["inputs"][0], "data": [1.0, 2.0]}]}, "'data' must hold 1 values"),
    (lambda b: {"inputs": [b["inputs"][0], {**b["inputs"][1], "shape": [2], "data": [1.0, 2.0]}]},
     "holds 2 values, the first input 1"),
    (lambda b: {"inputs": [{**b["inputs"][0], "parameters": {"shared_memory_region": "r"}}]},
     "shared memory is not supported"),
    (lambda b: {**b, "outputs": [{"name": "transform"}]}, "'transform' is not one of this model's outputs"),
    (lambda b: {**b, "outputs": [{"name": "predict"}, {"name": "predict"}]}, "asked for twice"),
    (lambda b: {**b, "outputs": [{"name": "predict", "parameters": {"classification": 2}}]},
     "classification and shared-memory extensions are not supported"),
])
def test_a_malformed_inference_request_names_the_problem(models, change, needle):
    body = {"inputs": tensors(models["records"][:1], models["1"].columns)}
    with pytest.raises(BadInput) as err:
        read(change(body), models["1"])
    assert needle in str(err.value) and not isinstance(err.value, TooMany)


@pytest.mark.parametrize(("tensor", "tail", "header", "needle"), [
    ({"name": "age", "datatype": "FP64", "shape": [2], "parameters": {"binary_data_size": 8}}, b"\0" * 8, None,
     "binary_data_size is 8 bytes; 2 FP64 values take 16"),
    ({"name": "age", "datatype": "FP64", "shape": [1], "parameters": {"binary_data_size": 16}}, b"\0" * 8, None,
     "binary_data_size must count bytes sent after the JSON"),
    ({"name": "age", "datatype": "FP64", "shape": [1], "parameters": {"binary_data_size": 8}}, b"\0" * 12, None,
     "4 bytes after the JSON part that no input"),
    ({"name": "region", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 6}},
     b"\xff\xff\xff\x7fab", None, "past the end of its binary data"),
    ({"name": "region", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 6}},
     b"\x02\0\0\0ab", None, "ends before value 1 of 2"),
    ({"name": "region", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 6}},
     b"\x02\0\0\0\xff\xfe", None, "value 0 is not UTF-8 text"),
    ({"name": "age", "datatype": "FP64", "shape": [1], "parameters": {"binary_data_size": 8}}, b"\0" * 8, b"-3",
     "Inference-Header-Content-Length must be the length"),
    ({"name": "age", "datatype": "FP64", "shape": [1], "parameters": {"binary_data_size": 8}}, b"\0" * 8, b"999999",
     "Inference-Header-Content-Length must be the length"),
])
def test_malformed_binary_tensors_are_refused_before_anything_is_read_past_them(models, tensor, tail, header, needle):
    body, headers = _binary([tensor], tail)
    if header is not None:
        headers = {b"inference-header-content-length": header}
    with pytest.raises(BadInput) as err:
        read(body, models["1"], headers)
    assert needle in str(err.value)


def test_a_shape_past_the_record_limit_is_too_many_before_its_data_is_read(models):
    huge = {"inputs": [{"name": "age", "datatype": "FP64", "shape": [10 ** 12], "data": []}]}
    with pytest.raises(TooMany):
        read(huge, models["1"])


@pytest.mark.parametrize(("headers", "refused"), [
    ({}, None),  # Triton's Python client sends no Content-Type
    ({b"content-type": b"application/json"}, None), ({b"content-type": b"application/octet-stream"}, None),
    ({b"origin": b"https://elsewhere.example"}, "Content-Type must be application/json"),
    ({b"content-type": b"text/plain"}, "Content-Type must be application/json"),
    ({b"content-encoding": b"gzip"}, "'gzip' is not accepted"),
])
def test_content_types_take_tritons_client_and_refuse_a_browsers_simple_post(headers, refused):
    why = accepts(headers)
    assert why is None if refused is None else refused in why


def test_an_answer_is_json_or_json_then_binary_outputs(models):
    served = {"request_id": "r1", "model_version": "2", "variant": "challenger", "predictions": [1, 0],
              "probabilities": [{"0": 0.25, "1": 0.75}, {"0": 0.5, "1": 0.5}]}
    status, body, headers = answer(200, served, Asked(None, [("predict", False), ("predict_proba", False)]), "m")
    assert status == 200
    assert body == {"model_name": "m", "model_version": "2", "id": "r1",
                    "parameters": {"request_id": "r1", "variant": "challenger"},
                    "outputs": [{"name": "predict", "datatype": "INT64", "shape": [2], "data": [1, 0]},
                                {"name": "predict_proba", "datatype": "FP64", "shape": [2, 2],
                                 "data": [0.25, 0.75, 0.5, 0.5]}]}
    assert dict(headers) == {b"x-driftline-request-id": b"r1"}
    _, raw, headers = answer(200, served, Asked("mine", [("predict_proba", True), ("predict", False)]), "m")
    length = int(dict(headers)[b"inference-header-content-length"])
    head = json.loads(raw[:length])
    assert head["id"] == "mine" and head["parameters"]["request_id"] == "r1"
    assert head["outputs"][0]["parameters"] == {"binary_data_size": 32} and head["outputs"][1]["data"] == [1, 0]
    assert np.frombuffer(raw[length:], dtype="<f8").tolist() == [0.25, 0.75, 0.5, 0.5]
    assert answer(413, {"detail": "too many"}, Asked(), "m")[:2] == (413, {"error": "too many"})


def test_infer_answers_what_predict_answers_and_logs_it_the_same_way(make_app, models):
    app = make_app()
    records = models["records"][:4]

    async def scenario(client):
        native = await client.post("/predict", json=records)
        body = {"id": "batch-1", "inputs": tensors(records, models["1"].columns)}
        return native, await client.post(INFER, content=json.dumps(body))  # no Content-Type, as tritonclient

    native, infer = (r.json() for r in app.run(scenario))
    outputs = {o["name"]: o for o in infer["outputs"]}
    assert outputs["predict"]["data"] == native["predictions"]
    assert outputs["predict_proba"]["data"] == [p for row in native["probabilities"] for p in row.values()]
    assert infer["id"] == "batch-1" and infer["model_name"] == "loan-default" and infer["model_version"] == "1"
    assert app.count("champion", "1") == 2
    log = app.logged()
    assert set(log["request_id"]) == {native["request_id"], infer["parameters"]["request_id"]} and len(log) == 8


def test_infer_errors_use_the_protocols_shape_with_predicts_statuses(make_app, models):
    app = make_app(token=TOKEN, max_records=3)
    auth = {"authorization": f"Bearer {TOKEN}"}
    record = models["records"][0]

    def body(records):
        return json.dumps({"inputs": tensors(records, models["1"].columns)})

    async def scenario(client):
        post = client.post
        return {"anonymous": await post(INFER, content=body([record])),
                "forged": await post(INFER, headers=auth, content=json.dumps({"inputs": [
                    *tensors([record], models["1"].columns),
                    {"name": "variant", "datatype": "BYTES", "shape": [1], "data": ["champion"]}]})),
                "out of range": await post(INFER, headers=auth, content=body([{**record, "region": 7}])),
                "many": await post(INFER, headers=auth, content=body([record] * 4)),
                "get": await client.get(INFER),
                "browser": await post(INFER, headers={**auth, "origin": "https://elsewhere.example"},
                                      content=body([record]))}

    got = app.run(scenario)
    expected = {"anonymous": (401, "bearer token"), "forged": (422, "unknown field 'variant'"),
                "out of range": (422, "'region' must be a string"), "many": (413, "at most 3"),
                "get": (405, "use POST"), "browser": (415, "Content-Type must be application/json")}
    for name, (status, needle) in expected.items():
        assert got[name].status_code == status, (name, got[name].text)
        assert set(got[name].json()) == {"error"} and needle in got[name].json()["error"], name
    assert app.count("champion", "1") == 0 and app.refused(INFER, 422) == 2


def test_a_canary_splits_inference_and_a_version_cannot_be_chosen(make_app, models):
    app = make_app(Rollout("1", "2", "canary", 1.0))
    body = json.dumps({"inputs": tensors(models["records"][:1], models["1"].columns)})

    async def scenario(client):
        return (await client.post(INFER, content=body),
                await client.post("/v2/models/loan-default/versions/1/infer", content=body),
                await client.post("/v2/models/other/infer", content=body))

    split, chosen, other = app.run(scenario)
    assert (split.json()["model_version"], split.json()["parameters"]["variant"]) == ("2", "challenger")
    assert chosen.status_code == 404 and "a version cannot be chosen" in chosen.json()["error"]
    assert other.status_code == 404 and "'other' is not served here" in other.json()["error"]
    assert app.count("challenger", "2") == 1 and app.count("champion", "1") == 0


def test_metadata_and_health_describe_the_served_champion(make_app, models):
    app = make_app(Rollout("1", "2", "canary", 0.5))

    async def scenario(client):
        got = {path: await client.get(path) for path in (
            "/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/loan-default", "/v2/models/loan-default/ready",
            "/v2/models/loan-default/versions/1", "/v2/models/loan-default/versions/2",
            "/v2/models/loan-default/versions/2/ready", "/v2/models/other/ready")}
        app.app.state.watcher.current = ModelSet(Rollout(None, None))  # nothing loaded
        return got, await client.get("/v2/health/ready"), await client.get("/v2/health/live")

    got, unready, live = app.run(scenario)
    assert got["/v2"].json()["extensions"] == ["binary_tensor_data"] and got["/v2"].json()["name"] == "driftline"
    assert all(got[p].status_code == 200 for p in ("/v2/health/live", "/v2/health/ready",
                                                   "/v2/models/loan-default/ready"))
    meta = got["/v2/models/loan-default"].json()
    assert meta == got["/v2/models/loan-default/versions/1"].json() and meta["versions"] == ["1"]
    columns = models["1"].columns
    assert meta["inputs"] == [{"name": c, "datatype": "FP64" if k == "double" else "BYTES", "shape": [-1]}
                              for c, k in columns.items()]
    assert meta["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]},
                               {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]}]
    # The challenger's version is not addressable: the split is the server's.
    assert got["/v2/models/loan-default/versions/2"].status_code == 404
    assert got["/v2/models/loan-default/versions/2/ready"].status_code == 404
    assert got["/v2/models/other/ready"].status_code == 404
    assert unready.status_code == 400 and live.status_code == 200


def test_binary_outputs_are_what_tritons_client_reads(models):
    served = {"request_id": "r", "model_version": "1", "variant": "champion", "predictions": ["yes", "no"]}
    _, raw, headers = answer(200, served, Asked(None, [("predict", True)]), "m")
    length = int(dict(headers)[b"inference-header-content-length"])
    assert json.loads(raw[:length])["outputs"][0]["datatype"] == "BYTES"
    assert deserialize_bytes_tensor(raw[length:]).tolist() == [b"yes", b"no"]
