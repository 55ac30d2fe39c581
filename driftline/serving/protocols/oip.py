"""The Open Inference Protocol v2 over REST (KServe's and Triton's "v2", MLServer's), for the
registered model under its registry name: `GET /v2`, `/v2/health/live`, `/v2/health/ready`,
`/v2/models/{name}`, `/v2/models/{name}/ready` and `POST /v2/models/{name}/infer`, with Triton's
binary tensor data extension. gRPC is not served.

A request holds one input a model column, named as the column, of shape [n] (or [n, 1]): numbers
as FP64 (or another numeric datatype), strings as BYTES; a missing value is null in JSON data, or
NaN in a number's (JSON or binary). The outputs are `predict` (the labels, or a regression's
numbers) and, for a classifier, `predict_proba` ([n, classes], in the model's class order): the
requested ones, else all. The answer's `id` is the request's, else the server's request id; its
`parameters.request_id` is always the server's (also in the X-Driftline-Request-ID header), the
id /feedback takes. A version is never the caller's to choose: the versioned routes answer for
the champion's version only, and a versioned inference is 404. Errors are `{"error": "..."}`,
with the status `/predict` would answer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.metadata import version as installed

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from driftline.serving import gates
from driftline.serving.hotpath import Headers, Reply, Route, request_id_header
from driftline.serving.intake import BadInput, TooMany, json_content_type, parse_json
from driftline.serving.loader import Loaded
from driftline.serving.model_server import ModelServer
from driftline.serving.protocols import encoded, token_from_basic
from driftline.serving.protocols.tensors import (
    binary_values,
    check_datatype,
    column_datatype,
    json_values,
    to_bytes,
    value_datatype,
)

REQUEST_KEYS = frozenset({"id", "parameters", "inputs", "outputs"})
MAX_ID = 256  # characters of a request's own `id`, echoed in the answer


def error(message: str, status: int = 400) -> dict:
    return {"error": message}


def accepts(headers: Headers) -> str | None:
    """JSON, the binary extension's octet stream, or no Content-Type at all: Triton's Python client
    sends none. A body without one is refused from a browser (it sends an Origin header): a page
    could post it cross-site without a preflight, and it must not write to the prediction log."""
    value = headers.get(b"content-type")
    if value is None:
        if b"origin" in headers:
            return "Content-Type must be application/json (or application/octet-stream with binary tensors)"
    elif not json_content_type(value) and value.split(b";")[0].strip().lower() != b"application/octet-stream":
        return "Content-Type must be application/json (or application/octet-stream with binary tensors)"
    return encoded(headers)


@dataclass
class Asked:
    """What an inference request asks for besides its records."""

    id: str | None = None
    outputs: list[tuple[str, bool]] = field(default_factory=list)  # (name, as binary data)


def read_request(body: bytes, headers: Headers, champion: Loaded, max_records: int, asked: Asked) -> list[dict]:
    """The raw records of an inference request (its outputs and id go to `asked`)."""
    json_size, binary = headers.get(b"inference-header-content-length"), memoryview(b"")
    if json_size is not None:
        if not json_size.strip().isdigit() or not 0 < int(json_size) <= len(body):
            raise BadInput("Inference-Header-Content-Length must be the length of the JSON part of the body, in bytes")
        body, binary = body[:int(json_size)], memoryview(body)[int(json_size):]
    request = parse_json(body, nan_as_missing=True)
    if not isinstance(request, dict) or not request.keys() <= REQUEST_KEYS:
        extra = sorted(request.keys() - REQUEST_KEYS)[:3] if isinstance(request, dict) else []
        raise BadInput("the body must be an inference request: a JSON object of 'inputs', and optionally 'id', "
                       "'parameters' and 'outputs'" + (f"; unknown key(s) {extra}" if extra else ""))
    rid, parameters = request.get("id"), request.get("parameters", {})
    if rid is not None and (type(rid) is not str or len(rid) > MAX_ID):
        raise BadInput(f"'id' must be a string of at most {MAX_ID} characters")
    if not isinstance(parameters, dict):
        raise BadInput("'parameters' must be a JSON object")
    asked.id = rid
    asked.outputs = requested(request.get("outputs"), champion, _flag(parameters, "binary_data_output", "parameters"))
    inputs = request.get("inputs")
    if type(inputs) is not list or not inputs:
        raise BadInput("'inputs' must be a non-empty list of tensors, one a column")
    columns: dict[str, list] = {}
    count, at = None, 0
    for tensor in inputs:  # the checks cost ~2 µs a column: this loop is on the hot path
        name = tensor.get("name") if type(tensor) is dict else None
        if type(name) is not str or name in columns:
            raise BadInput("every input is an object with a 'name' (a model column), each name once")
        datatype, tparams = tensor.get("datatype"), tensor.get("parameters")
        check_datatype(name, datatype, champion.columns.get(name))
        rows = _rows(name, tensor.get("shape"))
        if count is None:
            if rows > max_records:
                raise TooMany(f"{rows} records in one request; at most {max_records} (DRIFTLINE_SERVE_MAX_RECORDS)")
            count = rows
        elif rows != count:
            raise BadInput(f"input {name!r} holds {rows} values, the first input {count}: one value a record in each")
        if tparams is None:
            columns[name] = json_values(name, tensor.get("data"), count)
            continue
        if type(tparams) is not dict or "shared_memory_region" in tparams:
            raise BadInput(f"input {name!r}: 'parameters' must be an object; shared memory is not supported")
        size = tparams.get("binary_data_size")
        if size is None:
            columns[name] = json_values(name, tensor.get("data"), count)
            continue
        if type(size) is not int or size < 0 or at + size > len(binary) or "data" in tensor:
            raise BadInput(f"input {name!r}: binary_data_size must count bytes sent after the JSON, "
                           "and such an input has no 'data'")
        columns[name] = binary_values(name, binary[at:at + size], datatype, count)
        at += size
    if at != len(binary):
        raise BadInput(f"{len(binary) - at} bytes after the JSON part that no input's binary_data_size claims")
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _rows(name: str, shape: object) -> int:
    """n, of a shape [n] or [n, 1] (`type(...) is int`: a bool is no dimension)."""
    if type(shape) is list and 1 <= len(shape) <= 2 and type(shape[0]) is int and shape[0] >= 1 \
            and (len(shape) == 1 or (type(shape[1]) is int and shape[1] == 1)):
        return shape[0]
    raise BadInput(f"input {name!r}: 'shape' must be [n] or [n, 1], n >= 1 records")


def _flag(parameters: dict, key: str, where: str) -> bool:
    value = parameters.get(key, False)
    if type(value) is not bool:
        raise BadInput(f"{where}.{key} must be true or false")
    return value


def outputs_of(loaded: Loaded) -> list[str]:
    return ["predict", "predict_proba"] if loaded.classification else ["predict"]


def requested(outputs: object, champion: Loaded, binary: bool) -> list[tuple[str, bool]]:
    """The outputs to answer with, and whether each goes as binary data; all when none are named."""
    available = outputs_of(champion)
    if outputs is None:
        return [(name, binary) for name in available]
    if not isinstance(outputs, list) or not outputs or not all(isinstance(o, dict) for o in outputs):
        raise BadInput("'outputs' must be a non-empty list of {\"name\": ...} objects")
    chosen: list[tuple[str, bool]] = []
    for output in outputs:
        name, parameters = output.get("name"), output.get("parameters", {})
        if name not in available or any(name == n for n, _ in chosen):
            raise BadInput(f"outputs: {str(name)[:40]!r} is not one of this model's outputs ({', '.join(available)}), "
                           "or is asked for twice")
        if not isinstance(parameters, dict) or "classification" in parameters or "shared_memory_region" in parameters:
            raise BadInput(f"output {name!r}: Triton's classification and shared-memory extensions are not "
                           "supported (ask for predict_proba)")
        chosen.append((name, _flag(parameters, "binary_data", f"output {name!r} parameters")
                       if "binary_data" in parameters else binary))
    return chosen


def answer(status: int, payload: dict, asked: Asked, model_name: str) -> Reply:
    """ModelServer's answer as an inference response (JSON, or JSON then the binary outputs)."""
    headers = request_id_header(payload)
    if status != 200:
        return status, error(payload["detail"]), headers
    n = len(payload["predictions"])
    tensors, blobs = [], []
    for name, binary in asked.outputs:
        if name == "predict":
            values, datatype, shape = payload["predictions"], value_datatype(payload["predictions"][0]), [n]
        else:
            rows = payload["probabilities"]
            values, datatype, shape = [p for row in rows for p in row.values()], "FP64", [n, len(rows[0])]
        tensor: dict = {"name": name, "datatype": datatype, "shape": shape}
        if binary:
            blobs.append(to_bytes(values, datatype))
            tensor["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            tensor["data"] = values
        tensors.append(tensor)
    own = {k: payload[k] for k in ("request_id", "variant", "client_request_id") if k in payload}
    out = {"model_name": model_name, "id": asked.id or payload["request_id"], "parameters": own, "outputs": tensors}
    if "model_version" in payload:  # not for a caller who may not know which arm answered
        out = {"model_name": model_name, "model_version": payload["model_version"], **out}
    if not blobs:
        return 200, out, headers
    head = json.dumps(out, allow_nan=False).encode()
    return 200, head + b"".join(blobs), (*headers, (b"content-type", b"application/octet-stream"),
                                         (b"inference-header-content-length", str(len(head)).encode()))


class Infer:
    """`POST /v2/models/{name}/infer` through `ModelServer.predict`."""

    def __init__(self, server: ModelServer, model_name: str):
        self.server, self.model_name = server, model_name

    async def __call__(self, headers: Headers, body: bytes) -> Reply:
        asked = Asked()

        def parse(data: bytes, champion: Loaded, max_records: int) -> list[dict]:
            return read_request(data, headers, champion, max_records, asked)

        status, payload = await self.server.predict(token_from_basic(headers), body, parse)
        return answer(status, payload, asked, self.model_name)


def routes(server: ModelServer, model_name: str) -> dict[str, Route]:
    return {f"/v2/models/{model_name}/infer": Route(Infer(server, model_name), accepts, error,
                                                        gates.bearer(server.cfg.token, token_from_basic))}


def add_endpoints(api: FastAPI, server: ModelServer, model_name: str) -> None:
    """The protocol's GET endpoints, and a 404 in its shape for an inference the hot path does not
    take: another model's, or a chosen version's."""

    def served(model: str, version: str | None) -> Loaded | JSONResponse:
        current = server.watcher.current
        champion = current.rollout.champion
        if model != model_name:
            return JSONResponse(error(f"model {model[:60]!r} is not served here; this server serves {model_name!r}"),
                                404)
        if champion not in current.models:
            return JSONResponse(error("no model loaded yet"), 503)
        if version is not None and version != champion:
            return JSONResponse(error(f"version {version[:20]!r} is not served: the served version is {champion}"),
                                404)
        return current.models[champion]

    def metadata(model: str, version: str | None):
        loaded = served(model, version)
        if isinstance(loaded, JSONResponse):
            return loaded
        label = value_datatype(loaded.model.classes_[0].item()) if loaded.classification else "FP64"
        outputs = [{"name": "predict", "datatype": label, "shape": [-1]}]
        if loaded.classification:
            outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(loaded.class_names)]})
        return {"name": model_name, "versions": [loaded.version], "platform": "sklearn",
                "inputs": [{"name": c, "datatype": column_datatype(kind), "shape": [-1]}
                           for c, kind in loaded.columns.items()], "outputs": outputs}

    def ready(model: str, version: str | None):
        loaded = served(model, version)
        return Response(status_code=loaded.status_code if isinstance(loaded, JSONResponse) else 200)

    @api.get("/v2")
    async def server_metadata():
        return {"name": "driftline", "version": installed("driftline"), "extensions": ["binary_tensor_data"]}

    @api.get("/v2/health/live")
    async def live():
        return Response(status_code=200)

    @api.get("/v2/health/ready")
    async def server_ready():
        # The protocol's health answers are a status alone: 200 for true, a 4xx for false.
        return Response(status_code=200 if server.ready()[0] == 200 else 400)

    @api.get("/v2/models/{model}")
    async def model_metadata(model: str):
        return metadata(model, None)

    @api.get("/v2/models/{model}/versions/{version}")
    async def version_metadata(model: str, version: str):
        return metadata(model, version)

    @api.get("/v2/models/{model}/ready")
    async def model_ready(model: str):
        return ready(model, None)

    @api.get("/v2/models/{model}/versions/{version}/ready")
    async def version_ready(model: str, version: str):
        return ready(model, version)

    @api.post("/v2/models/{model}/infer")
    async def other_model(model: str):
        return JSONResponse(error(f"model {model[:60]!r} is not served here; this server serves {model_name!r}"), 404)

    @api.post("/v2/models/{model}/versions/{version}/infer")
    async def chosen_version(model: str, version: str):
        return JSONResponse(error("a version cannot be chosen: the server's rollout picks the version that answers "
                                  f"(the canary split). Send POST /v2/models/{model_name}/infer"), 404)
