"""What the monitor keeps about the windows it judged, against a real MLflow SQLite store: the
window and its estimate on the run, found again later, the realized values and the estimation
error added to that run when labels arrive; the verdict the servers expose on /metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from prometheus_client.core import GaugeMetricFamily

from driftline.adapters.registry import monitor_windows
from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.registry.tags import KIND_TAG, PERFORMANCE_TAG, VERSION_TAG
from driftline.core import past_windows
from driftline.core.estimation import Estimate, Realized, Value
from driftline.core.window_performance import Band, Judged
from driftline.serving.metrics import performance_gauges
from tests.mlflow_db import empty_store

NONE = np.zeros(0)
ESTIMATE = Estimate(600, {"roc_auc": Value(0.94, 0.92, 0.96), "accuracy": Value(0.93, 0.91, 0.95)}, True,
                    "calibrated scores", NONE, NONE)


@pytest.fixture
def store(tmp_path) -> MlflowStore:
    s = MlflowStore(empty_store(tmp_path / "mlflow.db"), str(tmp_path / "artifacts"), "unit", "m").start()
    s.client.create_registered_model(s.model_name)
    return s


def _monitor_run(store: MlflowStore, first: str, last: str, judged: Judged | None, seen: int = 0) -> str:
    run_id = store.start_run(f"monitor-{store.model_name}", tags={KIND_TAG: "monitor", VERSION_TAG: "3"})
    monitor_windows.record(store, run_id, first, last, judged, seen)
    store.finish(run_id)
    return run_id


def test_a_window_is_found_again_with_its_estimate_and_its_realized_values_land_on_its_run(store):
    old = _monitor_run(store, "2026-01-01T00:00:00+00:00", "2026-01-01T23:59:00+00:00", Judged(ESTIMATE, None, []))
    newer = _monitor_run(store, "2026-01-02T00:00:00+00:00", "2026-01-02T23:59:00+00:00", None)
    other = store.start_run("monitor-another-model", tags={KIND_TAG: "monitor"})  # another model's: never found
    monitor_windows.record(store, other, "2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00", None, 0)
    found = monitor_windows.earlier(store, 400, now=1_798_000_000)  # 2026-12-23
    assert [w.run_id for w in found] == [newer, old]
    window = found[1]
    assert window.version == "3" and window.estimated == {"roc_auc": 0.94, "accuracy": 0.93}
    assert window.labels_seen == 0 and window.first == "2026-01-01T00:00:00+00:00"

    realized = Realized(600, 420, {"roc_auc": Value(0.71, 0.66, 0.76), "accuracy": Value(0.9, 0.88, 0.92)}, NONE, NONE)
    judged = Judged(None, realized, [Band("0–0.2", 500, 400, None, 0.95)])
    errors = past_windows.errors(window.estimated, realized)
    assert errors == pytest.approx({"roc_auc": 0.23, "accuracy": 0.03})
    monitor_windows.record_realized(store, window, judged, 420, errors)
    run = store.client.get_run(old)
    assert run.data.metrics["realized_roc_auc"] == pytest.approx(0.71)
    assert run.data.metrics["estimation_error_roc_auc"] == pytest.approx(0.23)
    assert run.data.metrics["label_coverage"] == pytest.approx(0.7) and run.data.metrics["labels_seen"] == 420
    assert run.data.metrics["estimated_roc_auc"] == pytest.approx(0.94)  # what was estimated stays
    bands = json.loads(_text(store, old))
    assert bands == [{"band": "0–0.2", "rows": 500, "labelled": 400, "coverage": 0.8, "estimated": None,
                      "realized": 0.95}]
    # The next search sees the labels it has counted: it is not read again until more arrive.
    assert monitor_windows.earlier(store, 400, now=1_798_000_000)[1].labels_seen == 420


def _text(store: MlflowStore, run_id: str) -> str:
    import mlflow.artifacts

    return open(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="performance/bands.json",
                                                    tracking_uri=store.tracking_uri)).read()


def test_the_verdict_for_metrics_keeps_the_newest_estimation_error_and_unreadable_tags_are_none(store):
    monitor_windows.publish(store, {"metric": "roc_auc", "estimated": 0.7, "estimation_error": 0.12})
    monitor_windows.publish(store, {"metric": "roc_auc", "estimated": 0.8})
    assert monitor_windows.read(store.model_tags()) == {"metric": "roc_auc", "estimated": 0.8,
                                                         "estimation_error": 0.12}
    assert monitor_windows.read({PERFORMANCE_TAG: "not json"}) is None
    assert monitor_windows.read({PERFORMANCE_TAG: "[1, 2]"}) is None and monitor_windows.read({}) is None


def test_the_servers_expose_the_verdict_as_gauges_and_skip_what_is_not_a_number():
    verdict = {"metric": "roc_auc", "estimated": 0.62, "estimated_low": 0.58, "estimated_high": 0.66,
               "holdout": 0.84, "limit": 0.79, "declined_estimated": 1, "coverage": 0.25,
               "estimation_error": 0.1, "realized": "0.9", "realized_low": float("nan")}
    families = {f.name: f for f in performance_gauges(verdict)}
    assert all(isinstance(f, GaugeMetricFamily) for f in families.values())
    values = {(s.labels["source"], s.labels["bound"]): s.value for s in families["driftline_performance"].samples}
    assert values == {("estimated", "value"): 0.62, ("estimated", "low"): 0.58, ("estimated", "high"): 0.66,
                      ("holdout", "value"): 0.84, ("limit", "value"): 0.79}
    assert [(s.labels, s.value) for s in families["driftline_performance_declined"].samples] == [
        ({"metric": "roc_auc", "source": "estimated"}, 1.0)]
    assert families["driftline_label_coverage"].samples[0].value == 0.25
    assert families["driftline_estimation_error"].samples[0].value == 0.1
