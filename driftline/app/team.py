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
import hashlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from driftline.app.stack import Stack, StackError, _answers
from driftline.config import ServeSettings

PG_BIN = Path("/usr/lib/postgresql/15/bin")
POOL = "driftline-process"
DATABASES = ("prefect", "mlflow")


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


@dataclass
class Postgres:
    url: str  # postgresql://user@host:port, no database


class TeamStack(Stack):
    team: TeamSettings | None = None

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
            self._work_pool()
            self._replicas()
        except BaseException:
            self.stop()
            raise
        return self

    # -- PostgreSQL ----------------------------------------------------------------------
    def _postgres(self) -> Postgres:
        if self.team.database_url:
            pg = Postgres(self.team.database_url.rstrip("/"))
            self.echo(f"PostgreSQL: {_hide_password(pg.url)} (DRIFTLINE_TEAM_DATABASE_URL)")
        else:
            pg = self._start_postgres()
        _create_databases(pg)
        return pg

    def _start_postgres(self) -> Postgres:
        if not (PG_BIN / "postgres").exists():
            raise StackError(f"PostgreSQL 15 is not installed ({PG_BIN}): `make system-packages` installs it")
        as_root = os.geteuid() == 0
        data = _root_data_dir(self.settings.state) if as_root else self.settings.state / "team" / "postgres"
        run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
        secret = data.parent / "password" if as_root else self.settings.state / "team" / "postgres-password"
        password = _password(secret, data, legacy=self.settings.state / "team" / "postgres-password")
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
        self._wait(part, lambda: _connects(pg), f"accept connections on 127.0.0.1:{port}", 60)
        self.echo(f"PostgreSQL: {_hide_password(pg.url)} (data: {data}; password in {secret})")
        return pg

    # -- Prefect and MLflow on it --------------------------------------------------------
    def _prefect_on(self, pg: Postgres) -> None:
        # The database URL (with its password) goes to the Prefect server alone, not to the
        # workers, their flow runs or the model servers started after it.
        self.env["PREFECT_API_DATABASE_CONNECTION_URL"] = _driver(pg, "prefect", "asyncpg")
        try:
            self._prefect()
        finally:
            self.env.pop("PREFECT_API_DATABASE_CONNECTION_URL")

    def _tracking_server(self, pg: Postgres) -> None:
        given = self.env.get("DRIFTLINE_TRACKING_URI", "")
        if given.startswith(("http://", "https://")):
            self.env.setdefault("DRIFTLINE_ARTIFACT_LOCATION", "mlflow-artifacts:/driftline")
            self.echo(f"MLflow tracking server: {given} (DRIFTLINE_TRACKING_URI)")
            return
        ui = self.settings.mlflow_ui_url.rstrip("/")
        host, port = ui.split("://", 1)[1].split(":")
        artifacts = self.team.artifacts or str(self.settings.state / "team" / "artifacts")
        part = self._spawn("MLflow tracking server", [
            sys.executable, "-m", "mlflow", "server", "--artifacts-destination", artifacts, "--serve-artifacts",
            "--host", host, "--port", port, "--workers", "1"], "mlflow-server.log",
            # In its environment, not its command line, where `ps` shows the password to everyone.
            {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
             "MLFLOW_BACKEND_STORE_URI": _driver(pg, "mlflow", "psycopg")}, listens=ui)
        self._wait(part, lambda: _answers(f"{ui}/health"), f"answer {ui}/health", 120)
        # Everything after this (workers, their flow runs, the model servers) uses the server,
        # and its artifacts go through the server's proxy to `artifacts`.
        self.env["DRIFTLINE_TRACKING_URI"] = ui
        self.env["DRIFTLINE_ARTIFACT_LOCATION"] = "mlflow-artifacts:/driftline"
        self.echo(f"MLflow tracking server: {ui} (runs and registry in PostgreSQL, artifacts: {artifacts})")

    # -- work pool, deployments, workers -------------------------------------------------
    def _work_pool(self) -> None:
        prefect = [sys.executable, "-m", "prefect"]
        # deployments.deploy: `prefect deploy`, with the 3.8.8 call that fails here fixed.
        for args in ([*prefect, "work-pool", "create", POOL, "--type", "process", "--overwrite"],
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
                                        "--type", "process"], f"worker-{i}.log").kind = "worker"
        self.echo(f"Workers: {self.team.workers} on {POOL}")

    def _setup(self, args: list[str], what: str, timeout: float = 120) -> None:
        """One setup command against the Prefect server, its output in deploy.log; StackError if it fails."""
        with open(self.settings.state / "logs" / "deploy.log", "ab") as log:
            if subprocess.run(args, env={**self.env, "PREFECT_CLI_PROMPT": "false"}, cwd=self.settings.root,
                              stdout=log, stderr=subprocess.STDOUT, timeout=timeout).returncode:
                raise StackError(f"{what} failed; see {log.name}")

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
                               f"{log}.log", {"DRIFTLINE_SERVE_URL": f"http://127.0.0.1:{port}"},
                               listens=f"http://127.0.0.1:{port}")
            self._wait(part, functools.partial(_answers, f"http://127.0.0.1:{port}/health"), f"answer on port {port}",
                       120)
            self.echo(f"{name[0].upper()}{name[1:]}: http://127.0.0.1:{port} ({role})")


def _driver(pg: Postgres, database: str, driver: str) -> str:
    return pg.url.replace("postgresql://", f"postgresql+{driver}://", 1) + f"/{database}"


def _connects(pg: Postgres) -> bool:
    import psycopg

    try:
        psycopg.connect(f"{pg.url}/postgres", connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        return False


def _create_databases(pg: Postgres) -> None:
    import psycopg

    with psycopg.connect(f"{pg.url}/postgres", autocommit=True) as conn:
        have = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in DATABASES:
            if name not in have:
                conn.execute(f'CREATE DATABASE "{name}"')


def _root_data_dir(state: Path) -> Path:
    """As root: PostgreSQL runs as `postgres`, which cannot enter a root-only project directory.
    Under /var/lib (root's, not world-writable like /var/tmp): nobody else can plant a symlink or a
    ready-made data directory at the path before us."""
    base = Path("/var/lib/driftline-postgres")
    base.mkdir(mode=0o755, exist_ok=True)
    if base.is_symlink() or base.stat().st_uid != 0:
        raise StackError(f"{base} must be a directory owned by root")
    own = base / hashlib.sha1(str(state).encode()).hexdigest()[:12]
    if not own.exists():
        own.mkdir(mode=0o700)
        shutil.chown(own, "postgres", "postgres")
    if own.is_symlink() or own.stat().st_uid != pwd.getpwnam("postgres").pw_uid:
        raise StackError(f"{own} must be a directory owned by postgres")
    return own / "data"


def _password(path: Path, data: Path, legacy: Path) -> str:
    """The stack's database password: made once, kept 0600 with the data it protects, so that the
    two cannot part (a state directory made anew beside data kept under /var/lib used to make a new
    password, and PostgreSQL then refused it sixty times). One kept in the state directory by an
    earlier release moves beside the data. Data whose password is gone is an error that says what
    to remove or restore."""
    if not path.exists() and legacy.exists() and legacy != path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(legacy.read_text())
    if not path.exists():
        if (data / "PG_VERSION").exists():
            raise StackError(f"the PostgreSQL data at {data} was made with a password that is gone ({path} is "
                             f"missing): put it back in {path}, or remove {data} to start the team stack afresh "
                             "(the runs, the registry and the Prefect state in it are lost)")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def _hide_password(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, user = head.split("//", 1)
    return f"{scheme}//{user.split(':', 1)[0]}:***@{tail}"
