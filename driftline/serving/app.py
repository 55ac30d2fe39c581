"""The HTTP API of the model server.

A log row is the server's own fields (request id, record index, server time, variant, version,
status, latency, prediction, score) plus the model's input columns as `intake` rebuilt them: a
client cannot write a `variant` or a `timestamp` into it. Request ids are the server's (see
`ids`); a caller's `X-Request-ID` is honoured only when it presented the token, as its own
correlation id (`client_request_id`) and as the key of its canary draw."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from driftline.adapters.predlog import PartitionedLog, join, now
from driftline.adapters.registry.store import MlflowStore
from driftline.config import Feature, ServeSettings
from driftline.core.evaluation import labels_at_own_threshold, row_scores
from driftline.serving.batching import MicroBatcher, Overloaded, PredictFailed
from driftline.serving.hotpath import HotPath
from driftline.serving.ids import RequestIds
from driftline.serving.intake import BadInput, Policy, TooMany, canary_share, intake, parse_json, parse_records, ranges
from driftline.serving.labels import NotIssued, feedback_rows
from driftline.serving.loader import Loaded, ModelSet, Watcher
from driftline.serving.metrics import LogCounters, RegistryGauges

log = logging.getLogger("driftline.serving")


def _predict(loaded: Loaded, records: list[dict]) -> dict:
    frame = loaded.frame(records)
    if loaded.classification:
        proba = loaded.model.predict_proba(frame)
        labels = (labels_at_own_threshold(loaded.model, proba) if hasattr(loaded.model, "threshold")
                  else loaded.model.predict(frame))
        return {"labels": labels, "proba": proba}
    return {"labels": np.asarray(loaded.model.predict(frame), dtype="float64"), "proba": None}


def _bearer(token: str | None):
    """Whether a request's headers carry `token` (compared in constant time)."""
    expected = f"Bearer {token}".encode() if token else None
    return lambda headers: expected is not None and hmac.compare_digest(headers.get(b"authorization", b""), expected)


