"""Composition root: the one place that turns settings into adapters."""

from __future__ import annotations

from driftline.adapters.tracking import MlflowStore
from driftline.config import Params, Settings


def mlflow_store(settings: Settings, params: Params) -> MlflowStore:
    settings.state.mkdir(parents=True, exist_ok=True)
    return MlflowStore(settings.mlflow_uri, settings.mlflow_artifacts, params.registry.experiment,
                       params.registry.model_name)
