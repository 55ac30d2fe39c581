"""The model server's request path as one object: `ModelServer`, whose handlers are methods that a
reader can find by name and a test can call (`create_app` in app.py only wires them to HTTP).

A log row is the server's own fields (request id, record index, server time, variant, version,
status, latency, prediction, score) plus the model's input columns as `intake` rebuilt them: a
client cannot write a `variant` or a `timestamp` into it (`rows.log_rows`). Request ids are the
server's (see `ids`); a caller's `X-Request-ID` is honoured only when it presented the token, as
its own correlation id (`client_request_id`) and as the key of its canary draw."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from driftline.adapters.predlog import PartitionedLog
from driftline.config import Feature, ServeSettings
from driftline.core.evaluation import row_scores
from driftline.core.rollout import ERROR, INPUT_ERROR
from driftline.serving.batching import MicroBatcher, Overloaded, PredictFailed
from driftline.serving.gates import labels, presents
from driftline.serving.ids import RequestIds
from driftline.serving.intake import BadInput, Policy, TooMany, intake, parse_json, parse_records, ranges
from driftline.serving.labels import NotIssued, feedback_rows
from driftline.serving.loader import Loaded, ModelSet, Watcher
from driftline.serving.metrics import ServerMetrics
from driftline.serving.rows import log_rows

log = logging.getLogger("driftline.serving")

Answer = tuple[int, dict]  # (HTTP status, JSON body)
# A body as raw records, given the champion (its columns) and the most records a request may hold;
# raises BadInput (422) or TooMany (413). One per protocol: `/predict`'s is `predict_records`.
Parse = Callable[[bytes, Loaded, int], list[dict]]
# How long /feedback waits for its labels to be written: a log whose store retries (about 4 s on
# S3) still answers within it.
LABELS_WRITTEN_SECONDS = 15.0
# The caller's address, as HotPath reads it from the ASGI scope (a name no HTTP header can have).
PEER = b":peer"


def predict_records(body: bytes, champion: Loaded, max_records: int) -> list[dict]:
    """`/predict`'s body: one record, a list of them, `dataframe_records` or `dataframe_split`."""
    return parse_records(parse_json(body), max_records)


