"""Derived features end to end: trained by the training flow with every kind of `data.derived`,
registered, served over HTTP from raw requests, and answering exactly what the registered model
answers offline for the same raw rows; then watched by the drift monitor flow as the champion
computes them."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import httpx
import numpy as np

from driftline.adapters.registry.store import CHAMPION
from driftline.adapters.serving_client import client_records
from driftline.config import load_params
from driftline.core import demo_data, frames
from flows.monitor import drift_monitor
from tests.integration.conftest import make_project
from tests.integration.test_serving import Server
from tests.unit.core.test_features import USER_MODULE, WITH_FUNCTION


def test_the_server_computes_every_derived_feature_as_the_registered_model_does_offline(tmp_path):
    project = make_project(tmp_path / "proj")
    (project.root / "user_features.py").write_text(USER_MODULE)  # the project's own feature code
    result = project.train(*WITH_FUNCTION)
    assert result["status"] == "registered" and result["version"] == "1", result
    store = project.store()
    model = store.load_model(store.version_by_alias(CHAMPION))
    assert "derive" in model.estimator_.named_steps  # the registered model carries the step itself
    # The user module ships beside the model too (MLflow code_paths), for anyone reading the artifact.
    version = store.version_by_alias(CHAMPION)
    assert [a.path for a in store.client.list_artifacts(version.run_id, "model/code")] == \
        ["model/code/user_features.py"]

    p = load_params(project.root / "params.yaml", list(WITH_FUNCTION))
    rows = demo_data.generate(300, seed=99, scenario="covariate_shift")  # unseen rows, some out of range
    raw = frames.features(rows, p.data)
    offline = model.predict_proba(raw)
    server = Server(project, project.root / ".driftline")  # the monitor reads this log below
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            answer = client.post("/predict", json=client_records(raw))
            # A time the derive step would read as missing (or as the clock) is refused, named.
            clock = client.post("/predict", json=[{**client_records(raw)[0], "application_date": "now"}])
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    assert clock.status_code == 422 and "field 'application_date' must be an ISO 8601 date" in clock.text, clock.text
    served = np.array([[row[str(c)] for c in model.classes_] for row in answer.json()["probabilities"]])
    np.testing.assert_array_equal(served, offline)

    # The monitor flow loads the champion's derive step and judges the derived columns of the
    # logged traffic; one of them, named in drift_columns, counts alone.
    state = drift_monitor(last_rows=300, project_dir=str(project.root), return_state=True, overrides=[
        *WITH_FUNCTION, "monitoring.cooldown_hours=0", "monitoring.min_rows=300",
        "monitoring.drift_columns=[days_since_launch]"])
    result = state.result()
    assert "days_since_launch drifted, and it alone counts (monitoring.drift_columns)" in result["reasons"], result
    assert "applied_on_weekend" not in result["drifted_columns"]  # the weekday mix did not change
    derived = {d.name for d in p.data.derived}
    raw = [c for c in result["drifted_columns"] if c not in derived and c != "prediction"]
    assert result["drift_share"] == len(raw) / len([f for f in p.data.features if f.type != "datetime"])
    # The per-column picture, derived columns on it too, on the monitor's run and linked.
    assert result["chart_url"].endswith(f"/runs/{result['mlflow_run_id']}/artifacts/drift/columns.png")
    assert "drift/columns.png" in [a.path for a in store.client.list_artifacts(result["mlflow_run_id"], "drift")]
    # The report the run links is drawn from the decision's own numbers: each column's score, as
    # the run's metric, and the derived ones in its table (their distributions are the model's).
    report = store.client.download_artifacts(result["mlflow_run_id"], "drift/report.html", str(tmp_path))
    html, metrics = Path(report).read_text(), store.client.get_run(result["mlflow_run_id"]).data.metrics
    assert result["report_url"].endswith("/artifacts/drift/report.html") and "Evidently" not in html
    for column in ["days_since_launch", "annual_income", "prediction"]:
        score = f"{metrics['drift_' + column]:.4g}"
        assert re.search(f"<tr><td>{column}</td><td>[a-z]+</td><td>{re.escape(score)}</td>", html), column
    assert f"<b>drift</b>: {escape(result['message'])}" in html
