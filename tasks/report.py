"""Prefect artifacts: what a person reads in the UI."""

from __future__ import annotations

import re

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE


def artifact_key(prefix: str, model_name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{model_name}".lower()).strip("-")


@task(name="publish-report", cache_policy=NONE)
def publish_report(key: str, markdown: str, description: str) -> None:
    create_markdown_artifact(markdown=markdown, key=key, description=description)
