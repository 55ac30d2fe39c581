"""The composition root is the seam: a team's own prediction log or report renderer, passed to
`build_services`, is what the drift monitor reads and renders with; nothing is patched. The
registry stays the real MLflow store, and the flow's decision is the real one."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from prefect import flow

from driftline import services
from driftline.adapters.registry.drift_events import checked_at
from driftline.config import Params, Settings, load_params
from driftline.core import demo_data
from flows.monitor import watch
from tests.integration.conftest import REPO, flow_run_events
from tests.mlflow_db import empty_store

ROWS = 1200


class RowsInMemory:
    """A prediction log that is a DataFrame: what a team reading its log from a warehouse passes."""

    def __init__(self, rows: pd.DataFrame):
        self.rows, self.reads, self.started, self.stopped = rows, [], False, False

    def start(self) -> RowsInMemory:
        self.started = True
        return self

    def stop(self) -> None:
        self.stopped = True

    def window(self, since: datetime, last_rows: int | None, p: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
        self.reads.append(since)
        return self.rows, pd.DataFrame()

    def since(self, first: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self.rows, pd.DataFrame()


class PlainReports:
    def __init__(self):
        self.rendered: list[int] = []

    def start(self) -> PlainReports:
        return self

    def stop(self) -> None:
        pass

    def render(self, rows: pd.DataFrame, reference: pd.DataFrame, p: Params, result, version: str) -> str:
        self.rendered.append(len(rows))
        return f"<html>{len(rows)} rows against {len(reference)}</html>"


def _live(scenario: str, seed: int) -> pd.DataFrame:
    """Rows as the model server logs them: the features and the champion's (version 1) answer."""
    rows = demo_data.generate(ROWS, seed=seed, scenario=scenario).drop(columns="defaulted")
    return rows.assign(request_id=[uuid.uuid4().hex for _ in range(ROWS)], record_index=0,
                       timestamp=datetime.now(UTC).isoformat(), variant="champion", status="ok",
                       model_version="1", prediction=0, score=0.1)


def _monitor(tmp_path, rows: pd.DataFrame) -> tuple[dict, str, RowsInMemory, PlainReports, services.Services]:
    settings = Settings(project_dir=tmp_path)
    p = load_params(REPO / "params.yaml", ["monitoring.cooldown_hours=0"])
    empty_store(settings.state / "mlflow.db")
    log, reports = RowsInMemory(rows), PlainReports()
    svc = services.build_services(settings, p, prediction_log=log, reports=reports)
    store = svc.registry.start()
    run_id = store.start_run("train", {})
    store.log_frame(run_id, demo_data.generate(2000, seed=1)[p.data.feature_names], "reference/reference.parquet")
    store.register(f"runs:/{run_id}/model", run_id, {}, "champion", "services test")

    @flow(name="monitor-with-own-log")
    def monitored():
        with svc:
            return watch(svc, settings, p)

    state = monitored(return_state=True)
    return state.result(), str(state.state_details.flow_run_id), log, reports, svc


def test_the_monitor_judges_the_prediction_log_it_is_given_and_renders_with_the_given_reports(tmp_path):
    result, flow_run_id, log, reports, svc = _monitor(tmp_path, _live("covariate_shift", 3))
    assert log.started and log.stopped and len(log.reads) == 1
    assert result["status"] == "drift" and result["rows"] == ROWS, result["message"]
    assert reports.rendered == [ROWS]
    html = svc.registry.client.download_artifacts(result["mlflow_run_id"], "drift/report.html", str(tmp_path))
    assert Path(html).read_text() == f"<html>{ROWS} rows against 2000</html>"
    assert not (tmp_path / ".driftline" / "predictions").exists(), "the default log was read"
    events = flow_run_events("driftline.drift.detected", flow_run_id)
    assert len(events) == 1 and events[0]["payload"]["rows"] == ROWS


def test_the_same_flow_over_ordinary_rows_from_the_given_log_sees_no_drift(tmp_path):
    began = time.time()
    result, _, log, reports, svc = _monitor(tmp_path, _live("baseline", 4))
    assert result["status"] == "no_drift" and result["rows"] == ROWS, result["message"]
    assert reports.rendered == [ROWS] and len(log.reads) == 1
    # A completed check is recorded on the model, where the servers expose it to the staleness alert.
    assert began <= checked_at(svc.registry.model_tags()) <= time.time()