def create_app(store: MlflowStore, cfg: ServeSettings, log_dir: str | Path, ids: RequestIds,
               features: list[Feature] = (), quarantine: Path | None = None) -> HotPath:
    if cfg.role == "staging":
        # Staging answers the rollout's smoke and behavioural tests: their perturbed rows are not
        # live traffic, and in the prediction log the drift monitor would judge them as such.
        cfg = cfg.model_copy(update={"log_predictions": False})
    watcher = Watcher(store, cfg.poll_seconds, cfg.keep_previous, staging=cfg.role == "staging")
    batcher = MicroBatcher(_predict, cfg.max_batch, cfg.max_wait_ms, cfg.max_pending_requests)
    predictions, feedback = (PartitionedLog(join(log_dir, name), max_backlog=cfg.max_log_backlog_rows,
                                            quarantine=quarantine / name if quarantine else None)
                             for name in ("predictions", "feedback"))
    registry = CollectorRegistry()
    requests = Counter("driftline_requests", "Prediction requests", ["variant", "version", "status"],
                       registry=registry)
    refused = Counter("driftline_refused_requests", "Requests answered other than 200", ["path", "status"],
                      registry=registry)
    latency = Histogram("driftline_request_seconds", "Prediction latency", ["variant", "version"],
                        registry=registry, buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
    scores = Histogram("driftline_prediction_score", "Prediction score", ["variant", "version"],
                       registry=registry, buckets=tuple(i / 10 for i in range(1, 11)))
    registry.register(LogCounters({"predictions": predictions, "feedback": feedback}))
    registry.register(RegistryGauges(watcher))

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
    api.state.watcher, api.state.batcher, api.state.predictions = watcher, batcher, predictions
    predict_caller, feedback_caller = _bearer(cfg.token), _bearer(cfg.feedback_token or cfg.token)
    bounds = ranges(list(features))
    # Times are checked for what each model reads as one, and for what the params declare.
    datetimes = frozenset(f.name for f in features if f.type == "datetime")
    policies: dict[str, object] = {"set": None}  # per model set: each served version's intake policy

    def policy(current: ModelSet, loaded: Loaded) -> Policy:
        if policies["set"] is not current:
            known = frozenset(c for m in current.models.values() for c in m.columns)
            policies.clear()
            policies["set"] = current
            for version, m in current.models.items():
                policies[version] = Policy(
                    known if version == current.rollout.champion else None, cfg.unknown_fields == "drop",
                    m.categories if cfg.unknown_category == "reject" else None, bounds, cfg.out_of_range == "reject",
                    datetimes | m.datetimes)
        return policies[loaded.version]

    async def answer(loaded: Loaded, variant: str, records: list[dict], outside: list[str], request_id: str,
                     client_id: str | None) -> dict:
        start = time.perf_counter()
        try:
            out = await batcher.submit(loaded, records)
        except PredictFailed:
            requests.labels(variant, loaded.version, "error").inc()
            if cfg.log_predictions:
                fields = {"request_id": request_id, "timestamp": now(), "variant": variant,
                          "model_version": loaded.version, "status": "error",
                          "latency_ms": (time.perf_counter() - start) * 1000}
                predictions.append([{**records[i], "out_of_range": outside[i], **fields, "record_index": i}
                                    for i in range(len(records))])
            raise
        elapsed = time.perf_counter() - start
        latency.labels(variant, loaded.version).observe(elapsed)
        requests.labels(variant, loaded.version, "ok").inc()
        labels, proba = out["labels"], out["proba"]
        result = {"request_id": request_id, "model_version": loaded.version, "variant": variant,
                  "predictions": [v.item() if hasattr(v, "item") else v for v in labels]}
        if client_id is not None:
            result["client_request_id"] = client_id
        if proba is not None:
            result["probabilities"] = [dict(zip(loaded.class_names, map(float, row), strict=True)) for row in proba]
            score = row_scores(proba)
        else:
            score = np.asarray(labels, dtype="float64")
        histogram = scores.labels(variant, loaded.version)
        for s in score:
            histogram.observe(float(s))
        if not cfg.log_predictions:
            return result
        # The client's columns first: the server's fields are written last, so they always win.
        fields = {"request_id": request_id, "timestamp": now(), "variant": variant, "model_version": loaded.version,
                  "status": "ok", "latency_ms": elapsed * 1000}
        if client_id is not None:
            fields["client_request_id"] = client_id
        said = result["predictions"]
        predictions.append([{**records[i], "out_of_range": outside[i], **fields, "record_index": i,
                             "prediction": said[i], "score": float(score[i])} for i in range(len(records))])
        return result

    async def failed(err: PredictFailed, loaded: Loaded, request_id: str, trusted: bool) -> tuple[int, dict]:
        """422 when the request's own rows broke the model, 500 when the model is broken."""
        alone = err.alone
        if not alone:  # it was alone in its batch: does the model still answer its own example?
            with contextlib.suppress(PredictFailed, Overloaded):
                await batcher.submit(loaded, loaded.example_records)
                alone = True
        log.warning("request %s: version %s failed to predict: %s", request_id, loaded.version, err)
        if alone:
            return 422, {"detail": "the model could not score this input", "request_id": request_id}
        # The exception's text is for the operator (server log) and for callers holding the token.
        detail = f"prediction failed: {err}" if trusted else "prediction failed; the server log has the reason"
        return 500, {"detail": detail, "request_id": request_id}

    async def predict(headers: dict[bytes, bytes], body: bytes) -> tuple[int, dict]:
        trusted = predict_caller(headers)
        if cfg.token and not trusted:
            return 401, {"detail": "missing or wrong bearer token"}
        current = watcher.current
        if not current.rollout.champion or current.rollout.champion not in current.models:
            return 503, {"detail": "no model loaded yet"}
        if cfg.log_predictions and predictions.full:
            return 503, {"detail": "the prediction log is behind; retry shortly"}
        champion = current.models[current.rollout.champion]
        try:
            raw = parse_records(parse_json(body), cfg.max_records)
            records, outside = intake(raw, champion.columns, policy(current, champion))
        except TooMany as err:
            return 413, {"detail": str(err)}
        except BadInput as err:
            return 422, {"detail": str(err)}
        request_id = ids.issue(len(records))
        client_id = (headers.get(b"x-request-id", b"")[:200].decode("latin-1") or None) if trusted else None
        rollout, challenger = current.rollout, current.models.get(current.rollout.challenger or "")
        chosen, variant, rows = champion, "champion", records
        if headers.get(b"x-driftline-variant") == b"smoke":
            # Blue-green's smoke test: the staged version answers on the live server before the switch.
            if challenger is None or rollout.strategy != "blue-green":
                return 409, {"detail": "no blue-green version is staged for a smoke test"}
            try:
                rows, _ = intake(raw, challenger.columns, policy(current, challenger))
            except BadInput as err:
                return 422, {"detail": str(err)}
            chosen, variant = challenger, "smoke"
        elif challenger is not None and rollout.strategy == "canary" \
                and canary_share(client_id or request_id) < rollout.weight:
            with contextlib.suppress(BadInput):  # rows the challenger cannot take go to the champion
                rows, _ = intake(raw, challenger.columns, policy(current, challenger))
                chosen, variant = challenger, "challenger"
        try:
            try:
                result = await answer(chosen, variant, rows, outside, request_id, client_id)
            except PredictFailed:
                if variant != "challenger":
                    raise
                # Logged as the challenger's error (the analysis counts it); the caller still gets an answer.
                chosen = champion
                result = await answer(champion, "champion", records, outside, request_id, client_id)
        except Overloaded:
            return 503, {"detail": "the server is at capacity; retry shortly"}
        except PredictFailed as err:
            return await failed(err, chosen, request_id, trusted)
        if challenger is not None and rollout.strategy == "shadow":
            # A copy for the challenger, answered by nobody; its log rows feed the analysis.
            with contextlib.suppress(BadInput):
                copy, _ = intake(raw, challenger.columns, policy(current, challenger))
                task = asyncio.create_task(_shadow(answer, challenger, copy, outside, request_id, client_id))
                shadow_tasks.add(task)
                task.add_done_callback(shadow_tasks.discard)
        return 200, result

    async def give_feedback(headers: dict[bytes, bytes], body: bytes) -> tuple[int, dict]:
        if cfg.role == "staging":  # its answers are tests: labels for them would join no live prediction
            return 404, {"detail": "the staging server takes no feedback; send labels to production"}
        if (cfg.feedback_token or cfg.token) and not feedback_caller(headers):
            return 401, {"detail": "missing or wrong bearer token"}
        current = watcher.current
        models = [current.models[v] for v in (current.rollout.champion, current.rollout.challenger)
                  if v in current.models]
        if not models:
            return 503, {"detail": "no model loaded yet"}
        if feedback.full:
            return 503, {"detail": "the feedback log is behind; retry shortly"}
        try:
            rows = feedback_rows(parse_json(body), ids, models, cfg.max_records)
        except NotIssued as err:
            return 404, {"detail": str(err)}
        except TooMany as err:
            return 413, {"detail": str(err)}
        except BadInput as err:
            return 422, {"detail": str(err)}
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
        return {"model_name": store.model_name, "role": cfg.role, "champion": r.champion, "challenger": r.challenger,
                "previous": r.previous, "strategy": r.strategy, "challenger_weight": r.weight if r.challenger else 0.0,
                "loaded": sorted(current.models), "errors": current.errors,
                "batches": batcher.batches, "batched_rows": batcher.rows}

    @api.get("/metrics")
    async def metrics():
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    return HotPath(api, {"/predict": predict, "/feedback": give_feedback}, cfg.max_body_bytes,
                   cfg.body_timeout_seconds, lambda path, status: refused.labels(path, str(status)).inc())


async def _shadow(answer, loaded: Loaded, records: list[dict], outside: list[str], request_id: str,
                  client_id: str | None) -> None:
    # The shadow never affects the caller; its errors are counted in the metrics by `answer`.
    with contextlib.suppress(Exception):
        await answer(loaded, "shadow", records, outside, request_id, client_id)
