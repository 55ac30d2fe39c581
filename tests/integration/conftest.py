"""Real services for integration tests: one Prefect server per session, and a real git+DVC
project (with its own MLflow SQLite store) per test or per module."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from driftline.adapters import dvc_data
from driftline.adapters.prefect_api import PAGE, PrefectApi
from driftline.adapters.registry.store import MlflowStore
from driftline.config import Settings, apply_overrides
from driftline.core import demo_data
from tests.mlflow_db import empty_store
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
ROWS = 6000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def committed(name: str) -> bytes:
    """A file as committed at HEAD, not as the working tree has it: `make demo` lands new data
    (and a user edits params.yaml) in the working tree, and a test means the project as shipped."""
    return subprocess.run(["git", "show", f"HEAD:{name}"], cwd=REPO, check=True, capture_output=True).stdout


@dataclass
class Project:
    root: Path

    @property
    def settings(self) -> Settings:
        return Settings(project_dir=self.root)

    def store(self, model_name: str = "loan-default") -> MlflowStore:
        s = self.settings
        return MlflowStore(s.mlflow_uri, s.mlflow_artifacts, "driftline", model_name).start()

    def write_data(self, frame: pd.DataFrame, commit: bool = True) -> str:
        frame.to_parquet(self.root / "data" / "loans.parquet", index=False)
        dvc_file = dvc_data.add(self.root, "data")
        dvc_data.push(self.root, dvc_file)
        if commit:
            git(self.root, "add", "data.dvc")
            git(self.root, "commit", "-qm", "data", "--allow-empty")
        return dvc_data.tracked_md5(dvc_file)

    def commit_params(self, message: str, *overrides: str) -> None:
        """`KEY=VALUE` overrides written into params.yaml and committed, as a pull request would."""
        import yaml

        path = self.root / "params.yaml"
        raw = apply_overrides(yaml.safe_load(path.read_text()), list(overrides))
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        git(self.root, "commit", "-qam", message)

    def train(self, *overrides: str, reason: str = "test", params: str = "params.yaml") -> dict:
        return self.train_state(*overrides, reason=reason, params=params).result()

    def train_state(self, *overrides: str, reason: str = "test", params: str = "params.yaml"):
        """The training run's final state: its flow run id scopes what a test reads back."""
        from flows.training import training_pipeline

        return training_pipeline(params_path=params, overrides=list(overrides), reason=reason,
                                 project_dir=str(self.root), return_state=True)


def make_project(root: Path, rows: int = ROWS, seed: int = 7) -> Project:
    """A real git repository with DVC, a local directory remote and the demo data pushed."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    for name in ("params.yaml", "dvc.yaml"):
        (root / name).write_bytes(committed(name))
    (root / "data").mkdir()
    dvc_data.init(root)
    dvc_data.set_local_remote(root, root.parent / f"{root.name}-remote")
    project = Project(root)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    project.write_data(demo_data.generate(rows, seed))
    empty_store(project.settings.state / "mlflow.db")  # untracked, like the store a first run makes
    return project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "proj")


def prefect_api(method: str, path: str, body: dict | None = None):
    """Plain HTTP to the session's Prefect API (driftline/adapters/prefect_api.py says why)."""
    return session_api().call(method, path, body)


def session_api() -> PrefectApi:
    from prefect.settings import PREFECT_API_URL

    return PrefectApi(PREFECT_API_URL.value(), busy_retries=4)


UNFINISHED = ["SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"]


def prefect_leftovers() -> dict[str, list[str]]:
    """What a module can leave on the session's Prefect server for the next one: deployments (and
    their triggers, which fire on the next module's events), automations, runs not yet finished."""
    return {
        "deployments": [d["name"] for d in prefect_api("POST", "/deployments/filter", PAGE)],
        "automations": [a["name"] for a in prefect_api("POST", "/automations/filter", PAGE)],
        "unfinished runs": [r["name"] for r in prefect_api("POST", "/flow_runs/filter", {
            **PAGE, "flow_runs": {"state": {"type": {"any_": UNFINISHED}}}})],
    }


def clear_prefect() -> None:
    """Delete every deployment, automation and unfinished run on the session's server."""
    for d in prefect_api("POST", "/deployments/filter", PAGE):
        prefect_api("DELETE", f"/deployments/{d['id']}")
    for a in prefect_api("POST", "/automations/filter", PAGE):
        prefect_api("DELETE", f"/automations/{a['id']}")
    for r in prefect_api("POST", "/flow_runs/filter", {**PAGE, "flow_runs": {"state": {"type": {"any_": UNFINISHED}}}}):
        prefect_api("DELETE", f"/flow_runs/{r['id']}")


@pytest.fixture(scope="module", autouse=True)
def no_prefect_leftovers(prefect_server):
    """Fails the module that leaves Prefect state behind (after clearing it, so the next module
    starts clean): a served deployment's trigger outliving its module ran a leftover retraining
    inside a later test's project."""
    yield
    left = prefect_leftovers()
    clear_prefect()
    assert not any(left.values()), f"this module left Prefect state on the shared server: {left}"


def flow_run_events(name: str, flow_run_id: str, timeout: float = 30) -> list[dict]:
    """Events called `name` emitted inside one flow run (Prefect relates them to the run), waiting
    for them to land: scoped to the test's own run, never the newest on the shared server."""
    return wait_until(lambda: prefect_api("POST", "/events/filter", {"filter": {
        "event": {"name": [name]}, "related": {"id": [f"prefect.flow-run.{flow_run_id}"]}}, "limit": 50})["events"],
        timeout, interval=0.5)


def run_artifact(key: str, flow_run_id: str) -> str:
    """The artifact `key` that one flow run created."""
    found = session_api().artifacts(key=key, flow_run_id=flow_run_id, limit=1)
    assert found, f"flow run {flow_run_id} made no artifact {key!r}"
    return found[0]["data"]


def deployment_runs(deployment_name: str, since: str = "") -> list[dict]:
    """Flow runs of the deployments with this name created since `since` (ISO text), oldest first."""
    ids = [d["id"] for d in prefect_api("POST", "/deployments/filter", PAGE) if d["name"] == deployment_name]
    runs = session_api().flow_runs(ids)
    return [r for r in runs if r["created"] >= since]
