"""Composition root: the one place that turns settings into adapters.

Flows and commands start from `open_project(...)`: the settings, the params and the services
(`build_services`), started when first used and stopped when the project closes. None of them
builds an adapter itself. Each part is named by a small Protocol (driftline/adapters/protocols.py),
so a caller (a test, or a team with another log store) passes its own implementation of any
part, `build_services(settings, params, prediction_log=...)`, and the code it reaches cannot tell
the difference. Nothing connects until `start()`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from driftline.adapters import dvc_data, dvc_versions, evidently_drift, predlog, predlog_reader, protocols
from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.s3 import use_safe_checksums
from driftline.config import Params, ServeSettings, Settings, load_params
from driftline.core import drift_report
from driftline.core.monitoring import Assessment


class HoldsNothing:
    """A part with nothing to open or close: every call opens and closes what it uses."""

    def start(self) -> HoldsNothing:
        return self

    def stop(self) -> None:
        pass


class PartitionedPredictions(HoldsNothing):
    """The server's hourly Parquet partitions, on a local path or S3 (fsspec)."""

    def __init__(self, location: str | Path):
        self.location = location

    def window(self, since: datetime, last_rows: int | None, p: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
        return predlog_reader.read_live_window(self.location, since, last_rows, p)

    def since(self, first: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Every column of the predictions and the feedback logged from `first` on (by hour)."""
        return (predlog_reader.read_log(predlog.join(self.location, "predictions"), first),
                predlog_reader.read_log(predlog.join(self.location, "feedback"), first))

    def past_window(self, first: str, last: str, p: Params) -> pd.DataFrame:
        """The live rows an earlier monitor run judged (logged from `first` to `last`)."""
        return predlog_reader.read_past_window(self.location, first, last, p)

    def labels(self, since: datetime) -> pd.DataFrame:
        return predlog_reader.read_labels(self.location, since)


class DriftlineReports(HoldsNothing):
    """The report drawn from the decision's statistics (`monitoring.report: driftline`)."""

    def render(self, rows: pd.DataFrame, reference: pd.DataFrame, p: Params, result: Assessment,
               version: str) -> str:
        return drift_report.render(rows, reference, p, result, version)


class EvidentlyReports(HoldsNothing):
    """Evidently's interactive report on seeded samples (`monitoring.report: evidently`)."""

    def render(self, rows: pd.DataFrame, reference: pd.DataFrame, p: Params, result: Assessment,
               version: str) -> str:
        return evidently_drift.monitor_report(rows, reference, p)


class DvcData(HoldsNothing):
    """Data tracked by DVC in the project's git repository."""

    def __init__(self, root: Path):
        self.root = root

    def snapshot(self, data_path: str) -> dvc_data.Snapshot:
        return dvc_data.snapshot(self.root, data_path)

    def read(self, path: Path) -> pd.DataFrame:
        return dvc_data.read_table(path)

    def read_version(self, data_path: str, md5: str) -> pd.DataFrame:
        return dvc_versions.read_version(self.root, data_path, md5)


@dataclass
class Services:
    """Every adapter a flow reaches. `registry` is also the tracking store and the audit log."""

    registry: MlflowStore
    prediction_log: protocols.PredictionLog
    reports: protocols.DriftReports
    data: protocols.ProjectData

    def parts(self) -> list[protocols.Part]:
        return [getattr(self, f.name) for f in fields(self)]

    def start(self) -> Services:
        """Start every part; if one fails, stop the ones started before it and raise."""
        started: list[protocols.Part] = []
        try:
            for part in self.parts():
                part.start()
                started.append(part)
        except BaseException:
            for part in reversed(started):
                with contextlib.suppress(Exception):  # the start's own error is the one to report
                    part.stop()
            raise
        return self

    def stop(self) -> None:
        for part in reversed(self.parts()):
            part.stop()

    def __enter__(self) -> Services:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def predictions(self) -> protocols.PredictionLog:
        _renamed("Services.predictions", "Services.prediction_log")
        return self.prediction_log


def mlflow_store(settings: Settings, params: Params) -> MlflowStore:
    # MLflow and DVC build their own S3 clients, which read the checksum mode from the
    # environment: set it where every flow and command builds its adapters, before any client
    # exists (a worker runs flows without passing through the CLI).
    use_safe_checksums()
    settings.state.mkdir(parents=True, exist_ok=True)
    return MlflowStore(settings.mlflow_uri, settings.mlflow_artifacts, params.registry.experiment,
                       params.registry.model_name, params.registry.description)


def build_services(settings: Settings, params: Params, *, registry: MlflowStore | None = None,
                   prediction_log: protocols.PredictionLog | None = None,
                   reports: protocols.DriftReports | None = None, data: protocols.ProjectData | None = None,
                   predictions: protocols.PredictionLog | None = None) -> Services:
    """The adapters for this project and params, not yet started; any part given is used as is.
    (`predictions=` is the old name of `prediction_log=`, kept for one release.)"""
    if predictions is not None:
        _renamed("build_services(..., predictions=...)", "build_services(..., prediction_log=...)")
        if prediction_log is not None:
            raise TypeError("build_services: give prediction_log= only (predictions= is its old name)")
        prediction_log = predictions
    use_safe_checksums()  # DVC and s3fs build S3 clients too, whatever registry is given
    return Services(
        registry=mlflow_store(settings, params) if registry is None else registry,
        prediction_log=PartitionedPredictions(ServeSettings().logs(settings)) if prediction_log is None
        else prediction_log,
        reports=(EvidentlyReports() if params.monitoring.report == "evidently" else DriftlineReports())
        if reports is None else reports,
        data=DvcData(settings.root) if data is None else data,
    )


class Project:
    """An open project: its settings, its params, and its services, started when first used."""

    def __init__(self, settings: Settings, params: Params, parts: dict[str, Any]):
        self.settings, self.params = settings, params
        self._parts = parts
        self._services: Services | None = None

    @property
    def services(self) -> Services:
        if self._services is None:
            self._services = build_services(self.settings, self.params, **self._parts).start()
        return self._services

    @property
    def registry(self) -> MlflowStore:
        return self.services.registry

    @property
    def started(self) -> bool:
        return self._services is not None

    def close(self) -> None:
        """Stop the services if this project started them (and only then)."""
        if self._services is not None:
            services, self._services = self._services, None
            services.stop()


@contextlib.contextmanager
def open_project(project_dir: str | Path | None = None, params_path: str | Path = "params.yaml",
                 overrides: list[str] | None = None, *, settings: Settings | None = None, read_code: bool = True,
                 **parts: Any) -> Iterator[Project]:
    """What every flow and command starts from: the settings (DRIFTLINE_*, for `project_dir`), the
    params file under the project with its `KEY=VALUE` overrides (ConfigError names a bad key),
    and the services, built from them with any `parts` given (as `build_services` takes them) and
    started on first use; whatever was started is stopped on the way out, on error too."""
    settings = settings or Settings.for_project(project_dir)
    project = Project(settings, load_params(settings.root / params_path, list(overrides or []), read_code), parts)
    try:
        yield project
    finally:
        project.close()


def _renamed(old: str, new: str) -> None:
    warnings.warn(f"{old} is now {new}; the old name goes in the next release", DeprecationWarning, stacklevel=3)


# Moved to driftline.adapters.protocols (the adapters implement them, and must not import this
# module above them); the old names answer for one release, with a warning.
_MOVED = ("Part", "PredictionLog", "DriftReports", "ProjectData")


def __getattr__(name: str) -> object:
    if name in _MOVED:
        warnings.warn(f"driftline.services.{name} moved to driftline.adapters.protocols.{name}; the old name "
                      "goes in the next release", DeprecationWarning, stacklevel=2)
        return getattr(protocols, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
