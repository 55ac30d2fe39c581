"""The server's start-up heap is out of the cyclic collector's reach once it serves: a full
collection walking every import and model object stalled each request in flight (the p99)."""

from __future__ import annotations

import asyncio
import gc

from driftline.serving.loader import Rollout

from .protocols.conftest import App


def test_the_start_up_heap_is_frozen_before_the_first_request(tmp_path, params, monkeypatch):
    app = App(tmp_path, {}, Rollout(None, None), params)
    monkeypatch.setattr(app.app.state.watcher, "start", lambda: None)  # no registry to read here
    gc.unfreeze()
    try:
        async def start_and_stop():
            async with app.app.api.router.lifespan_context(app.app.api):
                return gc.get_freeze_count()

        frozen = asyncio.run(start_and_stop())
        assert frozen > 10_000, f"{frozen} objects frozen at start-up"
    finally:
        gc.unfreeze()
