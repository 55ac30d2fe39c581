"""The HTTP API of the model server: `create_app` wires the parts of a `ModelServer` (the registry
watcher, the micro-batcher, the prediction and feedback logs, the metrics) and routes HTTP to its
methods, in driftline's own protocol and in the ones clients already speak (serving/protocols).
What a request does is in model_server.py."""

from __future__ import annotations

import asyncio
import gc
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from driftline.adapters.predlog import PartitionedLog, join
from driftline.adapters.registry.store import MlflowStore
from driftline.config import Feature, ServeSettings
from driftline.serving import gates
from driftline.serving.batching import MicroBatcher
from driftline.serving.hotpath import HotPath, Route, with_request_id
from driftline.serving.ids import RequestIds
from driftline.serving.loader import Watcher
from driftline.serving.metrics import ServerMetrics
from driftline.serving.model_server import ModelServer
from driftline.serving.protocols import mlflow_scoring, oip
from driftline.serving.rows import predict_batch


def create_app(store: MlflowStore, cfg: ServeSettings, log_dir: str | Path, ids: RequestIds,
               features: list[Feature] | tuple[Feature, ...] = (), quarantine: Path | None = None) -> HotPath:
    if cfg.role == "staging":
        # Staging answers the rollout's smoke and behavioural tests: their perturbed rows are not
        # live traffic, and in the prediction log the drift monitor would judge them as such.
        cfg = cfg.model_copy(update={"log_predictions": False})
    watcher = Watcher(store, cfg.poll_seconds, cfg.keep_previous, staging=cfg.role == "staging")
    batcher = MicroBatcher(predict_batch, cfg.max_batch, cfg.max_wait_ms, cfg.max_pending_requests)
    predictions, feedback = (PartitionedLog(join(log_dir, name), max_backlog=cfg.max_log_backlog_rows,
                                            quarantine=quarantine / name if quarantine else None, unique=unique)
                             for name, unique in (("predictions", ()), ("feedback", ("request_id", "record_index"))))
    metrics = ServerMetrics({"predictions": predictions, "feedback": feedback}, watcher)
    server = ModelServer(watcher, batcher, predictions, feedback, metrics, cfg, ids, features)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.get_running_loop().run_in_executor(None, watcher.start)
        # What start-up left (the imports and the first models: about 240,000 objects) goes out of
        # the cyclic collector's reach: each full collection walked them all and stalled every
        # request in flight for 100-300 ms, the server's p99 under load.
        gc.collect()
        gc.freeze()
        batcher.start()
        predictions.start()
        feedback.start()
        yield
        watcher.stop()
        await batcher.stop()
        predictions.stop()
        feedback.stop()

    api = FastAPI(title="driftline model server", lifespan=lifespan)
    api.state.server = server
    api.state.watcher, api.state.batcher = watcher, batcher
    api.state.predictions, api.state.feedback = predictions, feedback

    @api.get("/health")
    async def health():
        return {"status": "alive"}

    @api.get("/ready")
    async def ready():
        status, body = server.ready()
        return body if status == 200 else JSONResponse(body, status_code=status)

    def raw_headers(request: Request) -> dict[bytes, bytes]:
        return {k.lower(): v for k, v in request.headers.raw}

    @api.get("/models")
    async def models(request: Request):
        return server.models(raw_headers(request))

    @api.get("/metrics")
    async def exposition(request: Request):
        if cfg.closed and not server.insider(raw_headers(request)):  # weights and versions are the rollout's
            return JSONResponse({"detail": "missing or wrong bearer token (the metrics token)"}, status_code=401,
                                headers={"www-authenticate": "Bearer"})
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    mlflow_scoring.add_endpoints(api, server)
    oip.add_endpoints(api, server, store.model_name)
    # The POST endpoints, as bare ASGI: every protocol's prediction goes through server.predict.
    # Each route's credential is checked from the headers before its body is read (serving/gates).
    routes = {"/predict": Route(with_request_id(server.predict), gate=gates.bearer(cfg.token)),
              "/feedback": Route(server.feedback, gate=gates.labels(cfg)),
              "/invocations": mlflow_scoring.route(server), **oip.routes(server, store.model_name)}
    return HotPath(api, routes, cfg.max_body_bytes, cfg.body_timeout_seconds, metrics.refuse)
