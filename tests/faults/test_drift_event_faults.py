"""The drift event, against real processes on loopback: two `driftline monitor` processes racing
on real drift (served, logged traffic) emit one `driftline.drift.detected`, counted on the
Prefect server for this test's own model; an event the Prefect API never receives (its way in
cut between the monitor and the server) leaves no cooldown behind."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import yaml

from driftline.adapters.registry.drift_events import LAST_DRIFT_TAG
from driftline.adapters.registry.tags import DRIFT_DETECTED, FLOW_RUN_TAG
from tests.faults.registry_tools import DROP, FORWARD, HttpTap, MlflowServer, Request, cli, said
from tests.integration.conftest import git, make_project
from tests.waiting import wait_until

API = "/api/2.0/mlflow"


COOLDOWN_S = 36  # monitoring.cooldown_hours=0.01, in _monitor_args

@pytest.fixture(scope="module")
def drifted(tmp_path_factory, prefect_url):
    """A champion serving drifted traffic, logged; two model names (one per test) on one registry."""
    from tests.integration.test_serving import log_drifted_traffic

    root = tmp_path_factory.mktemp("drift")
    server = MlflowServer(root / "mlflow").start()
    names = {"race": f"race-{uuid.uuid4().hex[:8]}", "lost": f"lost-{uuid.uuid4().hex[:8]}"}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DRIFTLINE_TRACKING_URI", server.url)
        project = make_project(root / "proj")
        for name in names.values():
            raw = yaml.safe_load((project.root / "params.yaml").read_text())
            raw["registry"]["model_name"] = name
            (project.root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
            git(project.root, "commit", "-qam", f"model {name}")
            assert project.train()["version"] == "1"
        log_drifted_traffic(project, project.root / ".driftline", 900)  # serves the last one; the log is shared
        # The cooldown counts from the newest version too: let both champions be older than it.
        newest = max(v.created for n in names.values() for v in project.store(n).versions()) / 1000
        time.sleep(max(0.0, newest + COOLDOWN_S + 5 - time.time()))
        yield project, server, names
    server.close()


def _monitor_args(name: str) -> list[str]:
    return ["monitor", "--set", f"registry.model_name={name}", "--set", "monitoring.cooldown_hours=0.01",
            "--window-hours", "2"]


def drift_events(name: str, wait_for_one: float = 60, settle: float = 15) -> list[dict]:
    """The drift events about this test's own model (never the server's newest), once the
    server has persisted what it received (events land asynchronously)."""
    from tests.integration.conftest import prefect_api as api

    def fetch() -> list[dict]:
        return api("POST", "/events/filter", {"filter": {
            "event": {"name": [DRIFT_DETECTED]}, "resource": {"id": [f"driftline.model.{name}"]}},
            "limit": 50})["events"]

    wait_until(fetch, wait_for_one, interval=1)
    time.sleep(settle)
    return fetch()


def test_two_monitors_racing_on_real_drift_emit_one_event(drifted, prefect_url):
    """The hourly monitor and a manual `driftline monitor` see the same drift at once: one event, one retrain."""
    project, server, names = drifted
    name = names["race"]
    arrived: set[str] = set()
    finished: list[int] = []

    def barrier(request: Request) -> str:
        # Both monitors have decided "drift" (their MLflow run is created after the decision):
        # hold each here until the other arrives, so their emits race for real. Each monitor is
        # told apart by its flow run, which its run's tags name: on a slow machine a held request
        # can time out and be retried, and a count of requests took one monitor's retry for the
        # other monitor. (By bearer token, a basic-auth account left in the environment by another
        # test replaced both tokens, and the two monitors counted as one.)
        if request.method == "POST" and request.path == f"{API}/runs/create" \
                and f"monitor-{name}" in request.body.decode(errors="replace"):
            tags = {t["key"]: t["value"] for t in json.loads(request.body).get("tags", [])}
            arrived.add(tags.get(FLOW_RUN_TAG, ""))
            # Never longer than the other monitor lives: one that failed before this point would hold
            # this one here, and its retries after each client timeout, until pytest's timeout hid
            # why. Released, the race is lost and the assertions below say what the other said.
            wait_until(lambda: len(arrived) >= 2 or finished, 300, interval=0.05)
        return FORWARD

    def monitor(i: int):
        try:
            return cli(project, prefect_url, tap.url, *_monitor_args(name), timeout=420)  # under pytest's 900
        finally:
            finished.append(i)

    tap = HttpTap(server.port, barrier)
    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(monitor, range(2)))
    finally:
        tap.close()
    assert len(arrived) == 2 and "" not in arrived, (arrived, [said(r) for r in results])
    assert [r.returncode for r in results] == [0, 0], [said(r) for r in results]
    verdicts = sorted(r.stdout.split("]")[0].split("[")[-1] for r in results)
    # Before: both read "no cooldown" and both emitted.
    assert verdicts == ["cooldown", "drift"], [said(r) for r in results]
    assert len(drift_events(name)) == 1
    assert LAST_DRIFT_TAG in project.store(name).model_tags()


def test_a_drift_event_the_prefect_api_never_receives_sets_no_cooldown(drifted, prefect_url):
    """The drift event is lost on its way to Prefect: no cooldown starts, so the next check tries again."""
    project, server, names = drifted
    name = names["lost"]
    harness = urlsplit(prefect_url)

    def lose_events(request: Request) -> str:
        # The event's way in (POST /events, or the websocket /events/in) is cut, as by a network fault.
        path = request.path.split("?")[0].rstrip("/")
        return DROP if path in ("/api/events", "/api/events/in") else FORWARD

    tap = HttpTap(harness.port, lose_events)
    try:
        result = cli(project, f"{tap.url}{harness.path}", server.url, *_monitor_args(name),
                     env={"PREFECT_CLIENT_MAX_RETRIES": "1"})
    finally:
        tap.close()
    # Before: the tag was set first and the event was lost: drift silenced for cooldown_hours.
    assert LAST_DRIFT_TAG not in project.store(name).model_tags(), said(result)
    assert result.returncode != 0, said(result)
    assert "the event could not be emitted" in result.stderr and "the cooldown was not set" in result.stderr
    assert drift_events(name, wait_for_one=5, settle=5) == []
