"""Every deployment in prefect.yaml loads: its entrypoint imports, its parameters validate, its
schedules and concurrency settings parse, and `deployments/serve.py` serves the same set."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.client.schemas.schedules import CronSchedule

REPO = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((REPO / "prefect.yaml").read_text())
DEPLOYMENTS = SPEC["deployments"]


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
        CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone"))
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
        crons = [s["cron"] for s in d.get("schedules", [])]
        assert [s.schedule.cron for s in served[d["name"]].schedules or []] == crons
