"""The parts a flow reaches, each named by a small Protocol: the composition root
(driftline/services.py) builds the default of each, and a caller (a test, or a team with another
log store) may pass its own. They live here, beside the adapters that implement them, so that
nothing under `driftline/adapters/` imports from the layers above it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import pandas as pd

from driftline.config import Params
from driftline.core.monitoring import Assessment

if TYPE_CHECKING:
    from driftline.adapters.dvc_data import Snapshot


@runtime_checkable
class Part(Protocol):
    def start(self) -> object: ...
    def stop(self) -> None: ...


class PredictionLog(Part, Protocol):
    """What the model server logged: the live rows of a window, and the labels fed back."""

    def window(self, since: datetime, last_rows: int | None, p: Params) -> tuple[pd.DataFrame, pd.DataFrame]: ...
    def since(self, first: datetime) -> tuple[pd.DataFrame, pd.DataFrame]: ...
    def past_window(self, first: str, last: str, p: Params) -> pd.DataFrame: ...
    def labels(self, since: datetime) -> pd.DataFrame: ...


class DriftReports(Part, Protocol):
    """The human-readable drift report (HTML) of live rows against the champion's reference."""

    def render(self, rows: pd.DataFrame, reference: pd.DataFrame, p: Params, result: Assessment,
               version: str) -> str: ...


class ProjectData(Part, Protocol):
    """The training table at the project's commit: fetched and checked, then read."""

    def snapshot(self, data_path: str) -> Snapshot: ...
    def read(self, path: Path) -> pd.DataFrame: ...
    def read_version(self, data_path: str, md5: str) -> pd.DataFrame: ...
