"""Prefect tasks of the drift monitor: read the log window, render the report, publish, emit."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.events import emit_event

from driftline import drift_report
from driftline.config import Params, names_by_type
from driftline.core import monitoring
from driftline.serving import predlog

DRIFT_EVENT = "driftline.drift.detected"


@task(name="read-log-window", cache_policy=NONE, retries=2, retry_delay_seconds=2)
def read_window(log_dir: str | Path, since: datetime, last_rows: int | None,
                p: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The live rows logged since `since` (newest `last_rows` when set), and the labels fed back."""
    return predlog.read_live_window(log_dir, since, last_rows, p)


@task(name="render-drift-report", cache_policy=NONE, timeout_seconds=900)
def render_report(rows: pd.DataFrame, reference: pd.DataFrame, p: Params) -> str:
    """Evidently's HTML on seeded samples of the window and the reference (the decision used
    every row of both)."""
    shared = [f for f in p.data.features if f.name in reference.columns]
    n = p.monitoring.report_rows
    sample = rows.sample(min(len(rows), n), random_state=0)
    reference = reference.sample(min(len(reference), n), random_state=0)
    return drift_report.monitor_html(sample.reindex(columns=[f.name for f in shared]), reference,
                                     *names_by_type(shared))


@task(name="publish-drift-results", cache_policy=NONE)
def publish_results(key: str, result: monitoring.Assessment, report_url: str | None) -> None:
    quality = {q.column: q for q in result.quality}
    table = [{"column": c.column, "method": c.method, "score": round(c.score, 4), "threshold": c.threshold,
              "drifted": c.drifted,
              "missing (current)": round(quality[c.column].missing_current, 4) if c.column in quality else None,
              "outside config": round(quality[c.column].unknown_share, 4) if c.column in quality else None}
             for c in result.columns]
    create_table_artifact(table=table, key=key, description=result.decision.message[:400])
    if report_url:
        create_link_artifact(link=report_url, link_text="Evidently drift report (MLflow)", key=f"{key}-report",
                             description=f"{result.rows} rows; {result.decision.status}")


@task(name="emit-drift-event", cache_policy=NONE)
def emit_drift(model_name: str, payload: dict) -> str:
    event = emit_event(event=DRIFT_EVENT,
                       resource={"prefect.resource.id": f"driftline.model.{model_name}",
                                 "prefect.resource.name": model_name},
                       payload=payload)
    return str(event.id) if event else ""
