"""The HTTP API of the model server."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from driftline.config import ServeSettings
from driftline.core.evaluation import labels_at_own_threshold, live_scores
from driftline.serving.batching import MicroBatcher
from driftline.serving.loader import Loaded, Watcher
from driftline.serving.predlog import PartitionedLog, join, now
from driftline.tracking import MlflowStore


class BadInput(ValueError):
    pass


def parse_records(body: object) -> list[dict]:
    """One record, a list of records, MLflow's `dataframe_records` or `dataframe_split`."""
    if isinstance(body, dict) and "dataframe_split" in body:
        split = body["dataframe_split"]
        if not isinstance(split, dict) or not isinstance(split.get("columns"), list) \
                or not isinstance(split.get("data"), list):
            raise BadInput("dataframe_split needs 'columns' (a list) and 'data' (a list of rows)")
        rows = []
        for i, row in enumerate(split["data"]):
            if not isinstance(row, list) or len(row) != len(split["columns"]):
                raise BadInput(f"dataframe_split.data[{i}] must be a list of {len(split['columns'])} values")
            rows.append(dict(zip(split["columns"], row, strict=True)))
        return rows
    if isinstance(body, dict) and "dataframe_records" in body:
        body = body["dataframe_records"]
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list) and body and all(isinstance(r, dict) for r in body):
        return body
    raise BadInput("expected a JSON object (one record), a non-empty list of records, "
                   "or {'dataframe_split': {...}}")


def check_records(records: list[dict], columns: dict[str, str], categories: dict[str, set] | None = None) -> None:
    """Against the model's signature; with `categories`, a category outside them is refused too."""
    for i, record in enumerate(records):
        for name, kind in columns.items():
            if name not in record:
                raise BadInput(f"record {i}: missing field {name!r}")
            value = record[name]
            if value is None:
                continue
            if kind == "double" and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise BadInput(f"record {i}: field {name!r} must be a number, got {value!r}")
            if kind == "double" and not math.isfinite(value):
                raise BadInput(f"record {i}: field {name!r} must be finite, got {value!r}")
            if kind == "string" and not isinstance(value, str):
                raise BadInput(f"record {i}: field {name!r} must be a string, got {value!r}")
            if categories and name in categories and value not in categories[name]:
                known = sorted(categories[name])
                shown = ", ".join(map(repr, known[:20])) + (", ..." if len(known) > 20 else "")
                raise BadInput(f"record {i}: field {name!r} has unknown category {value!r} (known: {shown})")


def canary_share(request_id: str) -> float:
    """A request id's place in [0, 1): the same on every replica, so they agree on the split."""
    return int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") / 2**64


def _predict(loaded: Loaded, records: list[dict]) -> dict:
    frame = loaded.frame(records)
    if loaded.classification:
        proba = loaded.model.predict_proba(frame)
        labels = (labels_at_own_threshold(loaded.model, proba) if hasattr(loaded.model, "threshold")
                  else loaded.model.predict(frame))
        return {"labels": labels, "proba": proba}
    return {"labels": np.asarray(loaded.model.predict(frame), dtype="float64"), "proba": None}


