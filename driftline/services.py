"""Composition root: the one place that turns settings into adapters.

Flows, the CLI, the demo and the model server call `build_services`; none of them builds an
adapter itself. Each part is named by a small Protocol (driftline/adapters/protocols.py), so a
caller (a test, or a team with another log store) passes its own implementation of any part,
`build_services(settings, params, predictions=...)`, and the code it reaches cannot tell the
difference. Nothing connects until `start()`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path

import pandas as pd

from driftline.adapters import dvc_data, evidently_drift, predlog, protocols
from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.s3 import use_safe_checksums
from driftline.config import Params, ServeSettings, Settings
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
        return predlog.read_live_window(self.location, since, last_rows, p)

    def since(self, first: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Every column of the predictions and the feedback logged from `first` on (by hour)."""
        return (predlog.read_log(predlog.join(self.location, "predictions"), first),
                predlog.read_log(predlog.join(self.location, "feedback"), first))


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


@dataclass
class Services:
    """Every adapter a flow reaches. `registry` is also the tracking store and the audit log."""

    registry: MlflowStore
    predictions: protocols.PredictionLog
    reports: protocols.DriftReports
    data: protocols.ProjectData

    def parts(self) -> list[protocols.Part]:
        return [getattr(self, f.name) for f in fields(self)]

    def start(self) -> Services:
        for part in self.parts():
            part.start()
        return self

    def stop(self) -> None:
        for part in reversed(self.parts()):
            part.stop()

    def __enter__(self) -> Services:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def mlflow_store(settings: Settings, params: Params) -> MlflowStore:
    # MLflow and DVC build their own S3 clients, which read the checksum mode from the
    # environment: set it where every flow and command builds its adapters, before any client
    # exists (a worker runs flows without passing through the CLI).
    use_safe_checksums()
    settings.state.mkdir(parents=True, exist_ok=True)
    return MlflowStore(settings.mlflow_uri, settings.mlflow_artifacts, params.registry.experiment,
                       params.registry.model_name, params.registry.description)


def build_services(settings: Settings, params: Params, *, registry: MlflowStore | None = None,
                   predictions: protocols.PredictionLog | None = None, reports: protocols.DriftReports | None = None,
                   data: protocols.ProjectData | None = None) -> Services:
    """The adapters for this project and params, not yet started; any part given is used as is."""
    use_safe_checksums()  # DVC and s3fs build S3 clients too, whatever registry is given
    return Services(
        registry=mlflow_store(settings, params) if registry is None else registry,
        predictions=PartitionedPredictions(ServeSettings().logs(settings)) if predictions is None else predictions,
        reports=(EvidentlyReports() if params.monitoring.report == "evidently" else DriftlineReports())
        if reports is None else reports,
        data=DvcData(settings.root) if data is None else data,
    )


# Moved to driftline.adapters.protocols (the adapters implement them, and must not import this
# module above them); the old names answer for one release, with a warning.
_MOVED = ("Part", "PredictionLog", "DriftReports", "ProjectData")


def __getattr__(name: str) -> object:
    if name in _MOVED:
        warnings.warn(f"driftline.services.{name} moved to driftline.adapters.protocols.{name}; the old name "
                      "goes in the next release", DeprecationWarning, stacklevel=2)
        return getattr(protocols, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
