"""A model server restarted while @champion's artifacts cannot be loaded: @previous, loaded beside
it for rollbacks, answers in its place, loudly (/models, /metrics), instead of a 503 to everyone.
Before: the server never became ready (every request 503), with @previous loaded.

A server whose @previous cannot be loaded says so before a rollback needs it (/models, /metrics),
and `driftline rollback` to it exits 5 naming the server that still serves the old version.
Before: nothing reported it, and the rollback "succeeded" without effect."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from driftline import services
from driftline.adapters.registry.store import CHAMPION, PREVIOUS
from driftline.app.traffic import demo_records
from driftline.config import load_params
from tests.faults.conftest import REPO, start_server, train_champion


def _two_versions_with_artifacts_gone(root: Path, gone: str) -> None:
    """Versions 1 (@previous) and 2 (@champion), and `gone`'s artifacts deleted."""
    assert train_champion(root) == "1"
    assert train_champion(root, seed=8) == "2"  # registered as @champion
    with services.open_project(root) as project:
        store = project.registry
        store.move_alias(PREVIOUS, "1", "test: v1 kept for rollbacks", "test")
        assert store.aliases() == {CHAMPION: "2", PREVIOUS: "1"}
        where = Path(store.client.get_model_version_download_uri(store.model_name, gone).removeprefix("file://"))
    assert where.is_dir()
    shutil.rmtree(where)  # the disk lost it, or someone cleaned the artifact store


def test_a_restart_with_the_champions_artifacts_gone_is_answered_by_previous(tmp_path):
    root = tmp_path / "proj"
    _two_versions_with_artifacts_gone(root, "2")

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


def test_a_previous_that_cannot_load_is_reported_and_a_rollback_to_it_exits_5(tmp_path, prefect_url):
    root = tmp_path / "proj"
    _two_versions_with_artifacts_gone(root, "1")
    server = start_server(root, "previous-gone", token="predict-token-for-the-test")
    insider = {"Authorization": "Bearer predict-token-for-the-test"}
    try:
        models = httpx.get(f"{server.url}/models", headers=insider, timeout=10).json()
        assert models["champion"] == "2" and models["previous"] == "1" and models["loaded"] == ["2"], models
        assert "1" in models["errors"] and not models.get("fallback")  # said before any rollback needs it
        scraped = httpx.get(f"{server.url}/metrics", headers=insider, timeout=10).text
        assert 'driftline_version_load_failed{version="1"} 1.0' in scraped

        env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_API_URL": prefect_url,
               "DRIFTLINE_SERVE_URL": server.url, "DRIFTLINE_SERVE_TOKEN": "predict-token-for-the-test"}
        rolled = subprocess.run([sys.executable, "-m", "driftline.app.cli", "rollback", "--reason", "test"],
                                cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert rolled.returncode == 5, rolled.stdout[-2000:] + rolled.stderr[-3000:]
        assert f"{server.url} still serves version 2" in rolled.stderr, rolled.stderr[-3000:]
        assert models["errors"]["1"].split(":")[0] in rolled.stderr  # the load error, named
        answer = httpx.post(f"{server.url}/predict", headers=insider, timeout=10,
                            json=demo_records(load_params(root / "params.yaml"), 1, 5)[0][0])
        assert answer.status_code == 200 and answer.json()["model_version"] == "2"  # still served, not a 503
    finally:
        server.stop()
