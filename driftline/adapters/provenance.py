"""Where a model came from: git commit, code hash, lock-file hash."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from pydantic import BaseModel

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # driftline/adapters/provenance.py -> the checkout
# Everything that decides what a run computes: the library, the task wrappers, the flows.
CODE_DIRS = ("driftline", "tasks", "flows")


def git_commit(root: Path) -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else "missing"


def code_files() -> list[Path]:
    return [path for folder in CODE_DIRS for path in sorted((SOURCE_ROOT / folder).rglob("*.py"))]


def code_hash() -> str:
    """Hash of driftline's own source: a change to training code invalidates the cache."""
    digest = hashlib.sha256()
    for path in code_files():
        digest.update(str(path.relative_to(SOURCE_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def lock_hash(root: Path) -> str:
    """The dependency set: the project's uv.lock, else the one driftline was installed from."""
    return file_hash(root / "uv.lock") if (root / "uv.lock").exists() else file_hash(SOURCE_ROOT / "uv.lock")


def key(*parts: str | BaseModel) -> str:
    """A cache key from strings and config sections (hashed by their JSON form)."""
    digest = hashlib.sha256()
    for part in parts:
        text = json.dumps(part.model_dump(mode="json"), sort_keys=True) if isinstance(part, BaseModel) else part
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]
