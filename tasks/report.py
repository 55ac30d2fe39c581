"""Prefect artifacts: what a person reads in the UI."""

from __future__ import annotations

import re

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.events import emit_event

from driftline.adapters.registry import tags


def artifact_key(prefix: str, model_name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{model_name}".lower()).strip("-")


@task(name="publish-report", cache_policy=NONE)
def publish_report(key: str, markdown: str, description: str) -> None:
    create_markdown_artifact(markdown=markdown, key=key, description=description)


@task(name="announce-challenger", cache_policy=NONE)
def announce_challenger(model_name: str, version: str, auto_deploy: bool, strategy: str) -> None:
    """The fact, as an event. Its `driftline.auto_deploy` label is what the deploy trigger matches,
    so `rollout.auto_deploy` in params.yaml decides whether a rollout follows."""
    emit_event(event=tags.CHALLENGER_REGISTERED,
               resource={"prefect.resource.id": tags.model_resource(model_name),
                         "prefect.resource.name": model_name,
                         tags.AUTO_DEPLOY_LABEL: str(auto_deploy).lower()},
               payload={"model_name": model_name, "version": version, "strategy": strategy})
