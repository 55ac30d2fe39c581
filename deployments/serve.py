"""Serve the driftline deployments from this process (a local stack, no work pool needed).

    python -m deployments.serve

The same deployments as `prefect.yaml`, which is for `prefect deploy --all` onto a work pool
(`tests/integration/test_prefect_yaml.py` checks that the two agree).
"""

from __future__ import annotations

from datetime import timedelta

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron, Interval

from flows.deploy import deploy_model
from flows.monitor import drift_monitor
from flows.training import training_pipeline
from tasks.monitor import DRIFT_EVENT
from tasks.report import CHALLENGER_EVENT

# A burst of events starts one run: the others are cancelled while it runs.
ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)

RETRAIN_ON_DRIFT = DeploymentEventTrigger(
    name="retrain when the drift monitor detects drift", expect={DRIFT_EVENT},
    parameters={"reason": "drift", "drift_summary": "{{ event.payload.summary }}"})
AUTO_DEPLOY = DeploymentEventTrigger(
    name="roll out a new challenger when deployment.auto_deploy is on", expect={CHALLENGER_EVENT},
    match={"driftline.auto_deploy": "true"},
    parameters={"version": "{{ event.payload.version }}", "strategy": "{{ event.payload.strategy }}"})


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
        training_pipeline.to_deployment(
            name="retrain-on-drift", parameters={"reason": "drift"}, triggers=[RETRAIN_ON_DRIFT],
            tags=["driftline", "training", "drift"], concurrency_limit=ONE_AT_A_TIME,
            description="Started by the event driftline.drift.detected; one run at a time."),
        drift_monitor.to_deployment(
            name="drift-monitor", schedule=Interval(timedelta(hours=1)), tags=["driftline", "monitoring"],
            concurrency_limit=ONE_AT_A_TIME,
            description="Hourly: the prediction log's window against the champion's training reference."),
        deploy_model.to_deployment(
            name="canary", parameters={"strategy": "canary"}, tags=["driftline", "deployment"],
            concurrency_limit=ONE_AT_A_TIME,
            description="Canary rollout of @challenger with automatic promotion or rollback."),
        deploy_model.to_deployment(
            name="auto-deploy", triggers=[AUTO_DEPLOY], tags=["driftline", "deployment"],
            concurrency_limit=ONE_AT_A_TIME,
            description="Started by driftline.challenger.registered when params.yaml has deployment.auto_deploy."),
    ]


if __name__ == "__main__":
    serve(*deployments())
