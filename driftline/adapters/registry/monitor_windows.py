"""What the monitor keeps in MLflow about the windows it judges: each run's window (the log's times
of its first and last row, as tags) and the champion's estimated and realized performance on it
(as metrics). Later runs find those windows again, re-judge them on the labels that arrived since,
and add the realized values and the estimation error to the run that judged them. The newest
verdict also goes on the registered model (PERFORMANCE_TAG), which the model servers expose on
/metrics for the alert rules."""

from __future__ import annotations

import json
import time

from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.registry.tags import (
    KIND_TAG,
    PERFORMANCE_TAG,
    REALIZED_AT_TAG,
    VERSION_TAG,
    WINDOW_FROM_TAG,
    WINDOW_TO_TAG,
    stamp,
)
from driftline.core.past_windows import PastWindow
from driftline.core.window_performance import Judged


def metrics(judged: Judged | None) -> dict[str, float]:
    """The estimate and the realized values with their bounds, the labels and their coverage."""
    out: dict[str, float] = {}
    if judged is None:
        return out
    for kind, found in (("estimated", judged.estimate), ("realized", judged.realized)):
        for name, v in (found.metrics if found is not None else {}).items():
            out.update({f"{kind}_{name}": v.value, f"{kind}_{name}_low": v.low, f"{kind}_{name}_high": v.high})
    if judged.realized is not None:
        out.update(realized_labels=judged.realized.labelled, label_coverage=judged.realized.coverage)
    return {k: v for k, v in out.items() if v == v}  # NaN (no AUC of one class) is left out


def record(store: MlflowStore, run_id: str, first: str, last: str, judged: Judged | None, labels_seen: int) -> None:
    """The window a monitor run judged, and what it estimated and realized on it."""
    store.log(run_id, tags={WINDOW_FROM_TAG: first, WINDOW_TO_TAG: last},
              metrics={**metrics(judged), "labels_seen": labels_seen})


def earlier(store: MlflowStore, horizon_days: float, now: float | None = None) -> list[PastWindow]:
    """The windows this model's monitor runs judged within `horizon_days`, newest first."""
    since = int(((now or time.time()) - horizon_days * 86400) * 1000)
    runs = store.client.search_runs(
        [store.experiment_id], f"tags.`{KIND_TAG}` = 'monitor' and attributes.run_name = 'monitor-{store.model_name}'"
        f" and attributes.start_time >= {since}", order_by=["attributes.start_time DESC"], max_results=5000)
    found = []
    for r in runs:
        tags, values = r.data.tags, r.data.metrics
        if WINDOW_FROM_TAG not in tags or WINDOW_TO_TAG not in tags:
            continue
        estimated = {k.removeprefix("estimated_"): v for k, v in values.items()
                     if k.startswith("estimated_") and not k.endswith(("_low", "_high"))}
        found.append(PastWindow(r.info.run_id, tags.get(VERSION_TAG, ""), tags[WINDOW_FROM_TAG], tags[WINDOW_TO_TAG],
                                estimated, values.get("labels_seen", -1.0)))
    return found


def record_realized(store: MlflowStore, w: PastWindow, judged: Judged, labels_seen: int,
                    errors: dict[str, float]) -> None:
    """On the run that judged `w`: what its labels say now, the estimation error, and per score band."""
    realized = {k: v for k, v in metrics(judged).items() if not k.startswith("estimated_")}
    store.log(w.run_id, tags={REALIZED_AT_TAG: stamp(time.time())},
              metrics={**realized, "labels_seen": labels_seen,
                       **{f"estimation_error_{m}": e for m, e in errors.items()}})
    bands = [{"band": b.label, "rows": b.rows, "labelled": b.labelled, "coverage": b.coverage,
              "estimated": b.estimated, "realized": b.realized} for b in judged.bands]
    store.log_text(w.run_id, json.dumps(bands, indent=1), "performance/bands.json")


def publish(store: MlflowStore, verdict: dict) -> None:
    """The newest performance verdict on the registered model, for /metrics (see read). A run that
    re-judged no earlier window keeps the newest estimation error measured before."""
    if "estimation_error" not in verdict:
        before = read(store.model_tags()) or {}
        if "estimation_error" in before:
            verdict = {**verdict, "estimation_error": before["estimation_error"]}
    store.set_model_tags({PERFORMANCE_TAG: json.dumps(verdict, sort_keys=True)})


def read(tags: dict[str, str]) -> dict | None:
    """The verdict `publish` wrote; None when absent or unreadable (a gauge, never a decision)."""
    try:
        verdict = json.loads(tags[PERFORMANCE_TAG])
    except (KeyError, ValueError):
        return None
    return verdict if isinstance(verdict, dict) else None
