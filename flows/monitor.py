"""The drift monitor: a window of live traffic against the champion's training reference.

Drift, no drift, too little data or cooldown: each says so in the run's artifacts. Only on
drift does it emit `driftline.drift.detected`, which the `retrain-on-drift` deployment's
trigger turns into one training run. The event is emitted under a registry lease, after the
cooldown is read again there, and the cooldown is set only once the event is out: two monitors
racing on the same drift emit one event, and a failed emit leaves drift to the next run.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from driftline import services
from driftline.adapters.predlog_reader import issued_at
from driftline.adapters.registry.tags import DRIFT_DETECTED
from driftline.config import Params, Settings
from driftline.core import monitoring, past_windows, performance_tables, trigger, window_performance
from driftline.errors import PipelineFailure
from driftline.services import Services
from flows import guard
from tasks.monitor import (
    CHART,
    attach_chart,
    attach_report,
    champion_derive,
    champion_scoring,
    close_run,
    earlier_windows,
    emit_once,
    hours_since_last,
    open_run,
    publish_performance,
    publish_results,
    read_labels,
    read_past_window,
    read_window,
    record_check,
    record_decision,
    record_realized,
    record_window,
    render_report,
    watched,
)
from tasks.report import artifact_key, publish_report
from tasks.rollout import reconcile_rollout


@flow(name="drift-monitor", log_prints=True)
def drift_monitor(
    window_hours: float | None = None,
    last_rows: int | None = None,
    params_path: str = "params.yaml",
    overrides: list[str] | None = None,
    project_dir: str | None = None,
) -> dict[str, Any]:
    """Judge live traffic against the champion's reference and emit an event on real drift.

    Args:
        window_hours: how far back to read the prediction log; defaults to `monitoring.window_hours`.
        last_rows: judge only the newest N rows of the window; defaults to `monitoring.last_rows`.
        params_path: params file, relative to the project directory.
        overrides: `KEY=VALUE` overrides of the params file, e.g. `monitoring.cooldown_hours=0`.
        project_dir: the git+DVC project; defaults to `DRIFTLINE_PROJECT_DIR` or the working directory.
    """
    guard.check(params_path, overrides, {"project_dir": (project_dir, None)})
    with services.open_project(project_dir, params_path, overrides) as project:
        return watch(project.services, project.settings, project.params, window_hours, last_rows)


def watch(svc: Services, settings: Settings, p: Params, window_hours: float | None = None,
          last_rows: int | None = None) -> dict[str, Any]:
    """The monitor's decision over the adapters `svc` holds (the flow builds them from settings;
    a caller with its own prediction log or report renderer passes them in)."""
    log = get_run_logger()
    cfg = p.monitoring
    store = svc.registry
    reconcile_rollout(store, p)  # a deploy run killed mid-rollout: weight back to 0, its lease released
    name = p.registry.model_name
    watching = watched(store)
    if watching is None:
        message = f"{name} has no @champion yet: nothing is served, nothing to monitor"
        log.info(message)
        return {"status": "no_champion", "message": message}
    champion, reference = watching.info, watching.reference
    if reference is None:
        raise PipelineFailure("reference", f"{name} version {champion.version} was registered without a "
                              "reference sample; retrain it to monitor it")

    since = datetime.now(UTC) - timedelta(hours=window_hours or cfg.window_hours)
    rows, feedback = read_window(svc.prediction_log, since, last_rows or cfg.last_rows, p)
    scoring = champion_scoring(store, champion, p, watching.calibrator, watching.holdout)
    first, last = _bounds(rows)
    # Earlier windows whose labels arrived since: their realized values are evidence too.
    past = _rejudge(svc, store, p, first or datetime.now(UTC).isoformat(), {champion.version: scoring})
    result = monitoring.assess(rows, feedback, reference, p, champion.version, watching.expected_accuracy,
                               hours_since_last(store), champion_derive(store, champion, p), scoring, past)
    decision = result.decision

    run_id = open_run(store, champion.version, result)
    if first and last:
        record_window(store, run_id, first, last, result.judged, _labels_seen(feedback, first, last))
    render = result.rows >= min(cfg.min_rows, 100)
    report_url = store.run_url(settings.mlflow_ui_url, run_id) + "/artifacts/drift/report.html" if render else None
    out = {"status": decision.status, "model_name": name, "version": champion.version, "rows": result.rows,
           "drift_share": decision.drift_share, "drifted_columns": decision.drifted_columns,
           "reasons": decision.reasons, "rules": decision.fired, "message": decision.message,
           "report_url": report_url, "mlflow_run_id": run_id}
    try:
        if decision.drift:
            # The event goes before the report is rendered: retraining need not wait.
            payload = {k: out[k] for k in ("model_name", "version", "drift_share", "drifted_columns", "reasons",
                                           "rules", "rows")}
            decision, out["event_id"] = emit_once(store, cfg, decision, {
                **payload, "report_url": report_url or "", "summary": decision.message[:500]})
            if not decision.drift:  # a monitor racing this one emitted first
                result = dataclasses.replace(result, decision=decision)
                out.update(status=decision.status, message=decision.message)
                record_decision(store, run_id, decision.status)
        publish_performance(store, trigger.verdict(
            result.rules, result.judged, p.evaluation.primary_metric, champion.version,
            watching.holdout.get(p.evaluation.primary_metric),
            next((r.errors.get(p.evaluation.primary_metric) for r in result.past), None)))
        if render:
            try:
                attach_report(store, run_id, render_report(svc.reports, rows, reference, p, result, champion.version))
            except Exception as err:  # noqa: BLE001 - the decision stands without its picture
                log.warning(f"the drift report could not be rendered ({type(err).__name__}: {err}); "
                            "the decision and the table stand")
                out["report_url"] = report_url = None
    except BaseException:
        close_run(store, run_id, failed=True)
        raise
    chart_url = None
    if result.columns and attach_chart(store, run_id, result):
        chart_url = out["chart_url"] = store.run_url(settings.mlflow_ui_url, run_id) + "/artifacts/" + CHART
    close_run(store, run_id)
    try:
        record_check(store)
    except Exception as err:  # noqa: BLE001 - the decision stands; the staleness alert will say so
        log.warning(f"the check's time could not be recorded in the registry ({type(err).__name__}: {err})")
    key = artifact_key("drift", name)
    publish_results(key, result, report_url)
    publish_report(f"{key}-decision", _markdown(name, champion.version, result, report_url, chart_url, p),
                   decision.message[:400])
    log.info(decision.message)
    return out


def _bounds(rows: pd.DataFrame) -> tuple[str | None, str | None]:
    """The log's times of the window's first and last row (one ISO format in UTC: text sorts as time)."""
    if not len(rows) or "timestamp" not in rows.columns:
        return None, None
    stamps = rows["timestamp"].astype(str)
    return stamps.min(), stamps.max()


def _labels_seen(feedback: pd.DataFrame, first: str, last: str) -> int:
    """Labels so far for rows of the window (by their request ids' issue times)."""
    ids = feedback["request_id"] if "request_id" in feedback.columns else pd.Series(dtype=str)
    return past_windows.labels_per_window([past_windows.PastWindow("", "", first, last)], issued_at(ids))[0]


def _rejudge(svc: Services, store, p: Params, before: str, scorings: dict) -> list[past_windows.Rejudged]:
    """Earlier windows judged again on the labels that arrived for them since (at most
    monitoring.past_windows a run, newest first, within monitoring.label_horizon_days): realized
    performance, the estimation error and the coverage per score band, added to the run that
    judged each."""
    cfg = p.monitoring
    windows = past_windows.tile(earlier_windows(store, cfg.label_horizon_days), before) if cfg.past_windows else []
    if not windows:
        return []
    labels = read_labels(svc.prediction_log, datetime.fromisoformat(windows[-1].first))
    if labels.empty:
        return []
    out = []
    for window, count in past_windows.pending(windows, issued_at(labels["request_id"]), cfg.past_windows):
        if window.version not in scorings:
            info = store.version(window.version)
            scorings[window.version] = champion_scoring(store, info, p) if info else None
        scoring = scorings[window.version]
        rows = monitoring.answered_by(read_past_window(svc.prediction_log, window.first, window.last, p),
                                      window.version)
        if scoring is None or not len(rows):
            continue
        judged = window_performance.judge(rows, monitoring.labels_of(rows, labels), scoring, p.data.feature_names)
        if judged.realized is None:
            continue
        errors = past_windows.errors(window.estimated, judged.realized)
        record_realized(store, window, judged, count, errors)
        out.append(past_windows.Rejudged(window, judged, errors, count))
    return out


def _noise_lines(result: monitoring.Assessment, rows: int) -> list[str]:
    """Drifted columns whose score two samples of the reference reach at this window's size."""
    noisy = [c for c in result.columns if c.drifted and c.noise is not None and c.score <= c.noise]
    if not noisy:
        return []
    return [f"- within sampling noise (two samples of the reference of {rows} rows score as high): "
            + ", ".join(f"{c.column} ({c.score:.3f}, noise up to {c.noise:.3f})" for c in noisy)
            + "; more rows (monitoring.last_rows) tell noise from drift"]


def _markdown(name: str, version: str, result: monitoring.Assessment, report_url: str | None,
              chart_url: str | None = None, p: Params | None = None) -> str:
    d = result.decision
    lines = [f"# Drift monitor: {name} version {version}", "", f"**{d.status}**: {d.message}", "",
             f"- rows judged: {result.rows}", f"- drift share: {d.drift_share:.0%}",
             f"- drifted columns: {', '.join(d.drifted_columns) or 'none'}",
             *_noise_lines(result, result.rows),
             f"- live accuracy: {result.performance.note}",
             f"- retraining rule: monitoring.trigger={p.monitoring.trigger if p else None}; "
             f"fired: {', '.join(d.fired) or 'none'}"]
    if report_url:
        lines.append(f"- [drift report]({report_url})")
    if chart_url:
        lines.append(f"- [drift per column against its threshold]({chart_url})")
    if d.drift:
        lines.append(f"- event `{DRIFT_DETECTED}` emitted: the `retrain-on-drift` deployment retrains")
    if p is not None:
        lines += performance_tables.performance_markdown(result.judged, result.holdout, result.past,
                                                         p.evaluation.primary_metric, p.data.task == "regression")
    return "\n".join(lines) + "\n"
