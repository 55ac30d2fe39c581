"""Webhook notifications, as Prefect automations, for what a team wants to hear without watching:
a rollout rolled back, drift detected, a training run that failed or crashed.

    DRIFTLINE_NOTIFY_WEBHOOK_URL=https://hooks.slack.com/services/... python -m deployments.notifications
    python -m deployments.notifications --remove

The message is Slack-compatible JSON, `{"text": "*<subject>*\\n<body>"}` (Mattermost, Rocket.Chat,
Discord's /slack endpoint and Teams' workflows take the same). The URL carries the webhook's
secret, so it comes from the environment and is kept in the secret part of a Prefect
`CustomWebhookNotificationBlock` (`driftline-notify`), never in a committed file.
`deployments.serve` and `driftline up --profile team` install them whenever the variable is set;
after `python -m deployments.deploy --all` by hand, run this module once. Installing again
replaces them (they are found by name)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from uuid import UUID

from prefect.automations import Automation, EventTrigger, Posture, SendNotification
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from driftline.adapters.registry.tags import DRIFT_DETECTED, ROLLED_BACK

WEBHOOK_ENV = "DRIFTLINE_NOTIFY_WEBHOOK_URL"
BLOCK = "driftline-notify"
PREFIX = "driftline notify: "
TRAINING_FLOW = "training-pipeline"


@dataclass(frozen=True)
class Rule:
    name: str
    trigger: EventTrigger
    subject: str  # Jinja, rendered by the Prefect server with the triggering `event` (and `flow_run`)
    body: str


def _on(*events: str, **related: str) -> EventTrigger:
    return EventTrigger(expect=set(events), match_related=related or {}, posture=Posture.Reactive, threshold=1,
                        within=0)


RULES = (
    Rule("rollout rolled back", _on(ROLLED_BACK),
         "driftline: {{ event.payload.model }} version {{ event.payload.version }} rolled back",
         "{{ event.payload.reason }}\n@champion is version {{ event.payload.champion }}."),
    Rule("drift detected", _on(DRIFT_DETECTED),
         "driftline: drift on {{ event.payload.model_name }} version {{ event.payload.version }}",
         "{{ event.payload.summary }}\nDrift share {{ event.payload.drift_share }} over {{ event.payload.rows }} rows;"
         " report: {{ event.payload.report_url }}"),
    # Prefect's own state events; the related flow says which flow the run belongs to.
    Rule("training run failed", _on("prefect.flow-run.Failed", "prefect.flow-run.Crashed",
                                    **{"prefect.resource.role": "flow", "prefect.resource.name": TRAINING_FLOW}),
         "driftline: training run {{ flow_run.name }} {{ event.event | replace('prefect.flow-run.', '') | lower }}",
         "{{ flow_run.state.message }}\nParameters: {{ flow_run.parameters }}"),
)


def install(webhook_url: str) -> list[UUID]:
    """The block and one automation per rule, replacing any installed before; their ids."""
    if not webhook_url.startswith(("https://", "http://")):
        raise ValueError(f"{WEBHOOK_ENV}: an http(s) URL is required, got {webhook_url[:20]!r}")
    block = CustomWebhookNotificationBlock(name="driftline", url="{{url}}", secrets={"url": webhook_url},
                                           json_data={"text": "*{{subject}}*\n{{body}}"})
    block_id = block.save(BLOCK, overwrite=True)
    _remove_automations()
    return [Automation(name=PREFIX + r.name, description=f"Webhook message when {r.name}.", trigger=r.trigger,
                       actions=[SendNotification(block_document_id=block_id, subject=r.subject, body=r.body)]
                       ).create().id for r in RULES]


def remove() -> None:
    """The automations and the block, if installed."""
    _remove_automations()
    with get_client(sync_client=True) as client:
        try:
            doc = client.read_block_document_by_name(BLOCK, "custom-webhook")
        except ObjectNotFound:
            return
        client.delete_block_document(doc.id)


def _remove_automations() -> None:
    with get_client(sync_client=True) as client:
        for rule in RULES:
            for automation in client.read_automations_by_name(PREFIX + rule.name):
                client.delete_automation(automation.id)


def install_from_env() -> bool:
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if url:
        install(url)
    return bool(url)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--remove", action="store_true", help="remove the automations and the block")
    args = parser.parse_args(argv)
    if args.remove:
        remove()
        print("driftline notifications removed")
    elif install_from_env():
        print(f"driftline notifications installed: {', '.join(r.name for r in RULES)}")
    else:
        raise SystemExit(f"{WEBHOOK_ENV} is not set: nothing to install")


if __name__ == "__main__":
    main()
