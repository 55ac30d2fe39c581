"""MLflow SQLite stores for tests, copied from one store MLflow created in this process.

A fresh SQLite store costs MLflow about 2 s of schema migrations (more on a busy machine), and the
suite makes well over a hundred of them. Each test still gets a store of its own; only the empty
schema is shared. Creating a store from nothing stays covered: the demo, `driftline up` and the
first store of each session start from no file."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

_lock = threading.Lock()
_template: Path | None = None


def _made_once() -> Path:
    global _template
    with _lock:
        if _template is None:
            from mlflow.tracking import MlflowClient

            path = Path(tempfile.mkdtemp(prefix="mlflow-template-")) / "mlflow.db"
            MlflowClient(f"sqlite:///{path}").search_experiments()  # creates and migrates the schema
            _template = path
    return _template


def empty_store(db: Path) -> str:
    """Put an empty, migrated MLflow database at `db` (unless one is there); its tracking URI."""
    db.parent.mkdir(parents=True, exist_ok=True)
    if not db.exists():
        shutil.copyfile(_made_once(), db)
    return f"sqlite:///{db}"
