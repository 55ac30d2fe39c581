"""The composition root builds the adapters, and only building them changes the process."""

from __future__ import annotations

import importlib
import os

from driftline import services
from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.s3 import CHECKSUM_ENV
from driftline.config import Settings


def test_importing_the_flows_changes_nothing_and_building_the_services_sets_the_s3_checksum_mode(
        monkeypatch, tmp_path, params):
    for key in CHECKSUM_ENV:
        monkeypatch.delenv(key, raising=False)
    importlib.reload(importlib.import_module("flows"))
    assert not any(key in os.environ for key in CHECKSUM_ENV)

    svc = services.build_services(Settings(project_dir=tmp_path), params)
    assert {key: os.environ[key] for key in CHECKSUM_ENV} == CHECKSUM_ENV
    assert svc.registry.model_name == params.registry.model_name and (tmp_path / ".driftline").is_dir()


def test_by_default_every_part_is_built_from_the_settings(monkeypatch, tmp_path, params):
    monkeypatch.setenv("DRIFTLINE_SERVE_LOG_DIR", "s3://team-logs/serving")
    svc = services.build_services(Settings(project_dir=tmp_path), params)
    assert isinstance(svc.registry, MlflowStore) and svc.registry.tracking_uri.endswith(".driftline/mlflow.db")
    assert isinstance(svc.predictions, services.PartitionedPredictions)
    assert svc.predictions.location == "s3://team-logs/serving"
    assert isinstance(svc.reports, services.DriftlineReports)
    evidently = params.model_copy(update={"monitoring": params.monitoring.model_copy(update={"report": "evidently"})})
    assert isinstance(services.build_services(Settings(project_dir=tmp_path), evidently).reports,
                      services.EvidentlyReports)
    assert isinstance(svc.data, services.DvcData) and svc.data.root == tmp_path


class Recorded:
    def __init__(self, name: str, calls: list[str]):
        self.name, self.calls = name, calls

    def start(self) -> Recorded:
        self.calls.append(f"start {self.name}")
        return self

    def stop(self) -> None:
        self.calls.append(f"stop {self.name}")


def test_a_part_passed_in_is_used_as_is_and_started_and_stopped_with_the_rest(tmp_path, params):
    calls: list[str] = []
    given = {name: Recorded(name, calls) for name in ("registry", "predictions", "reports", "data")}
    with services.build_services(Settings(project_dir=tmp_path), params, **given) as svc:
        assert svc.predictions is given["predictions"] and svc.registry is given["registry"]
        assert all(isinstance(part, services.Part) for part in svc.parts())
    assert calls == ["start registry", "start predictions", "start reports", "start data",
                     "stop data", "stop reports", "stop predictions", "stop registry"]
