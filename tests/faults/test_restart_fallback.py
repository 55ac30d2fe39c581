"""A model server restarted while @champion's artifacts cannot be loaded: @previous, loaded beside
it for rollbacks, answers in its place, loudly (/models, /metrics), instead of a 503 to everyone.
Before: the server never became ready (every request 503), with @previous loaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from driftline import services
from driftline.adapters.registry.store import CHAMPION, PREVIOUS
from driftline.app.traffic import demo_records
from driftline.config import load_params
from tests.faults.conftest import start_server, train_champion


def test_a_restart_with_the_champions_artifacts_gone_is_answered_by_previous(tmp_path):
    root = tmp_path / "proj"
    assert train_champion(root) == "1"
    assert train_champion(root, seed=8) == "2"  # registered as @champion
    with services.open_project(root) as project:
        store = project.registry
        store.move_alias(PREVIOUS, "1", "test: v1 kept for rollbacks", "test")
        assert store.aliases() == {CHAMPION: "2", PREVIOUS: "1"}
        where = Path(store.client.get_model_version_download_uri(store.model_name, "2").removeprefix("file://"))
    assert where.is_dir()
    shutil.rmtree(where)  # the disk lost it, or someone cleaned the artifact store

    server = start_server(root, "fallback")
    try:
        models = httpx.get(f"{server.url}/models", timeout=10).json()
        assert models["champion"] == "1" and "2" in models["errors"]
        assert models["fallback"].startswith("@champion (version 2) did not load")
        assert "@previous (version 1) answers in its place" in models["fallback"]
        record = demo_records(load_params(root / "params.yaml"), 1, 5)[0][0]
        answer = httpx.post(f"{server.url}/predict", json=record, timeout=10)
        assert answer.status_code == 200 and answer.json()["model_version"] == "1", answer.text
        scraped = httpx.get(f"{server.url}/metrics", timeout=10).text
        assert "driftline_champion_fallback 1.0" in scraped
        assert 'driftline_version_load_failed{version="2"} 1.0' in scraped
    finally:
        server.stop()
