"""Test-session environment: every tool writes under a temporary directory, never to $HOME."""

import os
import tempfile
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="driftline-tests-"))

# Set before Prefect, MLflow or DVC are imported anywhere in the session.
os.environ.update({
    "DVC_SITE_CACHE_DIR": str(_SESSION_DIR / "dvc-site"),
    "PREFECT_HOME": str(_SESSION_DIR / "prefect-home"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "GIT_AUTHOR_NAME": "driftline-tests", "GIT_AUTHOR_EMAIL": "tests@driftline.invalid",
    "GIT_COMMITTER_NAME": "driftline-tests", "GIT_COMMITTER_EMAIL": "tests@driftline.invalid",
})
for key in ("PREFECT_API_URL", "PREFECT_API_KEY", "DRIFTLINE_PROJECT_DIR", "DRIFTLINE_STATE_DIR",
            "DRIFTLINE_TRACKING_URI", "MLFLOW_TRACKING_URI"):
    os.environ.pop(key, None)
