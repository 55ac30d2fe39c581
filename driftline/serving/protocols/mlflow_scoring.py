"""MLflow's scoring protocol, as `mlflow models serve` speaks it for a tabular model (MLflow 3's
mlflow/pyfunc/scoring_server): `POST /invocations`, `GET /ping` and `GET /version`.

A body is `application/json` holding exactly one of `dataframe_split`, `dataframe_records`,
`instances` or `inputs` (records, or columns of values), and optionally `params`; or `text/csv`
with a header line. The answer is `{"predictions": [...]}`: the model's `predict` (class labels),
as `mlflow models serve` answers for a scikit-learn model, or its `predict_proba` (one list of
probabilities a record, in the model's class order) with `"params": {"predict_fn":
"predict_proba"}`. Beside the predictions, where MLflow's own server writes metadata, are the
request id the server issued (also in the X-Driftline-Request-ID header), the version and the
variant that answered. Errors are MLflow's `{"error_code": ..., "message": ...}`, with the status
`/predict` would answer."""

from __future__ import annotations

import csv
import io
import re

from fastapi import FastAPI
from fastapi.responses import Response

from driftline.serving import gates
from driftline.serving.hotpath import Headers, Reply, Route, request_id_header
from driftline.serving.intake import BadInput, TooMany, parse_json, parse_records
from driftline.serving.loader import Loaded
from driftline.serving.model_server import ModelServer
from driftline.serving.protocols import encoded, token_from_basic

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PREDICT_FNS = ("predict", "predict_proba")
# What pandas.read_csv reads as a missing value by default, as `mlflow models serve` reads CSV.
CSV_MISSING = frozenset(["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                         "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"])
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*|\s*[-+]?(inf|infinity)\s*", re.IGNORECASE)
# MLflow's error codes (mlflow.protos.databricks_pb2) for the statuses driftline answers.
ERROR_CODES = {401: "UNAUTHENTICATED", 404: "ENDPOINT_NOT_FOUND", 409: "RESOURCE_CONFLICT", 500: "INTERNAL_ERROR",
               503: "TEMPORARILY_UNAVAILABLE"}


def error(message: str, status: int = 400) -> dict:
    return {"error_code": ERROR_CODES.get(status, "BAD_REQUEST"), "message": message}


def accepts(headers: Headers) -> str | None:
    """JSON or CSV in UTF-8, as `mlflow models serve` takes them; None when the body is one."""
    value = headers.get(b"content-type")
    if value is None:
        return "Content-Type must be application/json or text/csv"
    media, *parameters = (part.strip() for part in value.decode("latin-1").split(";"))
    media = media.lower()
    if media == "application/vnd.apache.parquet":
        return ("Parquet is not accepted (its compressed columns can expand far past the body limit): "
                "send application/json or text/csv")
    if media not in ("application/json", "text/csv"):
        return f"Content-Type must be application/json or text/csv, got {media[:60]!r}"
    for parameter in parameters:
        key, _, charset = parameter.partition("=")
        if key.strip().lower() != "charset":
            return f"unrecognized content type parameter {key.strip()[:40]!r}"
        if charset.strip().strip('"').lower() != "utf-8":
            return "the scoring server only supports UTF-8"
    return encoded(headers)


def json_records(parsed: object, max_records: int) -> tuple[list[dict], str]:
    """The raw records of an MLflow JSON body, and the `predict_fn` its params ask for."""
    if not isinstance(parsed, dict):
        raise BadInput(f"the input must be a JSON object with exactly one of {', '.join(FORMATS)}; "
                       f"got {'a list' if isinstance(parsed, list) else 'a JSON scalar'}")
    unknown = [k for k in parsed if k not in FORMATS and k != "params"]
    given = [k for k in FORMATS if k in parsed]
    if unknown or len(given) != 1:
        found = ", ".join(repr(k[:40]) for k in list(parsed)[:6]) or "none"
        raise BadInput(f"the input must be a JSON object with exactly one of {', '.join(FORMATS)}, and optionally "
                       f"'params'; found keys {found}")
    fmt, value = given[0], parsed[given[0]]
    if fmt == "dataframe_split":
        records = parse_records({fmt: value}, max_records)  # its "index" (DataFrame.to_dict("split")) is unused
    elif fmt == "dataframe_records" and not isinstance(value, list):
        raise BadInput("dataframe_records must be a list of records")
    elif isinstance(value, dict) and fmt != "dataframe_records":
        records = _columns(fmt, value, max_records)
    elif isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        records = parse_records(value, max_records)
    else:
        raise BadInput(f"{fmt} must be a non-empty list of records (JSON objects)"
                       + (", or an object of columns" if fmt != "dataframe_records" else ""))
    return records, _predict_fn(parsed.get("params"))


def _columns(fmt: str, columns: dict, max_records: int) -> list[dict]:
    """`{"inputs": {"age": [35, 41], ...}}`: records from columns of values; or one record, when
    every column holds a single value (`{"inputs": {"age": 35, ...}}`)."""
    if not columns:
        raise BadInput(f"{fmt} holds no columns")
    lists = [isinstance(v, list) for v in columns.values()]
    if not any(lists):
        return [columns]
    if not all(lists):
        raise BadInput(f"{fmt}: every column must be a list of values, or every column a single value")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise BadInput(f"{fmt}: the columns must hold the same number of values, at least one")
    n = lengths.pop()
    if n > max_records:
        raise TooMany(f"{n} records in one request; at most {max_records} (DRIFTLINE_SERVE_MAX_RECORDS)")
    names, values = list(columns), list(columns.values())
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def _predict_fn(params: object) -> str:
    if params is None:
        return "predict"
    if not isinstance(params, dict):
        raise BadInput("'params' must be a JSON object")
    unknown = [k for k in params if k != "predict_fn"]
    if unknown:
        raise BadInput(f"unknown param {unknown[0][:40]!r}: this server takes 'predict_fn' "
                       "('predict' or 'predict_proba')")
    fn = params.get("predict_fn", "predict")
    if fn not in PREDICT_FNS:
        raise BadInput(f"params.predict_fn must be 'predict' or 'predict_proba', got {str(fn)[:40]!r}")
    return fn


def csv_records(body: bytes, columns: dict[str, str], max_records: int) -> list[dict]:
    """Records from a CSV body with a header line, read as pandas.read_csv reads it for
    `mlflow models serve`: a number column's text as a number, pandas' missing markers (an empty
    field, NA, null, ...) as missing. A column the model does not have stays text, for the
    unknown-field rule to judge."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("the CSV body is not valid UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is not None and "" in header:
            raise BadInput(f"CSV column {header.index('') + 1} has no name (DataFrame.to_csv writes its index so: "
                           "pass index=False)")
        if header is None or len(set(header)) != len(header):
            raise BadInput("the CSV body needs a header line naming each column once, then the rows")
        numbers = [columns.get(name) == "double" for name in header]
        records: list[dict] = []
        for row in reader:
            if len(records) == max_records and row:  # the rest of the body is never read into rows
                raise TooMany(f"more than {max_records} records in one request (DRIFTLINE_SERVE_MAX_RECORDS)")
            if row:  # pandas skips blank lines too
                records.append(_csv_record(len(records), row, header, numbers))
    except csv.Error as err:
        raise BadInput(f"the CSV body does not parse: {err}") from None
    if not records:
        raise BadInput("the CSV body holds a header line and no rows")
    return records


def _csv_record(i: int, row: list[str], header: list[str], numbers: list[bool]) -> dict:
    if len(row) != len(header):
        raise BadInput(f"CSV record {i}: {len(row)} fields, the header names {len(header)}")
    record: dict[str, object] = {}
    for name, value, number in zip(header, row, numbers, strict=True):
        if value in CSV_MISSING:
            record[name] = None
        elif not number:
            record[name] = value
        elif _NUMBER.fullmatch(value):
            record[name] = float(value)  # an infinity is refused by intake, as on /predict
        else:
            raise BadInput(f"record {i}: field {name!r} must be a number, got {value[:40]!r}")
    return record


class Invocations:
    """`POST /invocations`: an MLflow scoring body through `ModelServer.predict`, answered in
    MLflow's shape."""

    def __init__(self, server: ModelServer):
        self.server = server

    async def __call__(self, headers: Headers, body: bytes) -> Reply:
        csv_body = headers.get(b"content-type", b"").split(b";")[0].strip().lower() == b"text/csv"
        asked = {"predict_fn": "predict"}

        def parse(data: bytes, champion: Loaded, max_records: int) -> list[dict]:
            if csv_body:
                return csv_records(data, champion.columns, max_records)
            records, asked["predict_fn"] = json_records(parse_json(data, nan_as_missing=True), max_records)
            if asked["predict_fn"] == "predict_proba" and not champion.classification:
                raise BadInput("predict_fn 'predict_proba' is for classifiers; this model is a regression")
            return records

        status, payload = await self.server.predict(token_from_basic(headers), body, parse)
        return status, answer(status, payload, asked["predict_fn"]), request_id_header(payload)


def answer(status: int, payload: dict, predict_fn: str = "predict") -> dict:
    """ModelServer's answer in MLflow's shape: the predictions, then driftline's own fields."""
    if status != 200:
        out = error(payload["detail"], status)
    elif predict_fn == "predict_proba":
        out = {"predictions": [list(row.values()) for row in payload["probabilities"]]}
    else:
        out = {"predictions": payload["predictions"]}
    for key in ("request_id", "client_request_id", "model_version", "variant"):
        if key in payload:
            out[key] = payload[key]
    return out


def route(server: ModelServer) -> Route:
    return Route(Invocations(server), accepts, error, gates.bearer(server.cfg.token, token_from_basic))


def add_endpoints(api: FastAPI, server: ModelServer) -> None:
    """`GET /ping` as MLflow's: 200 with an empty line once a model is loaded, 404 before (driftline's
    own `/health` stays the process's liveness check); `GET /version`: the MLflow version whose
    scoring protocol this is."""

    @api.get("/ping")
    async def ping():
        return Response("\n", status_code=200 if server.ready()[0] == 200 else 404, media_type="application/json")

    @api.get("/version")
    async def version():
        from mlflow.version import VERSION

        return Response(VERSION, media_type="application/json")