def create_app(store: MlflowStore, cfg: ServeSettings, log_dir: str | Path) -> HotPath:
    watcher = Watcher(store, cfg.poll_seconds, cfg.keep_previous)
    batcher = MicroBatcher(_predict, cfg.max_batch, cfg.max_wait_ms)
    predictions = PartitionedLog(join(log_dir, "predictions"))
    feedback = PartitionedLog(join(log_dir, "feedback"))
    registry = CollectorRegistry()
    requests = Counter("driftline_requests", "Prediction requests", ["variant", "version", "status"],
                       registry=registry)
    latency = Histogram("driftline_request_seconds", "Prediction latency", ["variant", "version"],
                        registry=registry, buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
    scores = Histogram("driftline_prediction_score", "Prediction score", ["variant", "version"],
                       registry=registry, buckets=tuple(i / 10 for i in range(1, 11)))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.get_running_loop().run_in_executor(None, watcher.start)
        batcher.start()
        predictions.start()
        feedback.start()
        yield
        watcher.stop()
        await batcher.stop()
        predictions.stop()
        feedback.stop()

    api = FastAPI(title="driftline model server", lifespan=lifespan)
    shadow_tasks: set[asyncio.Task] = set()  # held so the event loop does not drop them
    reject = cfg.unknown_category == "reject"
    api.state.watcher, api.state.batcher, api.state.predictions = watcher, batcher, predictions

    def denied(headers: dict[bytes, bytes]) -> tuple[int, dict] | None:
        if cfg.token and headers.get(b"authorization") != f"Bearer {cfg.token}".encode():
            return 401, {"detail": "missing or wrong bearer token"}
        return None

    def parse_json(body: bytes) -> object:
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise BadInput(f"body is not valid JSON: {err}") from None

    async def answer(loaded: Loaded, variant: str, records: list[dict], request_id: str) -> dict:
        start = time.perf_counter()
        try:
            out = await batcher.submit(loaded, records)
        except Exception:
            requests.labels(variant, loaded.version, "error").inc()
            predictions.append([{"request_id": request_id, "timestamp": now(), "variant": variant,
                                 "model_version": loaded.version, "status": "error",
                                 "latency_ms": (time.perf_counter() - start) * 1000}])
            raise
        elapsed = time.perf_counter() - start
        latency.labels(variant, loaded.version).observe(elapsed)
        requests.labels(variant, loaded.version, "ok").inc()
        labels, proba = out["labels"], out["proba"]
        result = {"request_id": request_id, "model_version": loaded.version, "variant": variant,
                  "predictions": [v.item() if hasattr(v, "item") else v for v in labels]}
        if proba is not None:
            result["probabilities"] = [dict(zip(loaded.class_names, map(float, row), strict=True)) for row in proba]
            score = live_scores(proba)
        else:
            score = np.asarray(labels, dtype="float64")
        histogram = scores.labels(variant, loaded.version)
        for s in score:
            histogram.observe(float(s))
        if not cfg.log_predictions:
            return result
        stamp = now()
        predictions.append([{"request_id": request_id, "timestamp": stamp, "variant": variant,
                             "model_version": loaded.version, "status": "ok", "latency_ms": elapsed * 1000,
                             **records[i],
                             "prediction": result["predictions"][i], "score": float(score[i])}
                            for i in range(len(records))])
        return result

    async def predict(headers: dict[bytes, bytes], body: bytes) -> tuple[int, dict]:
        if (no := denied(headers)) is not None:
            return no
        current = watcher.current
        if not current.rollout.champion or current.rollout.champion not in current.models:
            return 503, {"detail": "no model loaded yet"}
        def check(loaded: Loaded) -> None:
            check_records(records, loaded.columns, loaded.categories if reject else None)

        try:
            records = parse_records(parse_json(body))
            champion = current.models[current.rollout.champion]
            check(champion)
        except BadInput as err:
            return 422, {"detail": str(err)}
        request_id = headers.get(b"x-request-id", b"").decode("latin-1") or os.urandom(16).hex()  # uuid4: 5% of loop
        rollout, challenger = current.rollout, current.models.get(current.rollout.challenger or "")
        chosen, variant = champion, "champion"
        if headers.get(b"x-driftline-variant") == b"smoke":
            # Blue-green's smoke test: the staged version answers on the live server before the switch.
            if challenger is None or rollout.strategy != "blue-green":
                return 409, {"detail": "no blue-green version is staged for a smoke test"}
            try:
                check(challenger)
            except BadInput as err:
                return 422, {"detail": str(err)}
            chosen, variant = challenger, "smoke"
        elif challenger is not None and rollout.strategy == "canary" and canary_share(request_id) < rollout.weight:
            with contextlib.suppress(BadInput):  # rows the challenger cannot take go to the champion
                check(challenger)
                chosen, variant = challenger, "challenger"
        try:
            result = await answer(chosen, variant, records, request_id)
        except Exception as err:  # noqa: BLE001 - counted and logged by `answer`; the caller gets a reason
            return 500, {"detail": f"prediction failed: {type(err).__name__}: {err}", "request_id": request_id}
        if challenger is not None and rollout.strategy == "shadow":
            # A copy for the challenger, answered by nobody; its log rows feed the analysis.
            task = asyncio.create_task(_shadow(answer, challenger, records, request_id))
            shadow_tasks.add(task)
            task.add_done_callback(shadow_tasks.discard)
        return 200, result

    async def give_feedback(headers: dict[bytes, bytes], body: bytes) -> tuple[int, dict]:
        if (no := denied(headers)) is not None:
            return no
        try:
            parsed = parse_json(body)
        except BadInput as err:
            return 422, {"detail": str(err)}
        items = parsed if isinstance(parsed, list) else [parsed]
        rows = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("request_id"), str) or "label" not in item:
                return 422, {"detail": f"feedback[{i}] needs 'request_id' (string) and 'label'"}
            rows.append({"request_id": item["request_id"], "label": json.dumps(item["label"]), "timestamp": now()})
        feedback.append(rows)
        return 200, {"accepted": len(rows)}

    @api.get("/health")
    async def health():
        return {"status": "alive"}

    @api.get("/ready")
    async def ready():
        current = watcher.current
        if current.rollout.champion in current.models:
            return {"status": "ready", "champion": current.rollout.champion}
        return JSONResponse({"status": "not ready", "errors": current.errors}, status_code=503)

    @api.get("/models")
    async def models():
        current = watcher.current
        r = current.rollout
        return {"model_name": store.model_name, "champion": r.champion, "challenger": r.challenger,
                "previous": r.previous, "strategy": r.strategy, "challenger_weight": r.weight if r.challenger else 0.0,
                "loaded": sorted(current.models), "errors": current.errors,
                "batches": batcher.batches, "batched_rows": batcher.rows}

    @api.get("/metrics")
    async def metrics():
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    return HotPath(api, {"/predict": predict, "/feedback": give_feedback}, cfg.max_body_bytes)


