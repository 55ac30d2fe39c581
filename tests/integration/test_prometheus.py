"""ops/prometheus and ops/grafana against a real Prometheus (the Debian package, installed by
`make system-packages`) scraping a live model server over HTTP.

The Prometheus under test runs the committed rules file unchanged; its config is the committed
one with a 1 s scrape and evaluation interval (15 s would make the test wait minutes) and the
live server as its only target."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from driftline.adapters.registry.drift_events import CHECK_TAG, record_check
from driftline.adapters.registry.lease import LEASE_TAG, ROLLOUT, Lease
from tests.integration.conftest import free_port, make_project
from tests.integration.test_serving import Server, _records
from tests.waiting import stop_process, wait_until

OPS = Path(__file__).resolve().parents[2] / "ops"
ENV = "itest"  # the `environment` label this test's target carries
METRICS_TOKEN = "prometheus-scrapes-with-this"  # the server's DRIFTLINE_SERVE_METRICS_TOKEN
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("promtool") is None,
                                reason="prometheus is installed by `make system-packages` (make test runs it)")


class Prometheus:
    def __init__(self, root: Path, target: str):
        root.mkdir(parents=True)
        config = yaml.safe_load((OPS / "prometheus" / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        (root / "metrics-token").write_text(METRICS_TOKEN)
        config["scrape_configs"][0]["authorization"]["credentials_file"] = str(root / "metrics-token")
        (root / "prometheus.yml").write_text(yaml.safe_dump(config))
        shutil.copy(OPS / "prometheus" / "rules.yml", root / "rules.yml")
        (root / "targets").mkdir()
        (root / "targets" / "itest.yml").write_text(yaml.safe_dump(
            [{"targets": [target], "labels": {"environment": ENV, "replica": "1"}}]))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = open(root / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
             f"--web.listen-address={self.url.removeprefix('http://')}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_until(self._ready, 60):
            self.stop()
            raise AssertionError((root / "prometheus.log").read_text()[-2000:])

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, path: str, **params) -> dict:
        body = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def alerts(self, name: str) -> list[dict]:
        return [a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name]

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("prometheus")
    project = make_project(root / "proj")
    assert project.train()["version"] == "1"
    server = Server(project, root / "logs", metrics_token=METRICS_TOKEN)
    try:
        assert httpx.get(f"{server.url}/metrics").status_code == 401  # an anonymous scrape sees nothing
        prometheus = Prometheus(root / "prom", f"127.0.0.1:{server.port}")
        try:
            # Service discovery hands targets to the scrapers after a few seconds' throttle.
            assert wait_until(lambda: prometheus.value(f'up{{environment="{ENV}"}}') == 1.0, 60)
            yield project, server, prometheus
        finally:
            prometheus.stop()
    finally:
        server.stop()


def send(server: Server, n: int) -> None:
    """`n` requests spread over about 3 s, so that several scrapes see the counter grow (a rate
    needs two samples, and a series' first sample does not count as growth)."""
    for i, record in enumerate(_records(n)):
        assert httpx.post(f"{server.url}/predict", json=record).status_code == 200
        time.sleep(3 / n if i < n - 1 else 0)


def test_promtool_accepts_the_config_and_the_rules_pass_their_unit_tests():
    check = subprocess.run(["promtool", "check", "config", str(OPS / "prometheus" / "prometheus.yml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    rules = len(re.findall(r"^\s*- (?:alert|record): ", (OPS / "prometheus" / "rules.yml").read_text(), re.M))
    assert f"SUCCESS: {rules} rules found" in check.stdout + check.stderr  # the config loads every rule
    # Each alert fires for its cause and not for a neighbour's (rules_test.yml says which).
    tests = subprocess.run(["promtool", "test", "rules", "rules_test.yml"], cwd=OPS / "prometheus",
                           capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_prometheus_scrapes_every_request_and_computes_the_request_rate(stack):
    _, server, prom = stack
    ok = f'sum(driftline_requests_total{{environment="{ENV}",variant="champion",version="1",status="ok"}})'
    served = f"{server.url}/metrics"

    def server_count() -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in httpx.get(served, headers=SCRAPER).text.splitlines()
                   if line.startswith('driftline_requests_total{status="ok",variant="champion",version="1"}'))

    before = server_count()
    assert wait_until(lambda: (prom.value(ok) or 0.0) == before, 30)
    send(server, 25)
    assert wait_until(lambda: prom.value(ok) == before + 25, 30), prom.value(ok)
    assert prom.value(f'up{{job="driftline-serving",environment="{ENV}"}}') == 1.0
    assert (prom.value(f'sum(rate(driftline_requests_total{{environment="{ENV}"}}[30s]))') or 0.0) > 0
    # The recording rule the dashboard and the alerts read, evaluated by Prometheus from the rules file.
    rule = f'driftline:requests:rate1m{{environment="{ENV}",variant="champion",version="1",status="ok"}}'
    assert wait_until(lambda: (prom.value(rule) or 0.0) > 0, 30)
    assert prom.value(f'driftline:error_ratio:rate5m{{environment="{ENV}",variant="champion"}}') == 0.0


def test_every_rule_loads_and_evaluates_without_error(stack):
    _, _, prom = stack
    written = [r.get("record") or r["alert"] for g in yaml.safe_load((OPS / "prometheus" / "rules.yml").read_text())
               ["groups"] for r in g["rules"]]

    def evaluated() -> list[dict]:
        rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
        return rules if all(r["lastEvaluation"] > "2000" for r in rules) else []

    assert wait_until(lambda: evaluated(), 30)
    rules = evaluated()
    assert sorted(r["name"] for r in rules) == sorted(written)
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


def test_every_dashboard_query_runs_and_the_traffic_panels_have_data(stack):
    _, server, prom = stack
    send(server, 10)
    dashboard = json.loads((OPS / "grafana" / "driftline.json").read_text())
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "environment"} <= variables
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in dashboard["panels"])
    # These show a rollout lease, a drift check and refused requests, which this test does not
    # make (the next test makes the first two): they may be empty. Every other panel has data.
    may_be_empty = {"Rollout lease held for", "Since the last drift check", "Refused requests by path and status"}
    empty = {}
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            expr = target["expr"].replace("$environment", ENV)
            assert "$" not in expr, expr
            prom.query(expr)  # it parses and runs (`api` asserts success)
            if panel["title"] not in may_be_empty and not wait_until(lambda e=expr: prom.query(e), 20):
                empty[panel["title"]] = expr
    assert empty == {}


def test_a_lease_held_two_hours_and_a_stale_drift_check_reach_the_alerts(stack):
    project, server, prom = stack
    store = project.store()
    lease = Lease(store, ROLLOUT, "test_prometheus", 600)
    assert lease.acquire()
    try:
        taken = time.time() - 2 * 3600  # as if the rollout had been stuck for two hours
        store.client.set_registered_model_tag(f"{store.model_name}.lease.{ROLLOUT}", f"{LEASE_TAG}.acquired_at",
                                              f"{taken:.3f}")
        store.set_model_tags({CHECK_TAG: f"{time.time() - 4 * 3600:.3f}"})
        lease_age = f'time() - driftline_rollout_lease_acquired_timestamp_seconds{{environment="{ENV}"}}'
        assert wait_until(lambda: (prom.value(lease_age) or 0) > 7100, 30)
        # Both alerts are pending (their `for:` is 5 minutes), each for its own cause, in this environment.
        for name in ("DriftlineRolloutLeaseHeldTooLong", "DriftlineDriftCheckStale"):
            assert wait_until(lambda n=name: [a["state"] for a in prom.alerts(n)] == ["pending"], 30), name
            assert prom.alerts(name)[0]["labels"]["environment"] == ENV
        assert "held for 2h" in prom.alerts("DriftlineRolloutLeaseHeldTooLong")[0]["annotations"]["summary"]
        assert "for 4h" in prom.alerts("DriftlineDriftCheckStale")[0]["annotations"]["summary"]
    finally:
        lease.release()
    record_check(store)  # what the drift monitor writes when it completes a check
    assert wait_until(lambda: prom.alerts("DriftlineDriftCheckStale") == [], 30)
    assert wait_until(lambda: prom.alerts("DriftlineRolloutLeaseHeldTooLong") == [], 30)
    scraped = httpx.get(f"{server.url}/metrics", headers=SCRAPER).text
    assert "driftline_rollout_lease_acquired_timestamp_seconds" not in scraped
