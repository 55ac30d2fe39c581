"""Registry faults fail closed, against real processes on loopback: an `mlflow server` on SQLite
stopped (SIGSTOP) at the training run's champion read, its SQLite file locked by a second writer
at that moment, killed (SIGKILL) at the promotion's @champion write; a model server that keeps
answering while the registry is silent. (The drift event's faults: test_drift_event_faults.py.)

An HTTP tap (tests/faults/registry_tools.py) stands between the process under test and the
server: it only forwards, and marks the request at which the fault is injected into the real
server, so the fault lands at the same step every run."""

from __future__ import annotations

import logging

import httpx
import pytest

from driftline.adapters.registry.faults import RegistryUnreachable
from driftline.adapters.registry.store import CHALLENGER, CHAMPION, MlflowStore
from driftline.config import load_params
from tests.faults.registry_tools import (
    FORWARD,
    HttpTap,
    MlflowServer,
    Request,
    SqliteLock,
    cli,
    history_is_consistent,
    said,
)
from tests.integration.conftest import make_project
from tests.mlflow_db import empty_store
from tests.waiting import wait_until

API = "/api/2.0/mlflow"
# Short MLflow HTTP patience in the processes under test, so three attempts take seconds.
FAST_HTTP = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "3", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}


class FaultAt:
    """Inject `fault` when the first request matching `match` arrives (before it goes on), and
    `heal` when the client sends anything else: it gave up on that request and moved on. What
    it moved on to is in `after`."""

    def __init__(self, match, fault, heal):
        self.match, self.fault, self.heal = match, fault, heal
        self.armed, self.hits, self.after = False, 0, []

    def __call__(self, request: Request) -> str:
        if not self.armed:
            return FORWARD
        if self.match(request):
            if self.hits == 0:
                self.fault()
            self.hits += 1
        elif self.hits:
            self.after.append(f"{request.method} {request.path}")
            self.heal()
        return FORWARD


