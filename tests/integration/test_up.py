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
from tests.waiting import wait_until

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


# -- starting and stopping like a service manager (issue 36) -----------------------------------


class Up:
    """`driftline up` (or the demo) as a child process on free ports, its output read line by line."""

    def __init__(self, root, *args: str, own_prefect: bool = False, command: str = "up", **env: str):
        from prefect.settings import PREFECT_API_URL

        self.ports = {"serve": free_port(), "ui": free_port(), "prefect": free_port()}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "DRIFTLINE_"))}
        self.env.update({"DRIFTLINE_PROJECT_DIR": str(root), "DRIFTLINE_SERVE_PORT": str(self.ports["serve"]),
                         "DRIFTLINE_MLFLOW_UI_URL": f"http://127.0.0.1:{self.ports['ui']}",
                         "DRIFTLINE_PREFECT_UI_URL": f"http://127.0.0.1:{self.ports['prefect']}", **env})
        if not own_prefect:
            self.env["PREFECT_API_URL"] = PREFECT_API_URL.value()
        self.root = root
        self.proc = subprocess.Popen([sys.executable, "-m", "driftline.app.cli", command, *args], cwd=root,
                                     env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []

    def until(self, needle: str, seconds: float = 400) -> str:
        deadline = time.monotonic() + seconds
        while not any(needle in line for line in self.lines):
            line = self.proc.stdout.readline()
            assert line or self.proc.poll() is None, "".join(self.lines)
            self.lines.append(line)
            assert time.monotonic() < deadline, "".join(self.lines)
        return "".join(self.lines)

    def processes(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def finish(self, seconds: float = 150) -> tuple[int, str]:
        code = self.proc.wait(seconds)
        return code, "".join(self.lines) + self.proc.stdout.read()


def _sessions_gone(started: list[psutil.Process]) -> list[str]:
    """Processes still alive in the sessions the stack's parts had (each part is a session leader)."""
    sessions = {os.getsid(p.pid) for p in started if p.is_running()} | {p.pid for p in started}
    alive = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getsid(proc.pid) in sessions:
                alive.append(" ".join(proc.info["cmdline"] or []))
        except (ProcessLookupError, PermissionError):
            continue
    return alive


def _stop_times(out: str) -> dict[str, float]:
    import re

    return {m.group(1): float(m.group(2)) for m in re.finditer(r"stopped the (.+?) \((\d+\.\d) s\)", out)}


@pytest.mark.timeout(600)
def test_two_ctrl_c_in_a_row_still_stop_every_process_up_started(tmp_path):
    project = make_project(tmp_path / "proj")
    up = Up(project.root, own_prefect=True)
    up.until("Ctrl-C stops everything")
    started = up.processes()
    assert len(started) >= 4
    # Its Prefect API answers its own UI's origin only, and a change needs a CSRF token.
    api, ui = f"http://127.0.0.1:{up.ports['prefect']}/api", f"http://127.0.0.1:{up.ports['prefect']}"
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    evil = httpx.options(f"{api}/flow_runs/filter", headers={"Origin": "http://evil.example", **preflight})
    assert evil.headers.get("access-control-allow-origin") is None, dict(evil.headers)
    own = httpx.options(f"{api}/flow_runs/filter", headers={"Origin": ui, **preflight})
    assert own.headers.get("access-control-allow-origin") == ui, dict(own.headers)
    assert httpx.post(f"{api}/flow_runs/filter", json={}).status_code == 403  # no CSRF token
    up.proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    up.proc.send_signal(signal.SIGINT)  # Ctrl-C again while it stops: it may hurry, never abandon
    code, out = up.finish()
    assert code == 0, out
    _gone, alive = psutil.wait_procs(started, timeout=30)
    assert alive == [], [_command(p) for p in alive]
    assert _sessions_gone(started) == []
    last = out.strip().splitlines()[-1]
    assert last == ("stopped everything this stack started: the model server, the deployments, the MLflow UI, "
                    "the Prefect server"), out
    assert all(seconds <= 10 for seconds in _stop_times(out).values()), _stop_times(out)
    clear_prefect()


def test_a_port_held_by_another_process_stops_up_before_any_work(tmp_path):
    project = make_project(tmp_path / "proj")
    port = free_port()
    stranger = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: _bound(port), 20)
        began = time.monotonic()
        up = Up(project.root, own_prefect=True, DRIFTLINE_PREFECT_UI_URL=f"http://127.0.0.1:{port}")
        code, out = up.finish(60)
        assert code == 1 and time.monotonic() - began < 30, out
        assert f"port {port} (127.0.0.1), where the Prefect server would listen, is already in use by pid " \
               f"{stranger.pid}" in out and "http.server" in out, out
        assert not _bound(up.ports["ui"]) and not _bound(up.ports["serve"])  # nothing else was started
    finally:
        stranger.kill()
        stranger.wait(10)


@pytest.mark.timeout(600)
def test_one_stack_per_state_directory_and_down_stops_it_from_elsewhere(tmp_path):
    project = make_project(tmp_path / "proj")
    first = Up(project.root)
    first.until("Ctrl-C stops everything")
    started = first.processes()
    second = Up(project.root)
    code, out = second.finish(60)
    assert code == 1, out
    assert f"a stack is already running from {project.root / '.driftline'} (pid {first.proc.pid}" in out, out
    assert "driftline down" in out
    down = subprocess.run([sys.executable, "-m", "driftline.app.cli", "down"], cwd=tmp_path, env=first.env,
                          capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"stopping the stack of pid {first.proc.pid}" in down.stdout
    code, out = first.finish(60)
    assert code == 0 and "stopped everything this stack started" in out, out
    _gone, alive = psutil.wait_procs(started, timeout=30)
    assert alive == [], [_command(p) for p in alive]
    assert not (project.root / ".driftline" / "stack.json").exists()
    clear_prefect()


@pytest.mark.timeout(600)
def test_down_stops_the_parts_a_killed_stack_left_behind(tmp_path):
    project = make_project(tmp_path / "proj")
    up = Up(project.root)
    up.until("Ctrl-C stops everything")
    started = up.processes()
    up.proc.kill()  # no handler runs: its parts live on in their own sessions
    up.proc.wait(30)
    assert all(p.is_running() for p in started)  # the parts outlived it
    down = subprocess.run([sys.executable, "-m", "driftline.app.cli", "down"], cwd=tmp_path, env=up.env,
                          capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "left by a stack whose process is gone" in down.stdout and "the model server" in down.stdout
    _gone, alive = psutil.wait_procs(started, timeout=30)
    assert alive == [], [_command(p) for p in alive]
    clear_prefect()


@pytest.mark.timeout(900)
def test_two_ctrl_c_to_the_demo_stop_every_process_of_its_stack(tmp_path):
    project = make_project(tmp_path / "proj")
    demo = Up(project.root, "--no-keep-serving", own_prefect=True, command="demo")
    demo.until("Model server: ")
    started = demo.processes()
    demo.proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    demo.proc.send_signal(signal.SIGINT)
    _code, out = demo.finish(180)
    _gone, alive = psutil.wait_procs(started, timeout=30)
    assert alive == [], [_command(p) for p in alive]
    assert _sessions_gone(started) == []
    assert "stopped everything this stack started" in out.strip().splitlines()[-1], out
    clear_prefect()


def _bound(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
