"""The drift event's registry state, against a real MLflow SQLite store: the cooldown clock, and
one event under the drift-event lease with the cooldown set only once it is out."""

from __future__ import annotations

import re
import time

import pytest

from driftline.adapters.registry import drift_events
from driftline.adapters.registry.store import MlflowStore
from driftline.core.monitoring import Decision
from driftline.errors import PipelineFailure
from tests.mlflow_db import empty_store

DRIFT = Decision("drift", 0.5, ["age"], ["50% of features drifted"], "drift: 50% of features drifted")


@pytest.fixture
def store(tmp_path) -> MlflowStore:
    s = MlflowStore(empty_store(tmp_path / "mlflow.db"), str(tmp_path / "artifacts"), "unit", "m").start()
    s.client.create_registered_model(s.model_name)
    return s


def test_the_cooldown_clock_runs_from_the_newest_version_or_the_last_event(store):
    assert drift_events.hours_since_last(store) is None
    store.set_model_tags({drift_events.LAST_DRIFT_TAG: f"{time.time() - 7200:.3f}"})
    assert drift_events.hours_since_last(store) == pytest.approx(2, abs=0.01)
    store.client.create_model_version(store.model_name, "file:///nowhere/model")
    assert drift_events.hours_since_last(store) == pytest.approx(0, abs=0.01)


def test_an_event_goes_out_then_the_cooldown_is_set(store, make_params):
    cfg = make_params("monitoring.cooldown_hours=1").monitoring
    decision, event_id = drift_events.emit_once(store, "run-1", DRIFT, cfg, lambda: "event-1")
    assert decision == DRIFT and event_id == "event-1"
    assert drift_events.hours_since_last(store) == pytest.approx(0, abs=0.01)
    again, second = drift_events.emit_once(store, "run-2", DRIFT, cfg, lambda: pytest.fail("emitted twice"))
    assert again.status == "cooldown" and second is None


def test_an_event_that_cannot_be_emitted_leaves_no_cooldown(store, params):
    def unreachable() -> str:
        raise ConnectionError("prefect api down")

    with pytest.raises(PipelineFailure, match="the cooldown was not set"):
        drift_events.emit_once(store, "run-1", DRIFT, params.monitoring, unreachable)
    assert drift_events.LAST_DRIFT_TAG not in store.model_tags()


def test_no_champion_is_nothing_to_watch_and_a_champion_without_reference_has_none(store):
    assert drift_events.watched(store) is None
    run_id = store.start_run("train", tags={})
    store.register(f"runs:/{run_id}/model", run_id, {}, "champion", "unit")
    watching = drift_events.watched(store)
    assert watching.info.version == "1" and watching.reference is None and watching.expected_accuracy is None


def test_the_monitor_run_records_a_changed_decision_and_closes_failed_or_finished(store):
    run_id = store.start_run("monitor", tags={drift_events.DECISION_TAG: "drift"})
    drift_events.record_decision(store, run_id, "cooldown")
    drift_events.close_run(store, run_id, failed=True)
    run = store.client.get_run(run_id)
    assert run.data.tags[drift_events.DECISION_TAG] == "cooldown" and run.info.status == "FAILED"
    other = store.start_run("monitor", tags={})
    drift_events.close_run(store, other)
    assert store.client.get_run(other).info.status == "FINISHED"


def test_a_drift_event_older_than_a_finished_drift_retraining_is_answered(store):
    now = time.time()
    assert drift_events.answered(store, now) is None  # no drift retraining yet
    drift_events.record_retrain(store, now)
    assert drift_events.answered(store, None) is None  # a run not started by a drift event
    why = drift_events.answered(store, now - 30)
    assert why is not None and "answered by the drift retraining that started at" in why
    assert drift_events.answered(store, now + 30) is None  # drift seen after that retraining began


def test_the_times_are_written_as_iso_times(store, params):
    now = time.time()
    drift_events.emit_once(store, "run-1", DRIFT, params.monitoring.model_copy(update={"cooldown_hours": 0}),
                           lambda: "event-1")
    drift_events.record_check(store)
    drift_events.record_retrain(store, now)
    written = store.model_tags()
    for tag in (drift_events.LAST_DRIFT_TAG, drift_events.CHECK_TAG, drift_events.RETRAIN_TAG):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", written[tag]), (tag, written[tag])
    assert drift_events.checked_at(written) == pytest.approx(time.time(), abs=60)
    assert drift_events.hours_since_last(store) == pytest.approx(0, abs=0.01)
    assert drift_events.answered(store, now - 1) is not None and drift_events.answered(store, now + 1) is None


def test_the_epoch_seconds_an_existing_registry_holds_still_read(store):
    now = time.time()
    store.set_model_tags({drift_events.LAST_DRIFT_TAG: f"{now - 7200:.3f}", drift_events.CHECK_TAG: f"{now:.3f}",
                          drift_events.RETRAIN_TAG: f"{now:.3f}"})
    assert drift_events.hours_since_last(store) == pytest.approx(2, abs=0.01)
    assert drift_events.checked_at(store.model_tags()) == pytest.approx(now, abs=0.001)
    assert drift_events.answered(store, now - 30) is not None and drift_events.answered(store, now + 30) is None


def test_an_unreadable_drift_event_time_is_no_event_and_the_versions_still_count(store):
    store.set_model_tags({drift_events.LAST_DRIFT_TAG: "yesterday"})
    assert drift_events.hours_since_last(store) is None
    store.client.create_model_version(store.model_name, "file:///nowhere/model")
    assert drift_events.hours_since_last(store) == pytest.approx(0, abs=0.01)
