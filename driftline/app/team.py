"""`driftline up --profile team`: the services a team shares, each its own process with its log
under <state>/logs, stopped together by Ctrl-C:

- PostgreSQL (Debian's `postgresql-15`, which `make system-packages` installs): the database of
  the Prefect server and of MLflow. Data under <state>/team/postgres; as root, PostgreSQL (which
  refuses to run as root) runs as the `postgres` user with its data in a directory it owns under
  /var/lib/driftline-postgres. Loopback only, with a password made once and kept 0600 in
  <state>/team/postgres-password. Set
  DRIFTLINE_TEAM_DATABASE_URL to use a managed server instead (databases `prefect` and `mlflow`,
  created if missing).
- the Prefect server on it (unless PREFECT_API_URL names one);
- `mlflow server` on it, serving artifacts from DRIFTLINE_TEAM_ARTIFACTS (an s3:// URL, or a
  directory; <state>/team/artifacts by default) through its proxy; every component reaches it at
  DRIFTLINE_TRACKING_URI (unless that is already set to a tracking server, which is then used);
- the process work pool `driftline-process`, the deployments of prefect.yaml (`python -m
  deployments.deploy --all`: `prefect deploy --all` with a 3.8.8 bug worked around), the webhook
  notifications when DRIFTLINE_NOTIFY_WEBHOOK_URL is set, and DRIFTLINE_TEAM_WORKERS (2)
  `prefect worker start` processes that run the deployments;
- DRIFTLINE_TEAM_REPLICAS (2) production model servers, on DRIFTLINE_SERVE_PORT and the ports after it,
  and the staging server (`--role staging`: @challenger alone) on the port after those, whose
  address the workers' rollouts get as DRIFTLINE_STAGING_URL.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from driftline.app.stack import Stack, StackError, _answers
from driftline.app.team_postgres import (
    PG_BIN,
    Postgres,
    connects,
    create_databases,
    driver_url,
    has_user,
    hide_password,
    mlflow_auth_config,
    root_data_dir,
    secret,
)
from driftline.config import ServeSettings

POOL = "driftline-process"


class TeamSettings(BaseSettings):
    """Every field reads `DRIFTLINE_TEAM_<NAME>` from the environment."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_TEAM_", frozen=True, extra="ignore")

    database_url: str | None = Field(default=None, description="postgresql://user:password@host:port of a "
                                     "managed server; unset: start PostgreSQL here")
    postgres_port: int = 5433  # not 5432: a machine's own PostgreSQL usually has it
    artifacts: str | None = Field(default=None, description="Where `mlflow server` keeps artifacts (s3://... or "
                                  "a directory); unset: <state>/team/artifacts")
    workers: int = Field(default=2, ge=1)
    replicas: int = Field(default=2, ge=1)


