"""Composition root: the one place that turns settings into adapters."""

from __future__ import annotations

from driftline.adapters.s3 import use_safe_checksums
from driftline.adapters.tracking import MlflowStore
from driftline.config import Params, Settings


def mlflow_store(settings: Settings, params: Params) -> MlflowStore:
    # MLflow and DVC build their own S3 clients, which read the checksum mode from the
    # environment: set it where every flow and command builds its adapters, before any client
    # exists (a worker runs flows without passing through the CLI).
    use_safe_checksums()
    settings.state.mkdir(parents=True, exist_ok=True)
    return MlflowStore(settings.mlflow_uri, settings.mlflow_artifacts, params.registry.experiment,
                       params.registry.model_name)
