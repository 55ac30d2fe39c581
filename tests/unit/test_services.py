"""The composition root builds the adapters, and only building them changes the process."""

from __future__ import annotations

import importlib
import os

from driftline import services
from driftline.adapters.s3 import CHECKSUM_ENV
from driftline.config import Settings


def test_importing_the_flows_changes_nothing_and_building_the_store_sets_the_s3_checksum_mode(
        monkeypatch, tmp_path, params):
    for key in CHECKSUM_ENV:
        monkeypatch.delenv(key, raising=False)
    importlib.reload(importlib.import_module("flows"))
    assert not any(key in os.environ for key in CHECKSUM_ENV)

    store = services.mlflow_store(Settings(project_dir=tmp_path), params)
    assert {key: os.environ[key] for key in CHECKSUM_ENV} == CHECKSUM_ENV
    assert store.model_name == params.registry.model_name and (tmp_path / ".driftline").is_dir()
