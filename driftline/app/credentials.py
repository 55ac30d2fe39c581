"""The model server's credentials that a stack makes for its state directory: the label token
(`/feedback`, for whoever sends labels: the demo's traffic, a labelling system) and the metrics
token (`/metrics` and the rollout on `/models`: Prometheus, the deploy flows, `driftline status`).

Each is a file named after its variable in `<state>/secrets` (0700), 0600, made once and written
whole; every driftline process started on that state directory reads them (config.Settings),
and a variable set in the environment wins over its file. The predict token is not made: a local
stack lets anyone on the machine predict, and a served model's clients are the operator's to
name (DRIFTLINE_SERVE_TOKEN)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from driftline.config.settings import SECRETS_DIR

LABEL_TOKEN, METRICS_TOKEN = "DRIFTLINE_SERVE_FEEDBACK_TOKEN", "DRIFTLINE_SERVE_METRICS_TOKEN"


def serve_credentials(state: Path, env: Mapping[str, str]) -> dict[str, Path]:
    """The label and metrics tokens' files, made when missing; a variable `env` sets is left to it
    (and has no file here)."""
    folder = state / SECRETS_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    return {name: keep(folder / name) for name in (LABEL_TOKEN, METRICS_TOKEN) if not env.get(name)}


def keep(path: Path) -> Path:
    """`path` holding a new random secret, unless it exists: written aside and linked into place,
    so that a full disk or a second stack racing this one never leaves it empty or half-written."""
    if path.exists() and path.stat().st_size > 0:
        return path
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # empty: an interrupted write of an earlier release
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process linked its own first: that one stands
            os.link(aside, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            aside.unlink()
    return path
