"""Test-session environment: every tool writes under a temporary directory, never to $HOME."""

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="driftline-tests-"))

# What the suite inherits from a CI runner or a user's shell must not reach the code under test
# or the scripts it starts: GitHub Actions sets GITHUB_SHA in every step, which training-ci.sh
# would send as the commit to train. Tests pass what they mean explicitly.
SCRUBBED_PREFIXES = ("GITHUB_", "PREFECT_", "MLFLOW_", "AWS_", "DRIFTLINE_", "RUNNER_")
for key in [k for k in os.environ if k.startswith(SCRUBBED_PREFIXES) or k == "CI"]:
    os.environ.pop(key)

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



@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """This process's Prefect server (one per xdist worker); yields its API URL. Integration
    modules use it automatically; fault modules ask for it and clear what their killed processes
    leave on it. A Prefect server costs ~20 s of CPU to start: one per module cost a minute."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()
