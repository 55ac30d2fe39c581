"""The names of the Prefect events driftline emits, in one place: the tasks emit them, the
deployments' triggers expect them, and users' automations match on them."""

from __future__ import annotations

DRIFT_DETECTED = "driftline.drift.detected"
CHALLENGER_REGISTERED = "driftline.challenger.registered"
ROLLED_BACK = "driftline.rollout.rolled_back"
# The name before "rollout" meant the model side everywhere (a deployment is a Prefect one). Still
# emitted beside the new one for one release, so automations matching it keep firing.
ROLLED_BACK_DEPRECATED = "driftline.deployment.rolled_back"


def rolled_back_payload(model: str, version: str, champion: str | None, reason: str) -> dict:
    """The rolled-back event's payload: the rollout emits it, notifications and users' automations read it."""
    return {"model": model, "version": version, "champion": champion, "reason": reason}
