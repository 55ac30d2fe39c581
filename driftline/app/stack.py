"""The local stack as child processes: Prefect server + UI, MLflow UI, the served deployments
and the model server. Each runs in its own process group, so stopping the stack also stops
the flow runs the deployments started; nothing is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from driftline.adapters.prefect_api import PrefectApi
from driftline.app.credentials import LABEL_TOKEN, METRICS_TOKEN, serve_credentials
from driftline.app.leftovers import end_leftovers
from driftline.app.lifecycle import STATE_FILE, StackError, claim, stop_part, stopping_signals, take_lock
from driftline.config import ServeSettings, Settings
from driftline.waiting import WaitTimeout, poll

# `mlflow server` starts a job runner and seven huey consumer processes (MLflow's GenAI jobs), each
# importing MLflow: half a minute of CPU on two cores before the UI answers, for jobs driftline never
# submits. Off unless the user's environment turns them on.
JOBS = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"


@dataclass
class Part:
    name: str
    process: subprocess.Popen
    stop_signal: int = signal.SIGTERM  # the first signal `stop` sends (SIGKILL follows if it is ignored)
    # Parts of a kind (the team's workers) of which one may die while another goes on: its flow
    # runs are marked Crashed, and the others take the next runs. The stack stops when the last goes.
    kind: str | None = None
    # Started again when it exits while the stack runs (the team's PostgreSQL: a crash, or an
    # administrator's restart, must not take the whole stack down); what `_spawn` started it with.
    restart: bool = False
    command: tuple[list[str], dict[str, str], Path] | None = None


@dataclass
class Stack:
    settings: Settings
    params_path: Path
    overrides: list[str] = field(default_factory=list)
    mlflow_ui: bool = True
    echo: Callable[[str], None] = print
    parts: list[Part] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    prefect_auth: str | None = None  # the team's Prefect API auth string, for this process's own calls
    credentials: dict[str, Path] = field(default_factory=dict)  # the model server's tokens' files (credentials.py)
    own_prefect: bool = False  # this stack started the Prefect server (not a team's or a test's)

    def _environment(self) -> dict[str, str]:
        """What every part is started with."""
        env = {**os.environ, "DRIFTLINE_PROJECT_DIR": str(self.settings.root)}
        # Training runs here beside a busy model server: a tree learner with a thread per core
        # then waits on the one the server holds (a 52,000-row fit took 19 s instead of 3 on 2
        # cores). Leave the server a core, unless the user chose.
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) - 1)))
        return env

    def start(self) -> Stack:
        self.env = self._environment()
        self._take_state()
        try:
            self._prefect()
            if self.mlflow_ui:
                self._mlflow()
            self._deployments()
            self._model_server()
        except BaseException:
            self.stop()
            raise
        return self

    def _take_state(self) -> None:
        """One stack per state directory: a second `driftline up` (or demo) on it says so and exits,
        and `driftline down` finds what this one started (stack.json, beside the lock it holds)."""
        self.settings.state.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = take_lock(self.settings.state)
        self._record()
        self.credentials = serve_credentials(self.settings.state, self.env)

    def _record(self) -> None:
        record = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "parts": [{"name": p.name, "pid": p.process.pid} for p in self.parts]}
        path = self.settings.state / STATE_FILE
        path.with_suffix(".tmp").write_text(json.dumps(record))
        path.with_suffix(".tmp").replace(path)

    def _spawn(self, name: str, args: list[str], log: str, env: dict[str, str] | None = None,
               listens: str | None = None) -> Part:
        """Start a part. `listens`: the address it will bind, which must be free: a port already
        answered by a process this stack did not start is an error before any work, naming the port
        and the process holding it (else every flow would talk to a stranger's server)."""
        if listens:
            claim(listens, name)
        command = (args, {**self.env, **(env or {})}, self.settings.state / "logs" / log)
        part = Part(name, self._popen(command), command=command)
        self.parts.append(part)
        self._record()
        return part

    def _popen(self, command: tuple[list[str], dict[str, str], Path]) -> subprocess.Popen:
        """What `_spawn` starts, and what `wait` starts again for a part that restarts."""
        args, env, log = command
        with open(log, "ab") as out:  # the child keeps its own copy
            return subprocess.Popen(args, env=env, cwd=self.settings.root, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def _wait(self, part: Part, ready: Callable[[], bool], what: str, seconds: float) -> None:
        """Until `ready()`; a part that exits or takes too long stops the stack, saying which."""
        def up() -> bool:
            # "Did my process exit?" before "does the port answer?": a stranger's server on the
            # port answers as well as ours would.
            if part.process.poll() is not None:
                raise StackError(f"the {part.name} exited with code {part.process.returncode}; see "
                                 f"{self.settings.state / 'logs'}")
            return ready()

        try:
            poll(up, seconds, 0.5)
        except WaitTimeout:
            raise StackError(f"the {part.name} did not {what} within {seconds:.0f} s") from None

    def _prefect(self, server_env: dict[str, str] | None = None) -> None:
        """The Prefect server, its API restricted to its own UI's origin (CORS) with CSRF protection
        on: a page of another site open in the same browser could otherwise start runs (measured:
        a preflight from http://evil.example was answered `access-control-allow-origin: *`).
        `server_env`: what only the server gets (its database URL, its auth string)."""
        (self.settings.state / "logs").mkdir(parents=True, exist_ok=True)
        api = os.environ.get("PREFECT_API_URL")
        if api:  # a team server (or a test's): use it, start none
            self.env["PREFECT_API_URL"] = api
            self.echo(f"Prefect API: {api} (PREFECT_API_URL)")
            return
        ui = self.settings.prefect_ui_url.rstrip("/")
        host, port = ui.split("://", 1)[1].split(":")
        guarded = {"PREFECT_SERVER_CORS_ALLOWED_ORIGINS": ui, "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true",
                   **(server_env or {})}
        part = self._spawn("Prefect server", [sys.executable, "-m", "prefect", "server", "start", "--host", host,
                                              "--port", port], "prefect-server.log", guarded, listens=ui)
        self.env["PREFECT_API_URL"] = f"{ui}/api"
        os.environ["PREFECT_API_URL"] = f"{ui}/api"  # flows this process runs use it too
        self._wait(part, lambda: _answers(f"{ui}/api/health"), f"answer {ui}/api/health", 180)
        self.own_prefect = True  # its database's runs of our deployments are ours to end (leftovers.py)
        self.echo(f"Prefect UI: {ui}")

    def _mlflow(self) -> None:  # the UI for runs and the registry; driftline's own processes read the store
        ui = self.settings.mlflow_ui_url.rstrip("/")
        host, port = ui.split("://", 1)[1].split(":")
        part = self._spawn("MLflow UI", [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                                         self.settings.mlflow_uri, "--default-artifact-root",
                                         self.settings.mlflow_artifacts, "--host", host, "--port", port,
                                         "--workers", "1"], "mlflow-ui.log", {JOBS: self.env.get(JOBS, "false")},
                           listens=ui)
        self._wait(part, lambda: _answers(f"{ui}/health"), f"answer {ui}/health", 120)
        self.echo(f"MLflow UI: {ui}")

    def _deployments(self) -> None:
        names = {"training-ci", "scheduled-retrain", "retrain-on-drift", "drift-monitor", "canary", "auto-deploy"}
        if self.own_prefect:
            for line in end_leftovers(self.api(), names):
                self.echo(f"left by a stopped stack: {line}")
        args = [sys.executable, "-m", "deployments.serve", "--params", str(self.params_path)]
        for item in self.overrides:
            args += ["--set", item]
        part = self._spawn("deployments", args, "deployments.log")
        self._wait(part, lambda: names <= set(self.deployment_ids()), "register", 180)
        self.echo("Deployments served: " + ", ".join(sorted(names)))

    def _model_server(self) -> None:
        serve = ServeSettings()
        url = serve.address
        part = self._spawn("model server", [sys.executable, "-m", "driftline.app.cli", "serve", "--params",
                                            str(self.params_path)], "model-server.log",
                           listens=f"http://{serve.host}:{serve.port}")
        self._wait(part, lambda: _answers(f"{url}/health"), f"answer {url}/health", 120)
        self.echo(f"Model server: {url} (POST /predict; GET /health, /ready, /models, /metrics)")
        self.echo_credentials()

    def echo_credentials(self) -> None:
        """Where the model server's label and metrics tokens are, never the tokens themselves."""
        label, metrics = (self.credentials.get(name) for name in (LABEL_TOKEN, METRICS_TOKEN))
        self.echo(f"Labels: POST /feedback with the label token ({label or LABEL_TOKEN}); the rollout on /models "
                  f"and /metrics with the metrics token ({metrics or METRICS_TOKEN})")

    def api(self) -> PrefectApi:
        return PrefectApi(self.env["PREFECT_API_URL"], timeout=10, auth_string=self.prefect_auth)

    def deployment_ids(self) -> dict[str, str]:
        """Served deployments by name, read from the Prefect API."""
        try:
            return self.api().deployment_ids()
        except httpx.HTTPError:
            return {}

    def flow_runs(self, deployment: str, since: str = "") -> list[dict]:
        """The deployment's flow runs created since `since` (ISO text, UTC), oldest first."""
        ident = self.deployment_ids().get(deployment)
        if ident is None:
            return []
        found = self.api().flow_runs([ident], "EXPECTED_START_TIME_DESC")
        return sorted((r for r in found if r["created"] >= since), key=lambda r: r["created"])

    def wait_for_runs(self, deployment: str, count: int, seconds: float, since: str = "") -> list[dict]:
        """Wait until the deployment has `count` runs since `since`, all in a final state."""
        def finished(runs: list[dict]) -> list[dict]:
            return [r for r in runs if r["state"]["type"] in ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")]

        try:
            return poll(lambda: self.flow_runs(deployment, since), seconds, 1,
                        done=lambda runs: len(runs) == len(finished(runs)) >= count)
        except WaitTimeout as err:
            states = ", ".join(r["state"]["name"] for r in err.last) or "none"
            raise StackError(f"{deployment}: {len(finished(err.last))} of {count} runs finished within "
                             f"{seconds:.0f} s (runs: {states})") from None

    def stop(self) -> None:
        """Stop every part, newest first, each within 10 s of its signal (2 s once hurried); then
        say what was stopped, and let the state directory go."""
        stopping_signals()
        stopped = []
        for part in reversed(self.parts):
            began = time.monotonic()
            stop_part(part.process, part.stop_signal)
            self.echo(f"stopped the {part.name} ({time.monotonic() - began:.1f} s)")
            stopped.append(part.name)
        self.parts.clear()
        lock = getattr(self, "_lock", None)
        if lock is not None:
            (self.settings.state / STATE_FILE).unlink(missing_ok=True)
            lock.close()  # releases the lock
            self._lock = None
        if stopped:
            self.echo(f"stopped everything this stack started: the {', the '.join(stopped)}")

    def wait(self) -> None:
        """Until Ctrl-C, a part dies, or the last part of a kind (a worker) does."""
        told: set[str] = set()
        restarts: dict[str, list[float]] = {}
        while True:
            for part in self.parts:
                if part.restart and part.process.poll() is not None:
                    recent = [t for t in restarts.get(part.name, []) if t > time.monotonic() - 300]
                    if len(recent) >= 5:  # failing at once, again and again: stop the stack, saying so
                        raise StackError(f"the {part.name} exited 5 times within 5 minutes; see "
                                         f"{self.settings.state / 'logs'}")
                    restarts[part.name] = [*recent, time.monotonic()]
                    code = part.process.returncode
                    part.process = self._popen(part.command)
                    self._record()
                    self.echo(f"the {part.name} exited (code {code}); started it again")
            dead = [p for p in self.parts if p.process.poll() is not None]
            fatal = [p.name for p in dead if p.kind is None or all(
                q.process.poll() is not None for q in self.parts if q.kind == p.kind)]
            if fatal:
                raise StackError(f"{', '.join(fatal)} stopped; see {self.settings.state / 'logs'}")
            for p in dead:
                if p.name not in told:
                    told.add(p.name)
                    left = sum(q.process.poll() is None for q in self.parts if q.kind == p.kind)
                    self.echo(f"the {p.name} stopped (exit code {p.process.returncode}); {left} {p.kind}(s) go on")
            time.sleep(1)


def _answers(probe: str) -> bool:
    try:
        return httpx.get(probe, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