class HotPath:
    """`POST /predict` and `POST /feedback` as bare ASGI; everything else goes to FastAPI.

    At saturation FastAPI's middleware, routing and response encoding took about 1 ms of the
    event loop's ~1.4 ms per request here, and the event loop shares one GIL with the predict
    thread, so that time came straight off throughput."""

    def __init__(self, api: FastAPI, handlers: dict, max_body_bytes: int):
        self.api, self.handlers, self.max_body_bytes = api, handlers, max_body_bytes
        self.state = api.state

    async def __call__(self, scope, receive, send) -> None:
        handler = self.handlers.get(scope.get("path")) if scope["type"] == "http" else None
        if handler is None:
            await self.api(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _send_json(send, 405, {"detail": "method not allowed; use POST"})
            return
        headers = dict(scope["headers"])
        body = await _read_body(receive, headers, self.max_body_bytes)
        if body is None:
            status, payload = 413, {"detail": f"body larger than {self.max_body_bytes} bytes"}
        else:
            status, payload = await handler(headers, body)
        await _send_json(send, status, payload)


async def _read_body(receive, headers: dict[bytes, bytes], limit: int) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed `limit`."""
    length = headers.get(b"content-length", b"")
    if length.isdigit() and int(length) > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_json(send, status: int, payload: dict) -> None:
    body = json.dumps(payload, allow_nan=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _shadow(answer, loaded: Loaded, records: list[dict], request_id: str) -> None:
    # The shadow never affects the caller; its errors are counted in the metrics by `answer`.
    with contextlib.suppress(Exception):
        await answer(loaded, "shadow", records, request_id)
