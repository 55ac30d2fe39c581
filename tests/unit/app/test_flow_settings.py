"""`flow_settings`: a flow the commands run starts no heartbeat thread unless heartbeats are
configured, and keeps the configured frequency when they are (the team profile's crash detection
needs them). Each case runs in a fresh interpreter: Prefect reads its settings at import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
VARIABLE = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"

# What the flow engine asks before starting its heartbeat thread (None: no thread), outside and
# inside flow_settings.
PROBE = """
from prefect import flow
from prefect.flow_engine import FlowRunEngine
from driftline.app.cli_common import flow_settings

@flow
def probe():
    pass

print(FlowRunEngine(flow=probe).heartbeat_seconds)
with flow_settings():
    print(FlowRunEngine(flow=probe).heartbeat_seconds)
print(FlowRunEngine(flow=probe).heartbeat_seconds)
"""


def _heartbeats(env: dict[str, str], cwd: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE], env={**env, "PYTHONPATH": str(REPO)}, cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The environment without the variable, with a Prefect home (and profile) of its own."""
    out = {k: v for k, v in os.environ.items() if k != VARIABLE}
    out["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    return out


def test_heartbeats_are_off_inside_when_nothing_configures_them(env, tmp_path):
    # Prefect's own default sends them (every 180 s); only inside flow_settings is there no thread.
    assert _heartbeats(env, tmp_path) == ["180", "None", "180"]


def test_a_frequency_from_the_environment_is_kept(env, tmp_path):
    assert _heartbeats({**env, VARIABLE: "30"}, tmp_path) == ["30", "30", "30"]


def test_a_frequency_from_prefect_toml_is_kept(env, tmp_path):
    (tmp_path / "prefect.toml").write_text("[flows]\nheartbeat_frequency = 180\n")  # Prefect's default, set
    assert _heartbeats(env, tmp_path) == ["180", "180", "180"]