class TeamStack(Stack):
    team: TeamSettings | None = None
    # The secrets of the control plane, each handed only to the parts that use them: the Prefect
    # API's auth string (its server, the workers and the setup commands) and MLflow's basic-auth
    # account (its server, the workers and the model servers).
    prefect_client: dict[str, str] | None = None
    mlflow_client: dict[str, str] | None = None

    def start(self) -> TeamStack:
        self.team = self.team or TeamSettings()
        self.env = self._environment()
        (self.settings.state / "logs").mkdir(parents=True, exist_ok=True)
        self._take_state()
        try:
            pg = self._postgres()
            self._prefect_on(pg)
            self._tracking_server(pg)
            # The staging server's address, for the rollouts the workers run (rollout.staging).
            self.env.setdefault("DRIFTLINE_STAGING_URL", f"http://127.0.0.1:{self._staging_port}")
            # The production replicas, which a promotion or a rollback on the workers checks switched.
            base = ServeSettings().port
            self.env.setdefault("DRIFTLINE_SERVE_REPLICAS",
                                ",".join(f"http://127.0.0.1:{base + i}" for i in range(self.team.replicas)))
            self._work_pool()
            self._replicas()
            self.echo_credentials()
        except BaseException:
            self.stop()
            raise
        return self

    # -- PostgreSQL ----------------------------------------------------------------------
    def _postgres(self) -> Postgres:
        self._data: Path | None = None
        if self.team.database_url:
            pg = Postgres(self.team.database_url.rstrip("/"))
            self.echo(f"PostgreSQL: {hide_password(pg.url)} (DRIFTLINE_TEAM_DATABASE_URL)")
        else:
            pg = self._start_postgres()
        create_databases(pg)
        return pg

    def _secret_path(self, name: str) -> Path:
        """Where a control-plane secret is kept: 0600 beside the database it opens (in the team state
        directory with a managed database)."""
        home = self._data.parent if self._data and os.geteuid() == 0 else self.settings.state / "team"
        return home / name

    def _secret(self, name: str, locked: Path | None = None, what: str = "") -> str:
        return secret(self._secret_path(name), locked, what=what)

    def _start_postgres(self) -> Postgres:
        if not (PG_BIN / "postgres").exists():
            raise StackError(f"PostgreSQL 15 is not installed ({PG_BIN}): `make system-packages` installs it")
        as_root = os.geteuid() == 0
        data = root_data_dir(self.settings.state) if as_root else self.settings.state / "team" / "postgres"
        run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
        self._data = data
        secret_path = data.parent / "password" if as_root else self.settings.state / "team" / "postgres-password"
        password = secret(secret_path, data if (data / "PG_VERSION").exists() else None,
                          legacy=self.settings.state / "team" / "postgres-password")
        if not (data / "PG_VERSION").exists():
            data.parent.mkdir(parents=True, exist_ok=True)
            # A password, not trust: any local user could otherwise connect as the superuser and
            # rewrite the registry the servers follow. initdb reads it from a file only its user can read.
            pwfile = data.parent / ".initdb-password"
            pwfile.write_text(password)
            pwfile.chmod(0o600)
            if as_root:
                shutil.chown(pwfile, "postgres", "postgres")
            try:
                with open(self.settings.state / "logs" / "postgres.log", "ab") as log:
                    subprocess.run([*run_as, str(PG_BIN / "initdb"), "-D", str(data), "-U", "driftline",
                                    "--auth=scram-sha-256", f"--pwfile={pwfile}", "--encoding=UTF8"], check=True,
                                   stdout=log, stderr=subprocess.STDOUT)
            finally:
                pwfile.unlink(missing_ok=True)
        port = self.team.postgres_port
        part = self._spawn("PostgreSQL", [*run_as, str(PG_BIN / "postgres"), "-D", str(data), "-h", "127.0.0.1",
                                          "-p", str(port), "-c", "unix_socket_directories="], "postgres.log",
                           listens=f"http://127.0.0.1:{port}")
        part.stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for every client to leave
        part.restart = True  # the servers on it reconnect; the stack goes on
        pg = Postgres(f"postgresql://driftline:{quote(password, safe='')}@127.0.0.1:{port}")
        self._wait(part, lambda: connects(pg), f"accept connections on 127.0.0.1:{port}", 60)
        self.echo(f"PostgreSQL: {hide_password(pg.url)} (data: {data}; password in {secret_path})")
        return pg

    # -- Prefect and MLflow on it --------------------------------------------------------
    def _prefect_on(self, pg: Postgres) -> None:
        # The database URL (with its password) and the auth string go to the Prefect server alone;
        # its clients (the workers, the setup commands, this process) get the auth string.
        auth = f"driftline:{self._secret('prefect-auth')}"
        self.prefect_client = {"PREFECT_API_AUTH_STRING": auth}
        self.prefect_auth = auth
        self._prefect({"PREFECT_API_DATABASE_CONNECTION_URL": driver_url(pg, "prefect", "asyncpg"),
                       "PREFECT_SERVER_API_AUTH_STRING": auth})
        self.echo(f"Prefect API: its clients need PREFECT_API_AUTH_STRING, kept in {self._secret_path('prefect-auth')} "
                  "(as driftline:<that file>)")

    def _tracking_server(self, pg: Postgres) -> None:
        given = self.env.get("DRIFTLINE_TRACKING_URI", "")
        if given.startswith(("http://", "https://")):
            self.env.setdefault("DRIFTLINE_ARTIFACT_LOCATION", "mlflow-artifacts:/driftline")
            self.echo(f"MLflow tracking server: {given} (DRIFTLINE_TRACKING_URI)")
            return
        ui = self.settings.mlflow_ui_url.rstrip("/")
        host, port = ui.split("://", 1)[1].split(":")
        artifacts = self.team.artifacts or str(self.settings.state / "team" / "artifacts")
        # MLflow's basic-auth app: one account the stack's parts use, made once with the database.
        # Its account is made on the first start with this password, and kept in the auth database.
        made = has_user(pg, "mlflow_auth", "driftline")
        password = self._secret("mlflow-password", Path("the database mlflow_auth") if made else None,
                                "MLflow's auth database (mlflow_auth)")
        config = mlflow_auth_config(self.settings.state / "team" / "mlflow-auth.ini", "driftline", password,
                                    driver_url(pg, "mlflow_auth", "psycopg"))
        self.mlflow_client = {"MLFLOW_TRACKING_USERNAME": "driftline", "MLFLOW_TRACKING_PASSWORD": password}
        part = self._spawn("MLflow tracking server", [
            sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--artifacts-destination",
            artifacts, "--serve-artifacts", "--host", host, "--port", port, "--workers", "1"], "mlflow-server.log",
            # In its environment, not its command line, where `ps` shows the password to everyone.
            {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_AUTH_CONFIG_PATH": str(config),
             # The auth app's CSRF protection signs its forms with this key (kept like the others).
             "MLFLOW_FLASK_SERVER_SECRET_KEY": self._secret("mlflow-flask-key"),
             "MLFLOW_BACKEND_STORE_URI": driver_url(pg, "mlflow", "psycopg")}, listens=ui)
        self._wait(part, lambda: _answers(f"{ui}/health"), f"answer {ui}/health", 120)
        # Everything after this (workers, their flow runs, the model servers) uses the server,
        # and its artifacts go through the server's proxy to `artifacts`.
        self.env["DRIFTLINE_TRACKING_URI"] = ui
        self.env["DRIFTLINE_ARTIFACT_LOCATION"] = "mlflow-artifacts:/driftline"
        self.echo(f"MLflow tracking server: {ui} (runs and registry in PostgreSQL, artifacts: {artifacts}; basic auth: "
                  f"MLFLOW_TRACKING_USERNAME=driftline, the password in {self._secret_path('mlflow-password')})")

    # -- work pool, deployments, workers -------------------------------------------------
    def _work_pool(self) -> None:
        prefect = [sys.executable, "-m", "prefect"]
        template = self._job_template()
        # deployments.deploy: `prefect deploy`, with the 3.8.8 call that fails here fixed.
        for args in ([*prefect, "work-pool", "create", POOL, "--type", "process", "--base-job-template",
                      str(template), "--overwrite"],
                     [sys.executable, "-m", "deployments.deploy", "--all"]):
            self._setup(args, f"`{' '.join(args[2:])}`", 300)
        self.echo(f"Deployments of prefect.yaml on the work pool {POOL}: " + ", ".join(sorted(self.deployment_ids())))
        # Flow runs send heartbeats, and a run whose heartbeats stop (its worker killed) is marked
        # Crashed by an automation instead of staying Running for ever.
        self.env.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30")
        self._setup([sys.executable, "-m", "deployments.crashes"], "installing the crash automation")
        self.echo(f"Crash detection: a flow run without a heartbeat for "
                  f"{3 * int(self.env['PREFECT_FLOWS_HEARTBEAT_FREQUENCY'])} s is marked Crashed")
        if self.env.get("DRIFTLINE_NOTIFY_WEBHOOK_URL", "").strip():
            self._setup([sys.executable, "-m", "deployments.notifications"], "installing the webhook notifications")
            self.echo("Webhook notifications installed (DRIFTLINE_NOTIFY_WEBHOOK_URL)")
        for i in range(1, self.team.workers + 1):
            self._spawn(f"worker {i}", [*prefect, "worker", "start", "--pool", POOL, "--name", f"driftline-worker-{i}",
                                        "--type", "process"], f"worker-{i}.log",
                        {**(self.prefect_client or {}), **(self.mlflow_client or {})}).kind = "worker"
        self.echo(f"Workers: {self.team.workers} on {POOL}")

    def _setup(self, args: list[str], what: str, timeout: float = 120) -> str:
        """One setup command against the Prefect server, its output in deploy.log (and returned);
        StackError if it fails."""
        env = {**self.env, **(self.prefect_client or {}), "PREFECT_CLI_PROMPT": "false"}
        done = subprocess.run(args, env=env, cwd=self.settings.root, capture_output=True, text=True, timeout=timeout)
        with open(self.settings.state / "logs" / "deploy.log", "a") as log:
            log.write(done.stdout + done.stderr)
        if done.returncode:
            raise StackError(f"{what} failed; see {log.name}")
        return done.stdout

    def _job_template(self) -> Path:
        """The process work pool's job template, with only the harmless variables (a run's name,
        labels, output): a run's `command`, `env` or `working_dir` job variables would otherwise run
        any shell command, or any code, on the team's workers for whoever reaches the Prefect API."""
        import json

        template = json.loads(self._setup([sys.executable, "-m", "prefect", "work-pool",
                                           "get-default-base-job-template", "--type", "process"],
                                          "reading the process work pool's default job template"))
        keep = ("name", "labels", "stream_output")
        template["variables"]["properties"] = {k: v for k, v in template["variables"]["properties"].items()
                                               if k in keep}
        template["job_configuration"].update(command=None, env={}, working_dir=None)
        path = self.settings.state / "team" / "work-pool-template.json"
        path.write_text(json.dumps(template, indent=2))
        return path

    # -- model servers ---------------------------------------------------------------------
    @property
    def _staging_port(self) -> int:
        return ServeSettings().port + self.team.replicas

    def _replicas(self) -> None:
        base = ServeSettings().port
        servers = [(f"model server {i + 1}", f"model-server-{i + 1}", base + i, "production")
                   for i in range(self.team.replicas)]
        for name, log, port, role in [*servers, ("staging server", "staging-server", self._staging_port, "staging")]:
            part = self._spawn(name, [sys.executable, "-m", "driftline.app.cli", "serve", "--params",
                                      str(self.params_path), "--host", "127.0.0.1", "--port", str(port),
                                      "--role", role],
                               f"{log}.log", {"DRIFTLINE_SERVE_URL": f"http://127.0.0.1:{port}",
                                              **(self.mlflow_client or {})},
                               listens=f"http://127.0.0.1:{port}")
            self._wait(part, functools.partial(_answers, f"http://127.0.0.1:{port}/health"), f"answer on port {port}",
                       120)
            self.echo(f"{name[0].upper()}{name[1:]}: http://127.0.0.1:{port} ({role})")
