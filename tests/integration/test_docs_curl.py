"""The `curl` the serving guide shows, run as written against `driftline serve` (started as a user
starts it) serving a freshly trained champion: it answers what the guide says it answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.docs_blocks import console_blocks, mismatch
from tests.integration.conftest import free_port, make_project
from tests.waiting import wait_until

DOCUMENTED = "http://127.0.0.1:8080"


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.timeout(600)
def test_the_serving_guides_curl_answers_as_shown(tmp_path):
    curls = [b for b in console_blocks() if b.command.startswith("curl ")]
    assert [b.page for b in curls] == ["guides/serving.md"]
    shown = curls[0]
    assert DOCUMENTED in shown.command

    project = make_project(tmp_path / "proj")
    assert project.train()["version"] == "1"
    port = free_port()
    env = {**os.environ, "DRIFTLINE_PROJECT_DIR": str(project.root), "DRIFTLINE_SERVE_PORT": str(port),
           "DRIFTLINE_SERVE_POLL_SECONDS": "0.5"}
    server = subprocess.Popen([sys.executable, "-m", "driftline.app.cli", "serve"], cwd=project.root, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _ready(url), 120), "the model server never became ready"
        done = subprocess.run(["bash", "-c", shown.command.replace(DOCUMENTED, url)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        problem = mismatch(shown.output, done.stdout)
        assert problem is None, problem
        answer = json.loads(done.stdout)
        assert answer["model_version"] == "1" and answer["variant"] == "champion"
        assert answer["predictions"][0] in (0, 1)
        assert abs(sum(answer["probabilities"][0].values()) - 1) < 1e-9
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