def _champion_read(request: Request) -> bool:
    return request.method == "GET" and request.path.startswith(f"{API}/registered-models/alias")


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A project whose registry is a real `mlflow server`, @champion version 1 trained in process."""
    server = MlflowServer(tmp_path / "mlflow").start()
    monkeypatch.setenv("DRIFTLINE_TRACKING_URI", server.url)
    project = make_project(tmp_path / "proj")
    assert project.train()["version"] == "1"
    yield project, server
    server.close()


def test_training_with_the_registry_stopped_at_the_champion_read_registers_nothing(registry, prefect_url):
    """The team's tracking server goes down while training reads the champion: the run fails as
    'unreachable' and registers nothing, rather than training as if there were no champion."""
    project, server = registry
    store = project.store()
    history = store.history()
    fault = FaultAt(_champion_read, server.pause, server.resume)
    tap = HttpTap(server.port, fault)
    fault.armed = True
    try:
        result = cli(project, prefect_url, tap.url, "train", "--set", "training.seed=11", env=FAST_HTTP)
    finally:
        server.resume()
        tap.close()
    # Before: the read's failure was "no champion", and the run registered version 2 as @champion.
    assert result.returncode == 3, said(result)
    assert f"the model registry at {tap.url} is unreachable: read loan-default@champion failed 3 times" \
        in result.stderr, said(result)
    assert "Nothing was registered" in result.stderr
    assert fault.hits == 3 and fault.after == [], said(result)  # three attempts, then nothing more
    assert store.aliases() == {CHAMPION: "1"} and [v.version for v in store.versions()] == ["1"]
    assert store.history() == history and history_is_consistent(store)


def test_training_with_the_registry_database_locked_at_the_champion_read_registers_nothing(registry, prefect_url):
    """Another process holds the registry database locked when training reads the champion: same outcome."""
    project, server = registry
    store = project.store()
    history = store.history()
    lock: list[SqliteLock] = []
    fault = FaultAt(_champion_read, lambda: lock.append(SqliteLock(server.db)),
                    lambda: [held.release() for held in lock])
    tap = HttpTap(server.port, fault)
    fault.armed = True
    try:
        # The server waits for the lock (SQLite busy_timeout, 20 s) and answers an error; the
        # client must wait longer than that to hear it.
        result = cli(project, prefect_url, tap.url, "train", "--set", "training.seed=11",
                     env={"MLFLOW_HTTP_REQUEST_TIMEOUT": "60", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    finally:
        for held in lock:
            held.release()
        tap.close()
    assert result.returncode == 3, said(result)
    assert "is unreachable: read loan-default@champion failed 3 times" in result.stderr, said(result)
    assert "database is locked" in result.stderr or "503" in result.stderr, said(result)
    assert fault.hits == 3 and fault.after == [], said(result)
    assert store.aliases() == {CHAMPION: "1"} and [v.version for v in store.versions()] == ["1"]
    assert store.history() == history and history_is_consistent(store)


def test_the_embedded_sqlite_store_locked_by_another_writer_is_unreachable_not_absent(tmp_path):
    """On the embedded SQLite store, a lock held by another writer reads as 'unreachable', never 'absent'."""
    root = tmp_path / "state"
    store = MlflowStore(empty_store(root / "mlflow.db"), (root / "artifacts").as_uri(), "faults", "m").start()
    run_id = store.start_run("x", {})
    store.register(f"runs:/{run_id}/model", run_id, {}, CHAMPION, "faults")
    lock = SqliteLock(root / "mlflow.db")
    try:
        with pytest.raises(RegistryUnreachable) as err:
            store.version_by_alias(CHAMPION)  # before: None, "no champion"
    finally:
        lock.release()
    assert "database is locked" in str(err.value) and str(root / "mlflow.db") in str(err.value)
    assert store.version_by_alias(CHAMPION).version == "1"


def _promotion_write(request: Request) -> bool:
    return (request.method == "POST" and request.path == f"{API}/registered-models/alias"
            and request.json().get("alias") == CHAMPION)


def test_a_promotion_whose_registry_is_killed_keeps_one_champion_and_a_consistent_history(registry, prefect_url):
    """The registry dies in the middle of a promotion: afterwards there is exactly one champion and the
    alias history agrees with the aliases."""
    from tests.integration.test_serving import Server

    project, server = registry
    assert project.train("training.seed=7")["version"] == "2"  # @challenger
    store = project.store()
    assert store.aliases() == {CHAMPION: "1", CHALLENGER: "2"} and history_is_consistent(store)
    live = Server(project, project.root / ".driftline")  # the blue-green smoke test asks it
    fault = FaultAt(_promotion_write, server.kill, lambda: None)
    tap = HttpTap(server.port, fault)
    fault.armed = True
    try:
        result = cli(project, prefect_url, tap.url, "deploy", "--strategy", "blue-green",
                     env={**FAST_HTTP, "DRIFTLINE_SERVE_URL": live.url})
        server.start()  # the registry comes back on the same database
        answer = httpx.post(f"{live.url}/predict", json=_records(project, 3), timeout=30)
    finally:
        live.stop()
        tap.close()
    assert fault.hits >= 1, said(result)  # killed at the @champion write, not before
    assert result.returncode == 3, said(result)
    assert f"deploy stopped: the model registry at {tap.url} is unreachable" in result.stderr, said(result)
    aliases = store.aliases()
    assert aliases.get(CHAMPION) in ("1", "2") and history_is_consistent(store), (aliases, store.history())
    assert answer.status_code == 200  # the server kept serving through it


def _records(project, n: int) -> list[dict]:
    from driftline.adapters.serving_client import client_records
    from driftline.core import demo_data, frames

    p = load_params(project.root / "params.yaml")
    return client_records(frames.features(demo_data.generate(n, 5), p.data))


def test_the_model_server_keeps_serving_while_the_registry_does_not_answer(registry, caplog, monkeypatch):
    """The registry stops answering while the model server runs: users keep getting answers from the
    model it has loaded."""
    from tests.integration.test_serving import Server

    project, server = registry
    for key, value in FAST_HTTP.items():
        monkeypatch.setenv(key, value)
    live = Server(project, project.root / ".driftline")
    try:
        assert httpx.get(f"{live.url}/models").json()["champion"] == "1"
        caplog.set_level(logging.ERROR, logger="driftline.serving")
        server.pause()
        wait_until(lambda: _poll_failed(caplog), 120, interval=0.5)
        answers = [httpx.post(f"{live.url}/predict", json=_records(project, 2), timeout=30)
                   for _ in range(5)]
        models = httpx.get(f"{live.url}/models").json()
    finally:
        server.resume()
        live.stop()
    assert _poll_failed(caplog), "the watcher never saw the registry fail"
    assert [a.status_code for a in answers] == [200] * 5 and {a.json()["model_version"] for a in answers} == {"1"}
    assert models["champion"] == "1"


def _poll_failed(caplog) -> bool:
    return any(r.exc_info and isinstance(r.exc_info[1], RegistryUnreachable) for r in caplog.records)
