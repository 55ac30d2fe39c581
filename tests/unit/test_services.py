"""The composition root builds the adapters, and only building them changes the process."""

from __future__ import annotations

import importlib
import os

import pytest

from driftline import services
from driftline.adapters.protocols import Part
from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.s3 import CHECKSUM_ENV
from driftline.config import Settings
from tests.unit.conftest import REPO


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
    assert isinstance(svc.prediction_log, services.PartitionedPredictions)
    assert svc.prediction_log.location == "s3://team-logs/serving"
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
    given = {name: Recorded(name, calls) for name in ("registry", "prediction_log", "reports", "data")}
    with services.build_services(Settings(project_dir=tmp_path), params, **given) as svc:
        assert svc.prediction_log is given["prediction_log"] and svc.registry is given["registry"]
        assert all(isinstance(part, Part) for part in svc.parts())
    assert calls == ["start registry", "start prediction_log", "start reports", "start data",
                     "stop data", "stop reports", "stop prediction_log", "stop registry"]


class Failing(Recorded):
    def start(self) -> Failing:
        self.calls.append(f"start {self.name}")
        raise ConnectionError(f"{self.name} does not answer")


def _project(tmp_path, params_text: str | None = None) -> None:
    (tmp_path / "params.yaml").write_text(params_text or (REPO / "params.yaml").read_text())


def test_open_project_reads_the_settings_and_params_and_starts_the_services_only_when_used(tmp_path):
    _project(tmp_path)
    calls: list[str] = []
    parts = {name: Recorded(name, calls) for name in ("registry", "prediction_log", "reports", "data")}
    with services.open_project(tmp_path, "params.yaml", ["training.seed=7"], **parts) as project:
        assert project.settings.root == tmp_path.resolve() and project.params.training.seed == 7
        assert calls == [] and not project.started
        assert project.registry is parts["registry"] and project.services.prediction_log is parts["prediction_log"]
        assert calls == ["start registry", "start prediction_log", "start reports", "start data"]
    assert calls[4:] == ["stop data", "stop reports", "stop prediction_log", "stop registry"]
    assert not project.started


def test_open_project_closes_what_it_started_when_the_work_fails(tmp_path):
    _project(tmp_path)
    calls: list[str] = []
    parts = {name: Recorded(name, calls) for name in ("registry", "prediction_log", "reports", "data")}
    def flow() -> None:
        with services.open_project(tmp_path, **parts) as project:
            project.services  # noqa: B018
            raise RuntimeError("the flow failed")

    with pytest.raises(RuntimeError, match="the flow failed"):
        flow()
    assert calls[-4:] == ["stop data", "stop reports", "stop prediction_log", "stop registry"]


def test_open_project_stops_the_parts_started_before_one_that_fails_to_start(tmp_path):
    _project(tmp_path)
    calls: list[str] = []
    parts = {"registry": Recorded("registry", calls), "prediction_log": Recorded("prediction_log", calls),
             "reports": Failing("reports", calls), "data": Recorded("data", calls)}
    with pytest.raises(ConnectionError, match="reports does not answer"), \
            services.open_project(tmp_path, **parts) as project:
        project.services  # noqa: B018
    assert calls == ["start registry", "start prediction_log", "start reports", "stop prediction_log",
                     "stop registry"]
    assert not project.started


def test_open_project_names_a_bad_key_before_anything_starts(tmp_path):
    from driftline.config import ConfigError

    _project(tmp_path)
    calls: list[str] = []
    with pytest.raises(ConfigError, match=r"training\.no_such_key"), \
            services.open_project(tmp_path, overrides=["training.no_such_key=1"], registry=Recorded("registry", calls)):
        pass
    assert calls == []


def test_the_old_names_work_for_one_release_and_say_so(tmp_path, params):
    from driftline.adapters import protocols

    log = Recorded("mine", [])
    with pytest.warns(DeprecationWarning, match=r"predictions=\.\.\.\) is now build_services\(\.\.\., prediction_log="):
        svc = services.build_services(Settings(project_dir=tmp_path), params, predictions=log)
    assert svc.prediction_log is log
    with pytest.warns(DeprecationWarning, match="Services.predictions is now Services.prediction_log"):
        assert svc.predictions is log
    with pytest.warns(DeprecationWarning, match="driftline.adapters.protocols.PredictionLog"):
        from driftline.services import PredictionLog
    assert PredictionLog is protocols.PredictionLog
    with pytest.raises(TypeError, match="give prediction_log= only"):
        services.build_services(Settings(project_dir=tmp_path), params, predictions=log, prediction_log=log)
    with pytest.raises(AttributeError):
        services.NoSuchName  # noqa: B018
