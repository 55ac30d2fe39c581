"""`driftline up`: every part answers, the deployments are registered, and Ctrl-C stops every
process it started, the served deployments' runner included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from tests.integration.conftest import clear_prefect, free_port, make_project, prefect_leftovers

SERVED = ["training-ci", "scheduled-retrain", "retrain-on-drift", "drift-monitor", "canary", "auto-deploy"]


@pytest.mark.timeout(600)
def test_up_starts_the_stack_and_ctrl_c_leaves_nothing_behind(tmp_path):
    from prefect.settings import PREFECT_API_URL

    project = make_project(tmp_path / "proj")
    project.train()
    port, ui_port = free_port(), free_port()
    env = {**os.environ, "DRIFTLINE_PROJECT_DIR": str(project.root), "DRIFTLINE_SERVE_PORT": str(port),
           "DRIFTLINE_MLFLOW_UI_URL": f"http://127.0.0.1:{ui_port}", "PREFECT_API_URL": PREFECT_API_URL.value()}
    up = subprocess.Popen([sys.executable, "-m", "driftline.app.cli", "up"], cwd=project.root, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 400
    while not any("Ctrl-C stops everything" in line for line in lines):
        line = up.stdout.readline()
        assert line or up.poll() is None, "".join(lines)
        lines.append(line)
        assert time.monotonic() < deadline, "".join(lines)
    out = "".join(lines)
    assert f"MLflow UI: http://127.0.0.1:{ui_port}" in out and f"Model server: http://127.0.0.1:{port}" in out
    assert "Deployments served: auto-deploy, canary, drift-monitor, retrain-on-drift" in out
    # The module started with no deployment on the server (conftest clears each module's), so these
    # are the ones `up` served, not names an earlier test left behind.
    assert sorted(prefect_leftovers()["deployments"]) == sorted(SERVED)
    assert httpx.get(f"http://127.0.0.1:{ui_port}/health", timeout=5).status_code == 200
    assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).json()["champion"] == "1"
    started = psutil.Process(up.pid).children(recursive=True)
    assert len(started) >= 3
    # The MLflow UI without MLflow's job runner and its huey consumers (seven processes for GenAI jobs).
    assert not [c for c in map(_command, started) if "huey" in c or "_job_runner" in c]

    up.send_signal(signal.SIGINT)  # Ctrl-C
    # Each part gets 10 s to stop before it is killed; a served flow run may be under way.
    code = up.wait(150)
    rest = up.stdout.read()

    assert code == 0, rest
    assert "stopped the model server" in rest and "stopped the deployments" in rest
    _gone, alive = psutil.wait_procs(started, timeout=30)
    assert alive == [], [p.cmdline() for p in alive]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    clear_prefect()  # served deployments outlive the runner that served them


def _command(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:  # it ended since the listing
        return ""
