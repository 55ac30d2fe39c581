"""Model trust is explicit: training marks what it registers `driftline.gates=passed`; a version
without the mark (registered some other way, or its tag taken off) is refused by the deploy flow
and by `driftline deploy` unless forced, and a forced rollout says "forced" in the alias history
and carries a `driftline.forced` tag."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from driftline.adapters.registry import trust
from driftline.adapters.registry.store import CHALLENGER, CHAMPION
from flows.rollout import rollout
from tests.integration.conftest import REPO
from tests.integration.test_serving import Server
from tests.waiting import wait_until


def test_training_marks_its_versions_and_an_unmarked_one_deploys_only_when_forced(project, monkeypatch):
    from prefect.settings import PREFECT_API_URL

    project.train()
    assert project.train("training.seed=7")["version"] == "2"
    store = project.store()
    assert all(trust.passed(v.tags) for v in store.versions())  # training's own mark on both
    store.client.delete_model_version_tag(store.model_name, "2", trust.GATES_TAG)  # as if registered by hand
    before = (store.aliases(), store.history())

    refused = subprocess.run(
        [sys.executable, "-m", "driftline.app.cli", "deploy", "--version", "2", "--strategy", "blue-green",
         "--set", "rollout.max_wait_seconds=30"],
        cwd=project.root, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO), "PREFECT_API_URL": PREFECT_API_URL.value()})
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "not marked driftline.gates=passed" in refused.stderr and "--force" in refused.stderr
    with pytest.raises(trust.Untrusted):
        rollout(version="2", strategy="blue-green", project_dir=str(project.root))
    assert (store.aliases(), store.history()) == before  # nothing moved, nothing recorded

    server = Server(project, project.root / ".driftline")
    monkeypatch.setenv("DRIFTLINE_SERVE_URL", server.url)
    try:
        result = rollout(version="2", strategy="blue-green", project_dir=str(project.root), force=True,
                              overrides=["rollout.max_wait_seconds=60"])
        assert wait_until(lambda: httpx.get(f"{server.url}/models").json()["champion"] == "2", 15)
    finally:
        server.stop()
    assert result["status"] == "promoted"
    assert store.aliases().get(CHAMPION) == "2" and CHALLENGER not in store.aliases()
    assert "flow run" in store.version("2").tags[trust.FORCED_TAG]
    promoted = [h for h in store.history() if h["alias"] == CHAMPION and h["to"] == "2"]
    assert len(promoted) == 1 and "forced" in promoted[0]["reason"]
