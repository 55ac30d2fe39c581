"""Serve the driftline deployments from this process (a local stack, no work pool needed).

    python -m deployments.serve [--params params.yaml] [--set KEY=VALUE ...]

`--set` overrides are baked into every deployment's parameters (a trigger's parameters are
merged over them), e.g. the short rollout windows `driftline demo` uses.

The same deployments as `prefect.yaml`, which is for `python -m deployments.deploy --all` onto a work pool
(`tests/unit/test_deployments.py` checks that the two agree).
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron, Interval

from deployments import notifications
from driftline.adapters.registry.tags import AUTO_DEPLOY_LABEL, CHALLENGER_REGISTERED, DRIFT_DETECTED
from driftline.services import open_project
from flows.monitor import drift_monitor
from flows.rollout import rollout
from flows.training import training_pipeline

# A burst of events starts one run: the others are cancelled while it runs.
ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)
# CI's runs queue instead: every commit that reaches main gets its own gated run.
QUEUED = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)

RETRAIN_ON_DRIFT = DeploymentEventTrigger(
    name="retrain when the drift monitor detects drift", expect={DRIFT_DETECTED},
    parameters={"reason": "drift", "drift_summary": "{{ event.payload.summary }}",
                "drift_event_at": "{{ event.occurred.timestamp() }}"})
AUTO_DEPLOY = DeploymentEventTrigger(
    name="roll out a new challenger when rollout.auto_deploy is on", expect={CHALLENGER_REGISTERED},
    match={AUTO_DEPLOY_LABEL: "true"},
    parameters={"version": "{{ event.payload.version }}", "strategy": "{{ event.payload.strategy }}"})


def deployments(params_path: str = "params.yaml", overrides: list[str] | None = None) -> list:
    common = {"params_path": params_path, "overrides": overrides} if params_path != "params.yaml" or overrides else {}
    built = _deployments()
    for d in built:
        d.parameters = {**common, **d.parameters}
    return built


def _deployments() -> list:
    return [
        training_pipeline.to_deployment(
            name="training-ci", parameters={"reason": "ci"}, tags=["driftline", "training", "ci"],
            concurrency_limit=QUEUED,
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
        rollout.to_deployment(
            name="canary", parameters={"strategy": "canary"}, tags=["driftline", "rollout"],
            concurrency_limit=ONE_AT_A_TIME,
            description="Canary rollout of @challenger with automatic promotion or rollback."),
        rollout.to_deployment(
            # Queued: a challenger that waited for a rollout is announced as that rollout ends,
            # maybe while its run still holds this slot. The rollout lease keeps rollouts apart.
            name="auto-deploy", triggers=[AUTO_DEPLOY], tags=["driftline", "rollout"],
            concurrency_limit=QUEUED,
            description="Started by driftline.challenger.registered when params.yaml has rollout.auto_deploy."),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file, relative to the project")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    with open_project(params_path=args.params, overrides=args.overrides):
        pass  # a bad override fails here, naming the key, before anything is served
    if notifications.install_from_env():
        print(f"webhook notifications installed ({notifications.WEBHOOK_ENV}): "
              + ", ".join(r.name for r in notifications.RULES), flush=True)
    serve(*deployments(args.params, args.overrides))


if __name__ == "__main__":
    main()
