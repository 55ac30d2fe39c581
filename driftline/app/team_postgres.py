"""The team profile's PostgreSQL: where its data and its secrets live, and the databases on it.

As root, PostgreSQL (which refuses to run as root) runs as the `postgres` user with its data in a
directory it owns under /var/lib/driftline-postgres; the secrets that open that data (the
database password, and the control plane's credentials kept in it) live beside it, made once and
kept 0600, so that a state directory made anew still opens the database.
"""

from __future__ import annotations

import hashlib
import pwd
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from driftline.app.lifecycle import StackError

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DATABASES = ("prefect", "mlflow", "mlflow_auth")


@dataclass
class Postgres:
    url: str  # postgresql://user@host:port, no database


def driver_url(pg: Postgres, database: str, driver: str) -> str:
    return pg.url.replace("postgresql://", f"postgresql+{driver}://", 1) + f"/{database}"


def connects(pg: Postgres) -> bool:
    import psycopg

    try:
        psycopg.connect(f"{pg.url}/postgres", connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        return False


def create_databases(pg: Postgres) -> None:
    import psycopg

    with psycopg.connect(f"{pg.url}/postgres", autocommit=True) as conn:
        have = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in DATABASES:
            if name not in have:
                conn.execute(f'CREATE DATABASE "{name}"')


def root_data_dir(state: Path) -> Path:
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


def secret(path: Path, locked: Path | None = None, legacy: Path | None = None, what: str = "") -> str:
    """A secret of the stack (the database password, the control plane's credentials): made once,
    kept 0600 with the data it protects, so that the two cannot part (a state directory made anew
    beside data kept under /var/lib used to make a new password, and PostgreSQL then refused it
    sixty times). One kept in the state directory by an earlier release moves beside the data.
    `locked`: what already holds the secret (the database's data directory, the auth database),
    when it exists; a secret gone from beside it is an error that says what to remove or restore."""
    if not path.exists() and legacy is not None and legacy.exists() and legacy != path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(legacy.read_text())
    if not path.exists():
        if locked is not None:
            raise StackError(f"{what or f'the PostgreSQL data at {locked}'} was made with a secret that is gone "
                             f"({path} is missing): put it back in {path}, or remove {locked} to start the team stack "
                             "afresh (the runs, the registry and the Prefect state in it are lost)")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def hide_password(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, user = head.split("//", 1)
    return f"{scheme}//{user.split(':', 1)[0]}:***@{tail}"


def has_user(pg: Postgres, database: str, user: str) -> bool:
    """Whether MLflow's auth database already holds `user` (made with the password of its first start)."""
    import psycopg

    try:
        with psycopg.connect(f"{pg.url}/{database}") as conn:
            return conn.execute("SELECT 1 FROM users WHERE username = %s", (user,)).fetchone() is not None
    except psycopg.errors.UndefinedTable:
        return False


def mlflow_auth_config(path: Path, user: str, password: str, database_uri: str) -> Path:
    """The basic-auth app's configuration (0600: it holds the account and the database URL): one
    admin account, read-only for any other authenticated user, nothing for the anonymous. The
    account is created in the auth database on the first start, and kept there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("[mlflow]\n"
                    "default_permission = READ\n"
                    f"database_uri = {database_uri}\n"
                    f"admin_username = {user}\n"
                    f"admin_password = {password}\n"
                    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                    "grant_default_workspace_access = true\n"
                    # A PBKDF2 check per request cost each poll of the registry: verified once a minute.
                    "auth_cache_ttl_seconds = 60\n")
    return path
