"""The real model server for hostile-client tests: `driftline serve` (uvicorn) as a subprocess on a
free loopback port, serving a model trained here and registered as @champion in the project's
own MLflow store. Training goes through the library (no Prefect): the server needs only the
registered model, and the module's tests share one server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.conftest import committed, free_port
from tests.mlflow_db import empty_store
from tests.waiting import answers, stop_process, wait_until

REPO = Path(__file__).resolve().parents[2]


def train_champion(root: Path, rows: int = 6000, seed: int = 7) -> str:
    """A project directory holding params.yaml and an MLflow store whose @champion is a model
    trained on demo data; returns its version."""
    from driftline import services
    from driftline.config import Settings, load_params
    from driftline.core import demo_data, frames, training

    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_bytes(committed("params.yaml"))
    p = load_params(root / "params.yaml")
    empty_store(Settings(project_dir=root).state / "mlflow.db")
    with services.open_project(root) as project:
        store = project.registry
        parts = training.split(demo_data.generate(rows, seed), p)
        model = training.train(parts.train, p)
        run_id = store.start_run("faults", {})
        example = frames.features(parts.train.head(5), p.data)
        uri = store.log_model(run_id, model, example, model.predict(example))
        store.finish(run_id)
        return store.register(uri, run_id, {}, "champion", "fault tests").version


@pytest.fixture(scope="module")
def prefect_url(prefect_server) -> Iterator[str]:
    """The worker's Prefect server, for a module whose flows or processes report to it. A killed
    deploy leaves a run that never finishes; whatever the module left is deleted when it ends."""
    from tests.integration.conftest import clear_prefect

    yield prefect_server
    clear_prefect()


@dataclass
class LiveServer:
    root: Path
    url: str
    logs: Path
    proc: subprocess.Popen
    output: Path
    env: dict = field(default_factory=dict)

    def stop(self) -> None:
        stop_process(self.proc)


def launch(root: Path, logs: Path, **settings: str) -> tuple[subprocess.Popen, str, Path]:
    """`driftline serve` in `root` with DRIFTLINE_SERVE_<KEY>=value for each setting; not waited for."""
    port = free_port()
    if "feedback_token" not in settings:  # labels from anyone, as a local experiment takes them
        settings = {**settings, "anonymous_labels": "true"}
    # --host/--port as a user types them; the environment's port is a decoy they must win over.
    env = {**os.environ, "DRIFTLINE_PROJECT_DIR": str(root), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "DRIFTLINE_SERVE_PORT": str(free_port()), "DRIFTLINE_SERVE_LOG_DIR": str(logs),
           **{f"DRIFTLINE_SERVE_{k.upper()}": v for k, v in settings.items()}}
    output = root / f"server-{port}.log"
    with output.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "driftline.app.cli", "serve", "--params", "params.yaml",
                                 "--host", "127.0.0.1", "--port", str(port)],
                                cwd=root, env=env, stdout=sink, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}", output


def start_server(root: Path, name: str, **settings: str) -> LiveServer:
    logs = root / f"logs-{name}"
    proc, url, output = launch(root, logs, **settings)
    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{output.read_text()[-3000:]}")
        return answers(f"{url}/ready")

    if wait_until(up, 120, interval=0.2):
        return LiveServer(root, url, logs, proc, output, settings)
    proc.kill()
    raise RuntimeError(f"server not ready within 120 s:\n{output.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faults") / "proj"
    train_champion(root)
    return root
