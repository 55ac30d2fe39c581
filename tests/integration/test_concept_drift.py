"""Concept drift end to end: the inputs look as they always did, but the world changed and the
labels fed back through /feedback say the champion is now wrong more often. The monitor must call
that drift for its performance, not for its inputs, and emit the event that retrains."""

from __future__ import annotations

import time

from driftline.app.traffic import Traffic
from driftline.config import load_params
from flows.monitor import drift_monitor
from tests.integration.conftest import flow_run_events, make_project
from tests.integration.test_serving import Server
from tests.waiting import wait_until

# A tolerance of 0.02 (0.05 by default): the concept-drift traffic costs the champion about 7
# points of accuracy, and 700 labels bound that to within about 3, so at 0.05 the verdict would
# rest on the noise of one window (it did: holdout 0.781, live 0.713, upper bound 0.740 > 0.731).
NO_COOLDOWN = ["monitoring.cooldown_hours=0", "monitoring.min_rows=300", "monitoring.min_labels=300",
               "monitoring.max_accuracy_drop=0.02"]


def test_labels_that_disagree_with_the_champion_are_drift_for_its_performance(tmp_path):
    project = make_project(tmp_path / "proj")
    project.train()
    server = Server(project, project.root / ".driftline")
    traffic = Traffic(server.url, load_params(project.root / "params.yaml"), scenario="concept_drift", rows=3000,
                      threads=4, seed=5)
    try:
        assert wait_until(lambda: traffic.sent >= 700, 240), f"only {traffic.sent} requests sent"
    finally:
        traffic.stop()
    time.sleep(3)  # the server's log flushes every 2 s
    server.stop()
    assert traffic.failures == []

    state = drift_monitor(last_rows=700, overrides=NO_COOLDOWN, project_dir=str(project.root), return_state=True)
    result = state.result()
    assert result["status"] == "drift", result["message"]
    reasons = " ".join(result["reasons"])
    assert "performance declined" in reasons, reasons
    assert result["drift_share"] < load_params(project.root / "params.yaml").monitoring.drift_share, \
        "the inputs drifted too: this would not prove the labels were heard"
    events = flow_run_events("driftline.drift.detected", str(state.state_details.flow_run_id))
    assert len(events) == 1 and "performance declined" in " ".join(events[0]["payload"]["reasons"])
