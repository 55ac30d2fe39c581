"""Prefect tasks of the drift monitor: read the log window, the cooldown and the monitor's run,
render the report, publish, emit (once, under the drift-event lease)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from uuid import UUID

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.runtime import flow_run

from driftline.adapters.protocols import DriftReports, PredictionLog
from driftline.adapters.registry import drift_events, monitor_windows, tags
from driftline.adapters.registry.store import MlflowStore
from driftline.config import MonitoringConfig, Params
from driftline.core import features, monitoring
from driftline.core.markdown import drift_table


@task(name="read-log-window", cache_policy=NONE, retries=2, retry_delay_seconds=2)
def read_window(log: PredictionLog, since: datetime, last_rows: int | None,
                p: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The live rows logged since `since` (newest `last_rows` when set), and the labels fed back."""
    return log.window(since, last_rows, p)


@task(name="render-drift-report", cache_policy=NONE, timeout_seconds=900)
def render_report(reports: DriftReports, rows: pd.DataFrame, reference: pd.DataFrame, p: Params,
                  result: monitoring.Assessment, version: str) -> str:
    return reports.render(rows, reference, p, result, version)


@task(name="publish-drift-results", cache_policy=NONE)
def publish_results(key: str, result: monitoring.Assessment, report_url: str | None) -> None:
    create_table_artifact(table=drift_table(result), key=key, description=result.decision.message[:400])
    if report_url:
        create_link_artifact(link=report_url, link_text="drift report (MLflow)", key=f"{key}-report",
                             description=f"{result.rows} rows; {result.decision.status}")


@task(name="emit-drift-event", cache_policy=NONE, retries=2, retry_delay_seconds=2)
def emit_drift(model_name: str, payload: dict, event_id: str) -> str:
    """Post the event to the Prefect API and wait for its answer.

    `emit_event` only queues an event for a background sender (and returns it even when the
    server never gets it), so "emitted" would not mean "the trigger will see it", and the
    cooldown set after it could silence drift that nobody heard. A retry posts the same id:
    the server's triggers act once per event id."""
    from prefect.client.orchestration import get_client
    from prefect.events import Event

    related = [{"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.resource.role": "flow-run"}
               for run_id in [flow_run.get_id()] if run_id]
    event = Event(id=UUID(event_id), occurred=datetime.now(UTC), event=tags.DRIFT_DETECTED,
                  resource={"prefect.resource.id": tags.model_resource(model_name),
                            "prefect.resource.name": model_name},
                  related=related, payload=payload)
    with get_client(sync_client=True) as client:
        client.request("POST", "/events", json=[event.model_dump(mode="json")]).raise_for_status()
    return event_id


@task(name="read-cooldown", cache_policy=NONE)
def hours_since_last(store: MlflowStore) -> float | None:
    return drift_events.hours_since_last(store)


@task(name="open-monitor-run", cache_policy=NONE)
def open_run(store: MlflowStore, version: str, result: monitoring.Assessment) -> str:
    return drift_events.open_run(store, version, result, str(flow_run.get_id() or "-"))


@task(name="emit-drift-once", cache_policy=NONE)
def emit_once(store: MlflowStore, cfg: MonitoringConfig, decision: monitoring.Decision,
              payload: dict) -> tuple[monitoring.Decision, str | None]:
    """The event (emit_drift, with its retries) under the drift-event lease, the cooldown read again there."""
    return drift_events.emit_once(store, str(flow_run.get_id() or f"pid {os.getpid()}"), decision, cfg,
                                  lambda: emit_drift(store.model_name, payload, str(uuid.uuid4())))


@task(name="read-champion", cache_policy=NONE)
def watched(store: MlflowStore) -> drift_events.Watched | None:
    return drift_events.watched(store)


@task(name="record-decision", cache_policy=NONE)
def record_decision(store: MlflowStore, run_id: str, status: str) -> None:
    drift_events.record_decision(store, run_id, status)


@task(name="record-drift-check", cache_policy=NONE, retries=2, retry_delay_seconds=2)
def record_check(store: MlflowStore) -> None:
    drift_events.record_check(store)


@task(name="attach-drift-report", cache_policy=NONE)
def attach_report(store: MlflowStore, run_id: str, html: str) -> None:
    drift_events.attach_report(store, run_id, html)


