"""Deprecated: the rollout flow moved to flows/rollout.py and is called `rollout` (Prefect flow
name "rollout"). Kept for one release so deployments created with the entrypoint
`flows/deploy.py:deploy_model` still run; recreate them from prefect.yaml."""

import warnings

from flows.rollout import RolledBack, promote, rollback
from flows.rollout import rollout as deploy_model

warnings.warn("flows/deploy.py:deploy_model is renamed flows/rollout.py:rollout (the flow is now called "
              "'rollout'); recreate deployments that use the old entrypoint", FutureWarning, stacklevel=2)

__all__ = ["RolledBack", "deploy_model", "promote", "rollback"]
