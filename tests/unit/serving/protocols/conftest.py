"""The protocols' tests drive `create_app`'s own ASGI app in-process (httpx's ASGI transport, no
socket, no lifespan): the watcher is handed its model set, and the batcher and the logs are
started here. Models 1 and 2 are the demo model trained on 1,500 rows with seeds 42 and 7."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pandas as pd
import pytest

from driftline.adapters.predlog_reader import read_log
from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.serving_client import client_records
from driftline.config import ServeSettings
from driftline.core import demo_data, frames, training
from driftline.core.features import datetime_inputs
from driftline.serving.app import create_app
from driftline.serving.ids import RequestIds
from driftline.serving.loader import Loaded, ModelSet, Rollout

TOKEN = "a-token-for-the-tests"


@pytest.fixture(scope="package")
def models(params) -> dict:
    parts = training.split(demo_data.generate(1500, 11), params)
    example = frames.features(parts.holdout.head(5), params.data)
    columns = {f.name: "double" if f.type == "numeric" else "string" for f in params.data.features}
    seven = params.model_copy(update={"training": params.training.model_copy(update={"seed": 7})})
    out = {}
    for version, p in (("1", params), ("2", seven)):
        model = training.train(parts.train, p)
        out[version] = Loaded(version, model, columns, example, True, training.known_categories(model),
                              datetime_inputs(model))
    frame = frames.features(parts.holdout.head(20), params.data)
    return {**out, "frame": frame, "records": client_records(frame)}


class App:
    """`create_app` over `models` under `rollout`; `run(scenario)` calls `scenario(client)` with the
    batcher and both logs running, and `logged()` reads back what the log holds."""

    def __init__(self, root: Path, models: dict[str, Loaded], rollout: Rollout, params, **settings):
        self.root = root
        store = MlflowStore(f"sqlite:///{root}/unused.db", str(root), "unit", "loan-default")
        settings.setdefault("anonymous_labels", "feedback_token" not in settings)
        self.app = create_app(store, ServeSettings(log_dir=root, **settings), root, RequestIds(b"k" * 32, 3600),
                              params.data.features)
        self.app.state.watcher.current = ModelSet(rollout, models)

    def run(self, scenario):
        state = self.app.state

        async def wrapped():
            state.batcher.start()
            try:
                transport = httpx.ASGITransport(self.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://driftline") as client:
                    return await scenario(client)
            finally:
                await state.batcher.stop()

        state.predictions.start()
        state.feedback.start()  # /feedback answers once its labels are written
        try:
            return asyncio.run(wrapped())
        finally:
            state.predictions.stop()
            state.feedback.stop()

    def logged(self) -> pd.DataFrame:
        return read_log(self.root / "predictions")

    def count(self, variant: str, version: str, status: str = "ok") -> float:
        return self.app.state.server.metrics.registry.get_sample_value(
            "driftline_requests_total", {"variant": variant, "version": version, "status": status}) or 0.0

    def refused(self, path: str, status: int) -> float:
        return self.app.state.server.metrics.registry.get_sample_value(
            "driftline_refused_requests_total", {"path": path, "status": str(status)}) or 0.0


@pytest.fixture
def make_app(tmp_path, models, params):
    """`make_app(rollout, **settings)`: an App serving the rollout's versions (version 1 alone by default)."""
    made = []

    def make(rollout: Rollout | None = None, **settings) -> App:
        rollout = rollout or Rollout("1", None)
        versions = [v for v in (rollout.champion, rollout.challenger) if v]
        made.append(App(tmp_path / f"app-{len(made)}", {v: models[v] for v in versions}, rollout, params, **settings))
        return made[-1]
    return make
