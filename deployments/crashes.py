"""Flow runs whose process died are marked Crashed: a Prefect automation over the runs' heartbeats
(Prefect's documented "zombie flow" detection; Prefect Cloud has it built in, a self-hosted
server needs the automation).

    PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30 python -m deployments.crashes
    python -m deployments.crashes --remove

A worker killed with its flow run (a machine lost, an out-of-memory kill) leaves the run Running
for ever: nothing is left to report its end. Its deployment's concurrency slot is held until
the slot's lease expires, so a queued CI run waits behind it, and the people watching see a
training that never ends. With heartbeats on (PREFECT_FLOWS_HEARTBEAT_FREQUENCY in the workers'
environment; `driftline up --profile team` sets 30 s), a run that sent one heartbeat and then
neither another nor a final state within three heartbeats is set Crashed, with a message saying
so. Nothing it had not finished was registered: registration is all or nothing, and @champion
only moves at the end of a rollout. A retry is another run (CI's rerun, the next event or schedule).
Installing again replaces the automation (found by name)."""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from uuid import UUID

from prefect.automations import Automation, EventTrigger, Posture
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState

NAME = "driftline: crash flow runs that stopped sending heartbeats"
HEARTBEAT_ENV = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
FINAL = ("Completed", "Failed", "Cancelled", "Crashed")


def install(heartbeat_seconds: int) -> UUID:
    """The automation, replacing one installed before; its id. Silent for 3 heartbeats: Crashed."""
    if heartbeat_seconds < 30:
        raise ValueError(f"{HEARTBEAT_ENV}: Prefect sends a heartbeat at most every 30 s, got {heartbeat_seconds}")
    remove()
    silent = 3 * heartbeat_seconds
    trigger = EventTrigger(
        after={"prefect.flow-run.heartbeat"},
        expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{s}" for s in FINAL)},
        match={"prefect.resource.id": ["prefect.flow-run.*"]},
        for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1,
        within=timedelta(seconds=silent))
    action = ChangeFlowRunState(state=StateType.CRASHED, message=(
        f"No heartbeat for {silent} s: the process running this flow run is gone (a worker or machine lost); "
        "marked Crashed by the driftline crash automation."))
    return Automation(name=NAME, description="Mark flow runs Crashed when their heartbeats stop.",
                      trigger=trigger, actions=[action]).create().id


def remove() -> None:
    with get_client(sync_client=True) as client:
        for automation in client.read_automations_by_name(NAME):
            client.delete_automation(automation.id)


def heartbeat_seconds() -> int | None:
    value = os.environ.get(HEARTBEAT_ENV, "").strip()
    return int(value) if value else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--remove", action="store_true", help="remove the automation")
    args = parser.parse_args(argv)
    if args.remove:
        remove()
        print("driftline crash automation removed")
        return
    seconds = heartbeat_seconds()
    if seconds is None:
        raise SystemExit(f"{HEARTBEAT_ENV} is not set: flow runs send no heartbeat, so none can be missed")
    install(seconds)
    print(f"driftline crash automation installed: a run silent for {3 * seconds} s is marked Crashed")


if __name__ == "__main__":
    main()