class ModelServer:
    """`predict` and `feedback` answer `POST /predict` and `POST /feedback` (headers, body) with
    (status, body); `answer` runs one model on checked records, `failure` says why a prediction
    failed, `policy` is what a served version's requests are checked against; `ready` and `models`
    answer the status endpoints."""

    def __init__(self, watcher: Watcher, batcher: MicroBatcher, predictions: PartitionedLog,
                 feedback_log: PartitionedLog, metrics: ServerMetrics, cfg: ServeSettings, ids: RequestIds,
                 features: list[Feature] | tuple[Feature, ...] = ()):
        self.watcher, self.batcher, self.metrics, self.cfg, self.ids = watcher, batcher, metrics, cfg, ids
        self.predictions, self.feedback_log = predictions, feedback_log
        # Each role its own credential: a caller who may predict may not label (it could label one
        # arm of a canary wrong), and the rollout is shown only to holders of a server's token.
        self.trusted, self.labeller, self.scraper = map(presents, (cfg.token, cfg.feedback_token, cfg.metrics_token))
        self.label_gate = labels(cfg)  # the gate HotPath runs before the body, checked again here
        self.bounds = ranges(list(features))
        # Times are checked for what each model reads as one, and for what the params declare.
        self.datetimes = frozenset(f.name for f in features if f.type == "datetime")
        self._policies: dict[str, Policy] = {}
        self._policies_of: ModelSet | None = None  # the model set they were made for
        self._shadows: set[asyncio.Task] = set()  # held so the event loop does not drop them

    def insider(self, headers: dict[bytes, bytes]) -> bool:
        """Presents one of this server's tokens, or the server holds none (a local experiment)."""
        return not self.cfg.closed or self.trusted(headers) or self.labeller(headers) or self.scraper(headers)

    # -- the policies --------------------------------------------------------------------------
    def policy(self, current: ModelSet, loaded: Loaded) -> Policy:
        """What requests to `loaded` are checked against: its columns' categories, the declared
        ranges and times, and (for the champion) the keys every served model knows."""
        if self._policies_of is not current:
            cfg = self.cfg
            known = frozenset(c for m in current.models.values() for c in m.columns)
            self._policies = {version: Policy(
                known if version == current.rollout.champion else None, cfg.unknown_fields == "drop",
                m.categories if cfg.unknown_category == "reject" else None, self.bounds,
                cfg.out_of_range == "reject", self.datetimes | m.datetimes) for version, m in current.models.items()}
            self._policies_of = current
        return self._policies[loaded.version]

    # -- POST /predict -------------------------------------------------------------------------
    async def predict(self, headers: dict[bytes, bytes], body: bytes, parse: Parse = predict_records) -> Answer:
        """Every protocol's prediction (serving/protocols): `parse` reads its body as records; the
        checks, the canary split, the log and the metrics are this method's, whichever it was."""
        cfg, trusted = self.cfg, self.trusted(headers)
        if cfg.token and not trusted:
            return 401, {"detail": "missing or wrong bearer token"}
        current = self.watcher.current
        if not current.rollout.champion or current.rollout.champion not in current.models:
            return 503, {"detail": "no model loaded yet"}
        if cfg.log_predictions and self.predictions.full:
            return 503, {"detail": "the prediction log is behind; retry shortly"}
        champion = current.models[current.rollout.champion]
        try:
            raw = parse(body, champion, cfg.max_records)
            records, outside = intake(raw, champion.columns, self.policy(current, champion))
        except TooMany as err:
            return 413, {"detail": str(err)}
        except BadInput as err:
            return 422, {"detail": str(err)}
        request_id = self.ids.issue(len(records))
        client_id = (headers.get(b"x-request-id", b"")[:200].decode("latin-1") or None) if trusted else None
        # Who asked, keyed: the predict token's holders are one client, anyone else is its address.
        key = self.ids.client_key(b"token" if trusted else headers.get(PEER, b""))
        rollout, challenger = current.rollout, current.models.get(current.rollout.challenger or "")
        chosen, variant, rows = champion, "champion", records
        if headers.get(b"x-driftline-variant") == b"smoke":
            # Blue-green's smoke test: the staged version answers on the live server before the switch.
            if challenger is None or rollout.strategy != "blue-green":
                return 409, {"detail": "no blue-green version is staged for a smoke test"}
            try:
                rows, _ = intake(raw, challenger.columns, self.policy(current, challenger))
            except BadInput as err:
                return 422, {"detail": str(err)}
            chosen, variant = challenger, "smoke"
        elif challenger is not None and rollout.strategy == "canary" and rollout.splits() \
                and self.ids.share(client_id or request_id) < rollout.weight:
            with contextlib.suppress(BadInput):  # rows the challenger cannot take go to the champion
                rows, _ = intake(raw, challenger.columns, self.policy(current, challenger))
                chosen, variant = challenger, "challenger"
        try:
            started = time.perf_counter()
            try:
                result = await self.answer(chosen, variant, rows, outside, request_id, client_id, key,
                                           failure=None if variant == "challenger" else ERROR)
            except PredictFailed:
                if variant != "challenger":
                    raise
                tried, chosen = chosen, champion
                result = await self.instead(tried, rows, champion, records, outside, request_id, client_id, key,
                                            started)
        except Overloaded:
            return 503, {"detail": "the server is at capacity; retry shortly"}
        except PredictFailed as err:
            return await self.failure(err, chosen, request_id, trusted)
        if challenger is not None and rollout.strategy == "shadow" and rollout.splits():
            # A copy for the challenger, answered by nobody; its log rows feed the analysis.
            with contextlib.suppress(BadInput):
                copy, _ = intake(raw, challenger.columns, self.policy(current, challenger))
                task = asyncio.create_task(self.shadow(challenger, copy, outside, request_id, client_id, key))
                self._shadows.add(task)
                task.add_done_callback(self._shadows.discard)
        if not self.insider(headers):  # which arm answered is not an anonymous caller's to know
            result = {k: v for k, v in result.items() if k not in ("variant", "model_version")}
        return 200, result

    async def instead(self, challenger: Loaded, rows: list[dict], champion: Loaded, records: list[dict],
                      outside: list[str], request_id: str, client_id: str | None, key: str | None,
                      started: float) -> dict:
        """The champion's answer to rows the challenger failed on: only then is the failure the
        challenger's (ERROR, counted by the analysis). If the champion fails too, the input was at fault
        (INPUT_ERROR, judged by nobody; one request of 1e39s used to fill a canary step with errors)."""
        status = INPUT_ERROR
        try:
            result = await self.answer(champion, "champion", records, outside, request_id, client_id, key)
            status = ERROR
            return result
        finally:
            self.failed(challenger, "challenger", rows, outside, request_id, client_id, key, status, started)

    async def answer(self, loaded: Loaded, variant: str, records: list[dict], outside: list[str], request_id: str,
                     client_id: str | None, key: str | None = None, failure: str | None = ERROR) -> dict:
        """`loaded`'s answer to checked records, counted in the metrics and logged (ok, or `failure`:
        None leaves a failure to the caller); PredictFailed or Overloaded when there is none."""
        start = time.perf_counter()
        try:
            out = await self.batcher.submit(loaded, records)
        except PredictFailed:
            if failure is not None:
                self.failed(loaded, variant, records, outside, request_id, client_id, key, failure, start)
            raise
        elapsed = time.perf_counter() - start
        labels, proba = out["labels"], out["proba"]
        said = [v.item() if hasattr(v, "item") else v for v in labels]
        result: dict[str, Any] = {"request_id": request_id, "model_version": loaded.version, "variant": variant,
                                  "predictions": said}
        if client_id is not None:
            result["client_request_id"] = client_id
        if proba is not None:
            result["probabilities"] = [dict(zip(loaded.class_names, map(float, row), strict=True)) for row in proba]
            score = row_scores(proba)
        else:
            score = np.asarray(labels, dtype="float64")
        self.metrics.answered(variant, loaded.version, "ok", elapsed, score)
        if self.cfg.log_predictions:
            self.predictions.append(log_rows(
                records, outside, request_id=request_id, variant=variant, version=loaded.version, status="ok",
                latency_ms=elapsed * 1000, client_id=client_id, client_key=key, predictions=said, scores=score,
                probabilities=proba if proba is not None and proba.shape[1] > 2 else None))
        return result

    def failed(self, loaded: Loaded, variant: str, records: list[dict], outside: list[str], request_id: str,
               client_id: str | None, key: str | None, status: str, start: float) -> None:
        """A request `loaded` did not answer (tried since `start`), counted and logged as `status`."""
        self.metrics.answered(variant, loaded.version, status)
        if self.cfg.log_predictions:
            self.predictions.append(log_rows(
                records, outside, request_id=request_id, variant=variant, version=loaded.version, status=status,
                latency_ms=(time.perf_counter() - start) * 1000, client_id=client_id, client_key=key))

    async def failure(self, err: PredictFailed, loaded: Loaded, request_id: str, trusted: bool) -> Answer:
        """422 when the request's own rows broke the model, 500 when the model is broken."""
        alone = err.alone
        if not alone:  # it was alone in its batch: does the model still answer its own example?
            with contextlib.suppress(PredictFailed, Overloaded):
                await self.batcher.submit(loaded, loaded.example_records)
                alone = True
        log.warning("request %s: version %s failed to predict: %s", request_id, loaded.version, err)
        if alone:
            return 422, {"detail": "the model could not score this input", "request_id": request_id}
        # The exception's text is for the operator (server log) and for callers holding the token.
        detail = f"prediction failed: {err}" if trusted else "prediction failed; the server log has the reason"
        return 500, {"detail": detail, "request_id": request_id}

    async def shadow(self, loaded: Loaded, records: list[dict], outside: list[str], request_id: str,
                     client_id: str | None, key: str | None = None) -> None:
        # The shadow never affects the caller; its errors are counted in the metrics by `answer`.
        with contextlib.suppress(Exception):
            await self.answer(loaded, "shadow", records, outside, request_id, client_id, key)

    # -- POST /feedback ------------------------------------------------------------------------
    async def feedback(self, headers: dict[bytes, bytes], body: bytes) -> Answer:
        cfg = self.cfg
        refused = self.label_gate(headers) if self.label_gate else None
        if refused is not None:
            return refused[0], {"detail": refused[1]}
        current = self.watcher.current
        models = [current.models[v] for v in (current.rollout.champion, current.rollout.challenger)
                  if v in current.models]
        if not models:
            return 503, {"detail": "no model loaded yet"}
        if self.feedback_log.full:
            return 503, {"detail": "the feedback log is behind; retry shortly"}
        try:
            rows = feedback_rows(parse_json(body), self.ids, models, cfg.max_records)
        except NotIssued as err:
            return 404, {"detail": str(err)}
        except TooMany as err:
            return 413, {"detail": str(err)}
        except BadInput as err:
            return 422, {"detail": str(err)}
        # 200 only once the labels are in the log the monitor reads: a label lost to a full disk
        # after a 200 would be lost for good, while one answered 503 is sent again (and a label
        # sent twice is one label: its row's last).
        kept = self.feedback_log.keep(rows)
        try:
            written = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(kept)), LABELS_WRITTEN_SECONDS)
        except TimeoutError:
            return 503, {"detail": f"the labels were not written within {LABELS_WRITTEN_SECONDS:g} s; send them again"}
        if not written:
            return 503, {"detail": "the labels could not be written to the feedback log (see the server's "
                                   "driftline_log_rows_total); send them again"}
        return 200, {"accepted": len(rows)}

    # -- GET /ready, /models -------------------------------------------------------------------
    def ready(self) -> Answer:
        current = self.watcher.current
        if current.rollout.champion in current.models:
            return 200, {"status": "ready", "champion": current.rollout.champion}
        unread = self.watcher.registry_error  # said only while the registry has not been read
        return 503, {"status": "not ready", "errors": current.errors, **({"registry": unread} if unread else {})}

    def models(self, headers: dict[bytes, bytes] | None = None) -> dict:
        current = self.watcher.current
        r = current.rollout
        if not self.insider(headers or {}):  # the rollout (arm, weight, versions) is for the token holders
            return {"model_name": self.watcher.store.model_name, "role": self.cfg.role,
                    "ready": r.champion in current.models}
        return {"model_name": self.watcher.store.model_name, "role": self.cfg.role, "champion": r.champion,
                "challenger": r.challenger, "previous": r.previous, "strategy": r.strategy,
                "challenger_weight": r.weight if r.challenger else 0.0, "loaded": sorted(current.models),
                "errors": current.errors, "batches": self.batcher.batches, "batched_rows": self.batcher.rows,
                "plans": {v: m.plan_note for v, m in sorted(current.models.items())},
                "fallback": r.fallback, "registry_error": self.watcher.registry_error}
