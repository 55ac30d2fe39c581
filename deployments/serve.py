"""Serve the driftline deployments from this process (a local stack, no work pool needed).

    python -m deployments.serve

The same deployments as `prefect.yaml`, which is for `prefect deploy --all` onto a work pool.
"""

from __future__ import annotations

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.schedules import Cron

from flows.deploy import deploy_model
from flows.training import training_pipeline

ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def deployments() -> list:
    return [
        training_pipeline.to_deployment(
            name="training-ci", parameters={"reason": "ci"}, tags=["driftline", "training", "ci"],
            concurrency_limit=ONE_AT_A_TIME,
            description="What CI starts with `prefect deployment run 'training-pipeline/training-ci' --watch`."),
        training_pipeline.to_deployment(
            name="scheduled-retrain", parameters={"reason": "schedule"}, schedule=Cron("0 3 * * 1", timezone="UTC"),
            tags=["driftline", "training", "schedule"], concurrency_limit=ONE_AT_A_TIME,
            description="Weekly retraining on the latest DVC-tracked data."),
        deploy_model.to_deployment(
            name="canary", parameters={"strategy": "canary"}, tags=["driftline", "deployment"],
            concurrency_limit=ONE_AT_A_TIME,
            description="Canary rollout of @challenger with automatic promotion or rollback."),
    ]


if __name__ == "__main__":
    serve(*deployments())
