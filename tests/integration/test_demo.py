"""`driftline demo` end to end, as a user runs it: its own processes, the real server on a
loopback port, live traffic, a canary and a rollback through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from driftline.tracking import CHAMPION, PREVIOUS
from tests.integration.conftest import free_port, make_project


@pytest.mark.timeout(900)
def test_the_demo_serves_rolls_out_by_canary_and_rolls_back(tmp_path):
    from prefect.settings import PREFECT_API_URL

    project = make_project(tmp_path / "proj")
    port = free_port()
    env = {**os.environ, "DRIFTLINE_PROJECT_DIR": str(project.root), "DRIFTLINE_SERVE_PORT": str(port),
           "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run([sys.executable, "-m", "driftline.cli", "demo", "--no-keep-serving"], cwd=project.root,
                          env=env, capture_output=True, text=True, timeout=840)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    for step in ("1. The first champion", "4. Canary", "5. Rollback from the CLI", "6. Every alias change"):
        assert step in out
    assert "promoted version 2 to @champion; @previous is version 1" in out
    assert "@champion moved from version 2 back to version 1" in out
    assert "none failed" in out and f"curl -s http://127.0.0.1:{port}/predict" in out
    aliases = project.store().aliases()
    assert aliases[CHAMPION] == "1" and aliases[PREVIOUS] == "2"
    with pytest.raises(httpx.ConnectError):  # --no-keep-serving: the server is gone
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
