"""Every deployment in prefect.yaml loads: its entrypoint imports, its parameters validate, its
schedules, triggers and concurrency settings parse, and `deployments/serve.py` serves the same set."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.events import DeploymentEventTrigger

REPO = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((REPO / "prefect.yaml").read_text())
DEPLOYMENTS = SPEC["deployments"]


# Each event's payload as the code that emits it builds it (flows/monitor.py, tasks/report.py).
EVENT_PAYLOADS = {
    "driftline.drift.detected": {"model_name": "loan-default", "version": "1", "drift_share": 0.57,
                                 "drifted_columns": ["age"], "reasons": ["share"], "rows": 600, "report_url": "",
                                 "summary": "drift: 57% of features drifted (age, ...)"},
    "driftline.challenger.registered": {"model_name": "loan-default", "version": "2", "strategy": "canary"},
}
OCCURRED = datetime(2026, 12, 6, 1, 30, 15, 250000, tzinfo=UTC)


def render_trigger(parameters: dict, payload: dict) -> dict:
    """A trigger's parameters rendered the way Prefect's RunDeployment action renders them."""
    import copy

    from prefect.server.events.actions import RunDeployment
    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.utilities.schema_tools.hydration import HydrationContext, hydrate

    parameters = copy.deepcopy(parameters)
    RunDeployment._upgrade_v1_templates(parameters)
    event = ReceivedEvent(event="x", payload=payload, occurred=OCCURRED, id="5d1c3f7e-2b1a-4c8e-9f00-0a1b2c3d4e5f",
                          resource={"prefect.resource.id": "driftline.model.loan-default"})
    return hydrate(parameters, HydrationContext(raise_on_error=True, render_jinja=True,
                                                jinja_context={"event": event}))


def test_trigger_templates_render_the_event_payload():
    by_name = {d["name"]: d for d in DEPLOYMENTS}
    drift = render_trigger(by_name["retrain-on-drift"]["triggers"][0]["parameters"],
                           EVENT_PAYLOADS["driftline.drift.detected"])
    assert drift["drift_summary"] == "drift: 57% of features drifted (age, ...)" and drift["reason"] == "drift"
    assert drift["drift_event_at"] == OCCURRED.timestamp()  # a number: the flow compares it with a start time
    rollout = render_trigger(by_name["auto-deploy"]["triggers"][0]["parameters"],
                             EVENT_PAYLOADS["driftline.challenger.registered"])
    assert rollout["version"] == "2" and rollout["strategy"] == "canary"


def _load(entrypoint: str) -> Flow:
    path, _, name = entrypoint.partition(":")
    spec = importlib.util.spec_from_file_location(Path(path).stem, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_deployment_loads(deployment):
    flow = _load(deployment["entrypoint"])
    assert isinstance(flow, Flow)
    flow.validate_parameters(deployment.get("parameters", {}))
    for schedule in deployment.get("schedules", []):
        if "cron" in schedule:
            CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone"))
        else:
            assert IntervalSchedule(interval=schedule["interval"]).interval.total_seconds() > 0
    for trigger in deployment.get("triggers", []):
        parsed = DeploymentEventTrigger(**trigger)
        assert parsed.expect and parsed.parameters
        # What the trigger renders from its event, through Prefect's own templating, must be a
        # valid call of the flow.
        (expected,) = parsed.expect
        rendered = render_trigger(parsed.parameters, EVENT_PAYLOADS[expected])
        flow.validate_parameters(rendered)
        assert "{{" not in str(rendered)
    if "concurrency_limit" in deployment:
        ConcurrencyLimitConfig(**deployment["concurrency_limit"])
    assert deployment["work_pool"]["name"]


def test_bad_parameters_are_refused_by_the_flow_signature():
    from prefect.exceptions import ParameterTypeError

    flow = _load(DEPLOYMENTS[0]["entrypoint"])
    with pytest.raises(ParameterTypeError):
        flow.validate_parameters({"overrides": 3})


def test_serve_entry_point_has_the_same_deployments():
    from deployments.serve import deployments

    served = {d.name: d for d in deployments()}
    assert set(served) == {d["name"] for d in DEPLOYMENTS}
    for d in DEPLOYMENTS:
        assert served[d["name"]].parameters == d.get("parameters", {})
        crons = [s.get("cron") or s["interval"] for s in d.get("schedules", [])]
        schedules = [s.schedule for s in served[d["name"]].schedules or []]
        assert [getattr(s, "cron", None) or s.interval.total_seconds() for s in schedules] == crons
        triggers = served[d["name"]].triggers or []
        served_triggers = [(set(t.expect), t.match.model_dump(), t.parameters) for t in triggers]
        yaml_triggers = [(set(t["expect"]), t.get("match", {}), t["parameters"]) for t in d.get("triggers", [])]
        assert served_triggers == yaml_triggers


def test_drift_and_auto_deploy_deployments_are_wired_to_their_events():
    from driftline.adapters.registry.tags import CHALLENGER_REGISTERED, DRIFT_DETECTED

    by_name = {d["name"]: d for d in DEPLOYMENTS}
    assert by_name["retrain-on-drift"]["triggers"][0]["expect"] == [DRIFT_DETECTED]
    assert by_name["retrain-on-drift"]["parameters"]["reason"] == "drift"
    assert by_name["auto-deploy"]["triggers"][0]["expect"] == [CHALLENGER_REGISTERED]
    assert by_name["retrain-on-drift"]["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    # Every announced challenger gets its rollout, one after the other (the rollout lease keeps
    # them apart): a challenger announced as the previous rollout ends must not be cancelled.
    assert by_name["auto-deploy"]["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}


def test_the_old_rollout_entrypoint_still_loads_the_rollout_flow_and_says_it_moved():
    # Deployments made before the rename keep `flows/deploy.py:deploy_model` as their entrypoint.
    import sys

    from flows.rollout import rollout

    sys.modules.pop("flows.deploy", None)
    with pytest.warns(FutureWarning, match=r"renamed flows/rollout.py:rollout"):
        old = importlib.import_module("flows.deploy")
    assert old.deploy_model is rollout and rollout.name == "rollout"
