"""The container recipe. No Docker daemon here, so it is linted (hadolint, from the dev
dependencies) and read, not built."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def _stages() -> dict[str, list[str]]:
    stages: dict[str, list[str]] = {}
    current = None
    for line in DOCKERFILE.splitlines():
        if m := re.match(r"FROM \S+ AS (\w+)", line):
            current = stages.setdefault(m.group(1), [])
        elif current is not None and line and not line.startswith("#"):
            current.append(line)
    return stages


def test_hadolint_passes():
    hadolint = Path(sys.executable).parent / "hadolint"
    out = subprocess.run([str(hadolint), "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_both_images_run_as_a_non_root_user_from_the_locked_environment():
    stages = _stages()
    assert {"build", "server", "worker"} <= set(stages)
    for target in ("server", "worker"):
        users = [line.split()[1] for line in stages[target] if line.startswith("USER ")]
        assert users and users[-1].split(":")[0] not in ("0", "root"), (target, users)
    assert "uv sync --locked --no-dev" in DOCKERFILE and "COPY pyproject.toml uv.lock" in DOCKERFILE


def test_only_the_server_image_has_a_port_and_a_health_check():
    # A worker listens on nothing: a health check on the server's port would mark it failed forever.
    stages = _stages()
    assert any(line.startswith("HEALTHCHECK") for line in stages["server"])
    assert not any(line.startswith(("HEALTHCHECK", "EXPOSE")) for line in stages["runtime"] + stages["worker"])
    assert "FROM runtime AS worker" in DOCKERFILE


def test_every_package_the_wheel_ships_is_copied_into_the_image():
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"][
        "packages"]
    copied = {line.split()[1].rstrip("/") for line in _stages()["build"] if line.startswith("COPY ")}
    assert set(packages) <= copied, set(packages) - copied


def test_local_state_and_the_environment_stay_out_of_the_build_context():
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".driftline"} <= ignored


def test_both_images_have_the_openmp_runtime_lightgbm_loads():
    # lightgbm's wheel links libgomp.so.1 from the system; the slim base image does not have it.
    runtime = "\n".join(_stages()["runtime"])
    assert "libgomp1" in runtime
    import lightgbm

    libs = Path(lightgbm.__file__).parent / "lib"
    ldd = subprocess.run(["ldd", *map(str, libs.glob("*.so"))], capture_output=True, text=True).stdout
    assert "libgomp.so.1" in ldd  # what the package above provides
