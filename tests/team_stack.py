"""`driftline up --profile team` started for a test: a moto S3 server on loopback for the artifacts,
a project whose prefect.yaml the workers deploy, the stack as a child process on free ports, and
its Ctrl-C stop, which must leave nothing running."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import httpx
import psutil

from tests.integration.conftest import REPO, Project, free_port, git, make_project

TOKEN = "team-token"  # with it, a caller's X-Request-ID keys its canary draw
BUCKET = "team-artifacts"
HAS_POSTGRES = Path("/usr/lib/postgresql/15/bin/postgres").exists()
WHY_NO_POSTGRES = "PostgreSQL 15 is installed by `make system-packages` (make test runs it)"


@contextmanager
def moto_s3() -> Iterator[tuple[dict, object]]:
    """A real S3 API on loopback with the artifacts bucket; the environment that reaches it, and a client."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "driftline-test", "AWS_SECRET_ACCESS_KEY": "not-a-secret",
           "AWS_DEFAULT_REGION": "us-east-1", "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
           "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required"}
    client = boto3.client("s3", endpoint_url=env["MLFLOW_S3_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield env, client
    finally:
        server.stop()


@dataclass
class Team:
    project: Project
    env: dict[str, str]
    prefect_port: int
    mlflow_port: int
    pg_port: int
    serve_port: int  # the replicas on this port and the next; staging on the one after
    proc: subprocess.Popen | None = None
    out: str = ""
    started_seconds: float = 0.0
    children: list = field(default_factory=list)
    later: list[str] = field(default_factory=list)  # what it printed after it was up
    reader: threading.Thread | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def tracking(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def replicas(self) -> tuple[int, int]:
        return self.serve_port, self.serve_port + 1

    @property
    def staging_port(self) -> int:
        return self.serve_port + 2

    def _secret(self, pattern: str) -> str:
        return Path(re.search(pattern, self.out).group(1)).read_text().strip()

    @property
    def prefect_auth(self) -> tuple[str, str]:
        """The Prefect API's credentials (user, password), where the stack keeps them."""
        return "driftline", self._secret(r"PREFECT_API_AUTH_STRING, kept in (\S+) ")

    @property
    def mlflow_env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_USERNAME": "driftline",
                "MLFLOW_TRACKING_PASSWORD": self._secret(r"the password in (\S+)\)")}

    @property
    def password(self) -> str:
        """The database password, where the stack says it keeps it (with the data it protects)."""
        return Path(re.search(r"password in (\S+)\)", self.out).group(1)).read_text().strip()

    def start(self) -> Team:
        began = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "driftline.app.cli", "up", "--profile", "team"],
                                     cwd=self.project.root, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        try:
            self.out = self._until("Ctrl-C stops everything", 400)
        except BaseException:
            self.stop()  # a stack that did not come up leaves nothing running either
            raise
        self.started_seconds = time.monotonic() - began
        self.reader = threading.Thread(target=lambda: self.later.extend(self.proc.stdout), daemon=True)
        self.reader.start()
        return self

    def printed(self) -> str:
        """Everything the stack has printed so far."""
        return self.out + "".join(self.later)

    def stop(self, keep_data: bool = False) -> tuple[int, str]:
        """Ctrl-C; the exit code and what it printed while stopping. Kills what is left on a timeout.
        As root the database lives outside the project, and is removed unless `keep_data`."""
        try:
            self.children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:  # it exited already (a stack that did not come up)
            self.children = []
        mark = len(self.later)
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(180)
        except subprocess.TimeoutExpired:  # leave nothing running for the next test, Postgres included
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                child.kill()
            self.proc.kill()
            raise
        finally:
            # The account `store` put in this process's environment goes with the stack: left there,
            # it overrode the bearer tokens of every later test's MLflow client in this worker (a
            # fault test told its monitors apart by token, and waited on one for ever).
            for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
                os.environ.pop(key, None)
            data = re.search(r"\(data: (/var/lib/driftline-postgres/\w+)/data;", self.out)
            if data and not keep_data:
                shutil.rmtree(data.group(1), ignore_errors=True)  # as root the data lives outside the project
        if self.reader is None:
            return code, self.proc.stdout.read()
        self.reader.join(30)
        return code, "".join(self.later[mark:])

    def _until(self, needle: str, seconds: float) -> str:
        lines: list[str] = []
        deadline = time.monotonic() + seconds
        while not any(needle in line for line in lines):
            line = self.proc.stdout.readline()
            assert line or self.proc.poll() is None, "".join(lines)
            lines.append(line)
            assert time.monotonic() < deadline, "".join(lines)
        return "".join(lines)

    def run(self, deployment: str, *overrides: str) -> str:
        """`prefect deployment run <deployment> --watch`, as CI runs it; the flow run's id. Fails the
        test unless the run completed."""
        args = ["--params", json.dumps({"overrides": list(overrides)})] if overrides else []
        done = subprocess.run([sys.executable, "-m", "prefect", "deployment", "run", deployment, *args, "--watch"],
                              env={**self.env, "PREFECT_API_URL": self.api,
                                   "PREFECT_API_AUTH_STRING": ":".join(self.prefect_auth)},
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        return re.search(r"UUID: ([0-9a-f-]{36})", done.stdout).group(1)

    def ci(self, report: Path, auth: bool = True) -> tuple[int, str]:
        """scripts/training-ci.sh as CI runs it (the workflow hands it PREFECT_API_AUTH_STRING from
        its secrets); its exit code and output. The gate table goes to `report`."""
        creds = {"PREFECT_API_AUTH_STRING": ":".join(self.prefect_auth)} if auth else {}
        env = {k: v for k, v in self.env.items() if k != "PREFECT_API_AUTH_STRING"}
        done = subprocess.run(["bash", str(REPO / "scripts" / "training-ci.sh")], cwd=REPO, capture_output=True,
                              text=True, timeout=900, env={
                                  **env, **creds, "PREFECT_API_URL": self.api, "WATCH_TIMEOUT": "600",
                                  "PREFECT": f"{sys.executable} -m prefect", "PYTHON": sys.executable,
                                  "REPORT_FILE": str(report)})
        return done.returncode, done.stdout + done.stderr

    def store(self):
        """The registry as every part of the stack reaches it: through the tracking server."""
        from driftline.adapters.registry.store import MlflowStore

        os.environ.update(self.mlflow_env)  # MLflow's client reads the basic-auth account from the environment
        return MlflowStore(self.tracking, "mlflow-artifacts:/driftline", "driftline", "loan-default").start()

    def api_call(self, method: str, path: str, body: dict | None = None):
        """The team's Prefect API with its credentials (and CSRF tokens, as its own client sends them)."""
        from driftline.adapters.prefect_api import PrefectApi

        return PrefectApi(self.api, auth_string=":".join(self.prefect_auth)).call(method, path, body)

    def start_run(self, deployment: str) -> str:
        """A run of `deployment` ("flow/deployment") for the workers, not waited for; its id."""
        found = self.api_call("GET", f"/deployments/name/{deployment}")["id"]
        return self.api_call("POST", f"/deployments/{found}/create_flow_run", {})["id"]

    def flow_run(self, run_id: str) -> dict:
        return self.api_call("GET", f"/flow_runs/{run_id}")

    def events(self, name: str, run_id: str) -> list[dict]:
        """Events `name` of one flow run: a worker's and a flow's own events relate to the run,
        Prefect's heartbeats are about it (their resource)."""
        for where in ("related", "resource"):
            found = self.api_call("POST", "/events/filter", {"filter": {
                "event": {"name": [name]}, where: {"id": [f"prefect.flow-run.{run_id}"]}}, "limit": 10})["events"]
            if found:
                return found
        return []

    def models(self, port: int) -> dict:
        """A replica's /models as the deploy flows read it: the rollout, with the metrics token."""
        token = self._secret(r"/metrics with the metrics token \((\S+)\)")
        return httpx.get(f"http://127.0.0.1:{port}/models", headers={"authorization": f"Bearer {token}"},
                         timeout=5).json()


def team(root: Path, s3_env: dict, **extra: str) -> Team:
    """The project (its prefect.yaml and flows committed) and the stack's environment, not started."""
    project = make_project(root)
    (project.root / "prefect.yaml").write_bytes(subprocess.run(["git", "show", "HEAD:prefect.yaml"], cwd=REPO,
                                                               check=True, capture_output=True).stdout)
    (project.root / "flows").symlink_to(REPO / "flows")  # the deployments' entrypoints, as in the repo
    git(project.root, "add", "prefect.yaml", "flows")
    git(project.root, "commit", "-qm", "deployments")
    t = Team(project, {}, free_port(), free_port(), free_port(), _three_free_ports())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "DRIFTLINE_"))}
    env.update(s3_env, DRIFTLINE_PROJECT_DIR=str(project.root),
               DRIFTLINE_PREFECT_UI_URL=f"http://127.0.0.1:{t.prefect_port}",
               DRIFTLINE_MLFLOW_UI_URL=f"http://127.0.0.1:{t.mlflow_port}", DRIFTLINE_TEAM_POSTGRES_PORT=str(t.pg_port),
               DRIFTLINE_SERVE_PORT=str(t.serve_port), DRIFTLINE_SERVE_POLL_SECONDS="1", DRIFTLINE_SERVE_TOKEN=TOKEN,
               DRIFTLINE_TEAM_ARTIFACTS=f"s3://{BUCKET}/mlflow", PREFECT_WORKER_QUERY_SECONDS="2",
               PREFECT_HOME=str(root.parent / "prefect-home"), **extra)
    t.env = env
    return t


def _three_free_ports() -> int:
    """A port with the next two free too: two replicas and the staging server. Chosen below the
    kernel's ephemeral range (32768-60999 here): a port picked there was free when asked, but any
    other test's client connection or bind-to-0 could take the next one before the stack bound it
    (measured: "port 60252 ... already in use" in a full run)."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 32000 - 3)
        if all(_free(port + i) for i in range(3)):
            return port


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0
