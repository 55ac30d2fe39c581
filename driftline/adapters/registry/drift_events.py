"""The drift monitor's state in the registry: the champion it watches, when the last drift event
went out (the cooldown reads it), the lease under which one is emitted, and the monitor's own
MLflow run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from driftline.adapters.registry import calibrators
from driftline.adapters.registry.lease import Lease
from driftline.adapters.registry.store import CHAMPION, MlflowStore, VersionInfo
from driftline.adapters.registry.tags import (
    CHECK_TAG,
    DECISION_TAG,
    FLOW_RUN_TAG,
    KIND_TAG,
    LAST_DRIFT_TAG,
    RETRAIN_TAG,
    RULES_TAG,
    VERSION_TAG,
    past,
    stamp,
    when,
)
from driftline.config import MonitoringConfig
from driftline.core import monitoring
from driftline.core.calibration import Calibrator
from driftline.errors import PipelineFailure

DRIFT_LEASE = "drift-event"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Watched:
    """The champion the monitor judges live traffic against."""

    info: VersionInfo
    reference: pd.DataFrame | None  # None: registered without a reference sample
    expected_accuracy: float | None  # its holdout accuracy
    holdout: dict[str, float] = field(default_factory=dict)  # every holdout metric, by name
    calibrator: Calibrator | None = None  # None: registered before calibrators


def watched(store: MlflowStore) -> Watched | None:
    """The champion with its reference sample, holdout metrics and calibrator; None when there is no
    champion."""
    info = store.version_by_alias(CHAMPION)
    if info is None:
        return None
    reference = store.load_reference(info)
    if reference is None:
        return Watched(info, None, None)
    metrics = store.run_metrics(info.run_id)
    holdout = {k.removeprefix("holdout_"): v for k, v in metrics.items() if k.startswith("holdout_")}
    return Watched(info, reference, holdout.get("accuracy"), holdout, calibrators.load(store, info))


def hours_since_last(store: MlflowStore, now: float | None = None) -> float | None:
    """Hours since the newest version or the last drift event (core.monitoring.hours_since_last). A
    drift stamp from the future is ignored (it would hold the cooldown, and drift, silent for as
    long as it is ahead), with a warning."""
    now = time.time() if now is None else now
    stamp_at = when(store.model_tags().get(LAST_DRIFT_TAG))
    if past(stamp_at, now) is None and stamp_at is not None:
        log.warning("the last drift event's time %s lies in the future: ignored", stamp_at)
        stamp_at = None
    return monitoring.hours_since_last(now, [v.created / 1000 for v in store.versions()], stamp_at)


def emit_once(store: MlflowStore, owner: str, decision: monitoring.Decision, cfg: MonitoringConfig,
              emit: Callable[[], str]) -> tuple[monitoring.Decision, str | None]:
    """Under the drift-event lease: read the cooldown again, `emit`, and only then set it. Without
    the lease two monitors both read "no cooldown" and both emitted; with the tag set before the
    event, a failed emit silenced drift for `cooldown_hours`. Returns the decision as it stands
    then, and the event's id when one went out."""
    lease = Lease(store, DRIFT_LEASE, owner=owner, ttl_seconds=60, purpose="drift event")
    # The holder's work is one registry read, one event post and one tag write: seconds.
    if not lease.acquire(wait_seconds=90):
        raise PipelineFailure("drift event", f"{lease.held_message()}: no event was emitted and the cooldown is "
                              "untouched; the next monitor run decides again")
    try:
        with lease.keep_alive():
            decision = monitoring.recheck(decision, hours_since_last(store), cfg)
            if not decision.drift:
                return decision, None
            try:
                event_id = emit()
            except Exception as err:
                raise PipelineFailure("drift event", f"drift was detected but the event could not be emitted "
                                      f"({type(err).__name__}: {err}); the cooldown was not set, so the next "
                                      "monitor run tries again") from err
            store.set_model_tags({LAST_DRIFT_TAG: stamp(time.time())})
            return decision, event_id
    finally:
        lease.release()


def open_run(store: MlflowStore, version: str, result: monitoring.Assessment, flow_run_id: str) -> str:
    """The monitor's MLflow run: its decision as tags, the window's size and drift as metrics."""
    decision = result.decision
    run_id = store.start_run(f"monitor-{store.model_name}", tags={
        KIND_TAG: "monitor", DECISION_TAG: decision.status, VERSION_TAG: version, FLOW_RUN_TAG: flow_run_id,
        RULES_TAG: ",".join(decision.fired) or "-"})
    store.log(run_id, metrics={"rows": result.rows, "drift_share": decision.drift_share,
                               "labelled": result.performance.labelled,
                               **{f"drift_{c.column}": c.score for c in result.columns if c.score == c.score}})
    return run_id


def record_check(store: MlflowStore) -> None:
    store.set_model_tags({CHECK_TAG: stamp(time.time())})


def checked_at(tags: dict[str, str], now: float | None = None) -> float | None:
    """When the monitor last completed a check, in epoch seconds (ISO or epoch in the tag); None
    for a stamp from the future, which would keep the stale-check alert quiet."""
    return past(when(tags.get(CHECK_TAG)), time.time() if now is None else now)


def record_decision(store: MlflowStore, run_id: str, status: str) -> None:
    """The decision changed after the run opened (a monitor racing this one emitted first)."""
    store.log(run_id, tags={DECISION_TAG: status})


def attach_report(store: MlflowStore, run_id: str, html: str) -> None:
    store.log_text(run_id, html, "drift/report.html")


def close_run(store: MlflowStore, run_id: str, failed: bool = False) -> None:
    store.finish(run_id, "FAILED" if failed else "FINISHED")


def answered(store: MlflowStore, event_at: float | None) -> str | None:
    """Why a retraining for a drift event that occurred at `event_at` (epoch seconds) has nothing to
    do, or None. The deployment's one-at-a-time limit cancels the events of a burst that arrive while
    a retraining runs, but a run the worker picks up only after that retraining finished (a cached
    one takes seconds) would retrain again for the same drift."""
    if event_at is None:
        return None
    started = past(when(store.model_tags().get(RETRAIN_TAG)), time.time())  # a future one answers nothing
    if started is None or started < event_at:
        return None
    return (f"the drift event of {_utc(event_at)} was answered by the drift retraining that started at "
            f"{_utc(started)}")


def recorded(store: MlflowStore, event_at: float | None, slack: float = 120.0) -> bool:
    """Whether the monitor itself recorded a drift event at (or after) `event_at`, the time the
    retraining's event says it occurred: it sets its tag right after it emits. A drift event that
    anyone with the API can post, with no such record behind it, is not the monitor's."""
    last = past(when(store.model_tags().get(LAST_DRIFT_TAG)), time.time())
    return event_at is not None and last is not None and last >= event_at - slack


def record_retrain(store: MlflowStore, started_at: float) -> None:
    store.set_model_tags({RETRAIN_TAG: stamp(started_at)})


def _utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
