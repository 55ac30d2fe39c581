"""The drift monitor: a window of live traffic against the champion's training reference.

Drift, no drift, too little data or cooldown: each says so in the run's artifacts. Only on
drift does it emit `driftline.drift.detected`, which the `retrain-on-drift` deployment's
trigger turns into one training run.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from driftline import services
from driftline.config import Params, ServeSettings, Settings, load_params
from driftline.core import monitoring
from driftline.errors import PipelineFailure
from driftline.tracking import CHAMPION
from tasks.monitor import emit_drift, publish_results, read_window, render_report
from tasks.report import artifact_key, publish_report

LAST_DRIFT_TAG = "driftline.last_drift_event_at"


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
    log = get_run_logger()
    settings = Settings.for_project(project_dir)
    p: Params = load_params(settings.root / params_path, overrides)
    cfg = p.monitoring
    store = services.mlflow_store(settings, p).start()
    name = p.registry.model_name
    champion = store.version_by_alias(CHAMPION)
    if champion is None:
        message = f"{name} has no @champion yet: nothing is served, nothing to monitor"
        log.info(message)
        return {"status": "no_champion", "message": message}
    reference = store.load_reference(champion)
    if reference is None:
        raise PipelineFailure(f"{name} version {champion.version} was registered without a reference sample; "
                              "retrain it to monitor it")

    since = datetime.now(UTC) - timedelta(hours=window_hours or cfg.window_hours)
    rows, feedback = read_window(ServeSettings().logs(settings), since, last_rows or cfg.last_rows, p)
    expected = store.run_metrics(champion.run_id).get("holdout_accuracy")
    # The cooldown runs from the newest registered version (a retraining that produced a model)
    # or the last drift event (a retraining that was asked for), whichever is later.
    newest = max((v.created / 1000 for v in store.versions()), default=None)
    last = max([t for t in (newest, _float(store.model_tags().get(LAST_DRIFT_TAG))) if t is not None],
               default=None)
    hours_since_last = (time.time() - last) / 3600 if last is not None else None
    result = monitoring.assess(rows, feedback, reference, p, champion.version, expected, hours_since_last)
    decision = result.decision

    run_id = store.start_run(f"monitor-{name}", tags={
        "driftline.kind": "monitor", "driftline.decision": decision.status, "driftline.version": champion.version,
        "driftline.flow_run_id": str(flow_run.get_id() or "-")})
    store.log(run_id, metrics={"rows": result.rows, "drift_share": decision.drift_share,
                               "labelled": result.performance.labelled,
                               **{f"drift_{c.column}": c.score for c in result.columns if c.score == c.score}})
    render = result.rows >= min(cfg.min_rows, 100)
    report_url = store.run_url(settings.mlflow_ui_url, run_id) + "/artifacts/drift/report.html" if render else None
    out = {"status": decision.status, "model_name": name, "version": champion.version, "rows": result.rows,
           "drift_share": decision.drift_share, "drifted_columns": decision.drifted_columns,
           "reasons": decision.reasons, "message": decision.message, "report_url": report_url,
           "mlflow_run_id": run_id}
    try:
        if decision.drift:
            # Recorded before the event: a monitor run racing this one sees the cooldown. The event
            # goes before the report is rendered (seconds of Evidently): retraining need not wait.
            store.set_model_tags({LAST_DRIFT_TAG: f"{time.time():.3f}"})
            payload = {k: out[k] for k in ("model_name", "version", "drift_share", "drifted_columns", "reasons",
                                           "rows")}
            out["event_id"] = emit_drift(name, {**payload, "report_url": report_url or "",
                                                "summary": decision.message[:500]})
        if render:
            try:
                store.log_text(run_id, render_report(rows, reference, p), "drift/report.html")
            except Exception as err:  # noqa: BLE001 - the decision stands without its picture
                log.warning(f"the Evidently report could not be rendered ({type(err).__name__}: {err}); "
                            "the decision and the table stand")
                out["report_url"] = report_url = None
    finally:
        store.finish(run_id)
    key = artifact_key("drift", name)
    publish_results(key, result, report_url)
    publish_report(f"{key}-decision", _markdown(name, champion.version, result, report_url), decision.message[:400])
    log.info(decision.message)
    return out


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _markdown(name: str, version: str, result: monitoring.Assessment, report_url: str | None) -> str:
    d = result.decision
    lines = [f"# Drift monitor: {name} version {version}", "", f"**{d.status}**: {d.message}", "",
             f"- rows judged: {result.rows}", f"- drift share: {d.drift_share:.0%}",
             f"- drifted columns: {', '.join(d.drifted_columns) or 'none'}",
             f"- performance: {result.performance.note}"]
    if report_url:
        lines.append(f"- [Evidently report]({report_url})")
    if d.drift:
        lines.append("- event `driftline.drift.detected` emitted: the `retrain-on-drift` deployment retrains")
    return "\n".join(lines) + "\n"