@task(name="close-monitor-run", cache_policy=NONE)
def close_run(store: MlflowStore, run_id: str, failed: bool = False) -> None:
    drift_events.close_run(store, run_id, failed)


@task(name="read-derive-step", cache_policy=NONE)
def champion_derive(store: MlflowStore, champion, p: Params):
    """The champion's own fitted derive step, so its derived features are watched as it computes
    them; None when the params derive nothing (no model load then) or the model cannot be read
    (the raw features still decide)."""
    if not p.data.derived:
        return None
    try:
        return features.derive_step(store.load_model(champion))
    except Exception as err:  # noqa: BLE001 - the decision stands on the raw features
        get_run_logger().warning(f"derived features not watched: version {champion.version} could not be "
                                 f"loaded ({type(err).__name__}: {err})")
        return None


@task(name="read-champion-scoring", cache_policy=NONE)
def champion_scoring(store: MlflowStore, info, p: Params, calibrator=None, holdout: dict | None = None):
    """What the performance estimate needs of a version: its calibrator (else its raw scores, its
    classes read from the model; nothing for a regression model without a loss estimator), the
    positive class and its holdout metrics. None when it cannot be estimated, said in the log."""
    from driftline.adapters.registry import calibrators
    from driftline.core import calibration, evaluation
    from driftline.core.window_performance import Scoring

    try:
        cal = calibrator or calibrators.load(store, info)
        if cal is None and p.data.task != "regression":
            cal = calibration.uncalibrated(p.data.task, calibration.plain(store.load_model(info).classes_))
    except Exception as err:  # noqa: BLE001 - the decision stands on the features and the labels
        get_run_logger().warning(f"performance not estimated: version {info.version}'s calibrator or model "
                                 f"could not be read ({type(err).__name__}: {err})")
        return None
    if cal is None:
        get_run_logger().warning(f"performance not estimated: version {info.version} was registered without a "
                                 "loss estimator; retrain it to estimate its errors")
        return None
    positive = evaluation.positive_index(cal.classes, p) if p.data.task == "binary" else 0
    if holdout is None:
        holdout = {k.removeprefix("holdout_"): v for k, v in store.run_metrics(info.run_id).items()
                   if k.startswith("holdout_")}
    return Scoring(cal, positive, holdout)


@task(name="record-window", cache_policy=NONE)
def record_window(store: MlflowStore, run_id: str, first: str, last: str, judged, labels_seen: int) -> None:
    monitor_windows.record(store, run_id, first, last, judged, labels_seen)


@task(name="read-earlier-windows", cache_policy=NONE)
def earlier_windows(store: MlflowStore, horizon_days: float) -> list:
    return monitor_windows.earlier(store, horizon_days)


@task(name="read-labels", cache_policy=NONE, retries=2, retry_delay_seconds=2)
def read_labels(log: PredictionLog, since: datetime) -> pd.DataFrame:
    return log.labels(since)


@task(name="read-past-window", cache_policy=NONE, retries=2, retry_delay_seconds=2)
def read_past_window(log: PredictionLog, first: str, last: str, p: Params) -> pd.DataFrame:
    return log.past_window(first, last, p)


@task(name="record-realized", cache_policy=NONE)
def record_realized(store: MlflowStore, window, judged, labels_seen: int, errors: dict) -> None:
    monitor_windows.record_realized(store, window, judged, labels_seen, errors)


@task(name="publish-performance", cache_policy=NONE)
def publish_performance(store: MlflowStore, verdict: dict) -> None:
    monitor_windows.publish(store, verdict)


CHART = "drift/columns.png"


@task(name="attach-drift-chart", cache_policy=NONE)
def attach_chart(store: MlflowStore, run_id: str, result: monitoring.Assessment) -> bool:
    """Each column's drift score against its threshold, as a PNG on the monitor's run."""
    from driftline.adapters.registry.pictures import log_figures
    from driftline.core import ops_plots

    logged, failed = log_figures(store, run_id, {CHART: lambda: ops_plots.drift_scores(
        result.columns, result.decision.status, result.rows)})
    for line in failed:
        get_run_logger().warning(f"picture not drawn: {line}")
    return bool(logged)

