"""Rows into a model and out into the log: one micro-batch's model call (`predict_batch`) and the
prediction log's rows for one answer (`log_rows`: the server's own fields, never the client's)."""

from __future__ import annotations

import contextlib

import numpy as np

from driftline.adapters.predlog import now
from driftline.core.evaluation import labels_at_own_threshold
from driftline.core.plan_check import labels as plan_labels
from driftline.core.window_performance import PROBA
from driftline.serving.loader import Loaded


def predict_batch(loaded: Loaded, records: list[dict]) -> dict:
    """One model call for a whole micro-batch (the batcher runs it in its prediction thread):
    through the model's serving plan when it has one (core.plan: checked equal to the Pipeline at
    load), else through the Pipeline. A batch the plan fails on is answered by the Pipeline."""
    if loaded.plan is not None:
        with contextlib.suppress(Exception):
            values = loaded.plan.predict_records(records)
            if not loaded.classification:
                return {"labels": values, "proba": None}
            return {"labels": plan_labels(loaded.model, values), "proba": values}
    frame, model = loaded.frame(records), loaded.model
    if loaded.classification:
        proba = model.predict_proba(frame)
        labels = labels_at_own_threshold(model, proba) if hasattr(model, "threshold") else model.predict(frame)
        return {"labels": labels, "proba": proba}
    return {"labels": np.asarray(model.predict(frame), dtype="float64"), "proba": None}


def log_rows(records: list[dict], outside: list[str], *, request_id: str, variant: str, version: str, status: str,
             latency_ms: float, client_id: str | None = None, client_key: str | None = None,
             predictions: list | None = None, scores: np.ndarray | None = None,
             probabilities: np.ndarray | None = None) -> list[dict]:
    """The prediction log's rows for one answer, ok or error alike: each record's model columns
    first, then the server's own fields, written last so that they always win over a column of
    the same name; `predictions` and `scores` only for an answer that has them, and for three
    classes or more every class's probability (`proba_0`, ... in the model's class order: the
    monitor's performance estimate needs them all). `client_key` is who asked, as a keyed hash
    (RequestIds.client_key): one client's share of a window can be counted, its address is not kept."""
    fields: dict[str, object] = {"request_id": request_id, "timestamp": now(), "variant": variant,
                                 "model_version": version, "status": status, "latency_ms": latency_ms}
    if client_id is not None:
        fields["client_request_id"] = client_id
    if client_key is not None:
        fields["client_key"] = client_key
    rows = []
    for i, record in enumerate(records):
        row = {**record, "out_of_range": outside[i], **fields, "record_index": i}
        if predictions is not None and scores is not None:
            row["prediction"], row["score"] = predictions[i], float(scores[i])
        if probabilities is not None:
            row.update({f"{PROBA}{j}": float(v) for j, v in enumerate(probabilities[i])})
        rows.append(row)
    return rows
