"""What a stack stopped without ending its runs (killed, the machine lost) leaves in its Prefect
database, ended before the next stack serves its deployments.

A run left Running holds its deployment's concurrency slot for good: the slot's lease lives in the
Prefect server's memory, so a restarted server never expires it, and every later run of that
deployment waits as AwaitingConcurrencySlot (seen: `make demo` stalled at its auto-deploy step
behind a run a killed demo had left Running the day before). Only for a stack that starts its own
Prefect server: before its deployments are served no run of them can be under way, so a run still
Running, Pending or Cancelling is one nobody will end."""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from driftline.adapters.prefect_api import PrefectApi

HOLDING = ("RUNNING", "PENDING", "CANCELLING")  # the states that hold a deployment's concurrency slot
WAITING = "AwaitingConcurrencySlot"  # a Scheduled run the server turned back for want of a slot
CRASHED = "its process was gone when the next local stack started (a stack stopped without ending it)"
CANCELLED = "it waited for a slot held by a run a stopped stack left behind; the event that started it is old"


def end_leftovers(api: PrefectApi, names: Iterable[str]) -> list[str]:
    """Crash the runs of the deployments `names` that hold a slot, cancel those waiting for one,
    and free any slot still counted with no run holding it. What was done, one line a run."""
    ids = {name: ident for name, ident in api.deployment_ids().items() if name in set(names)}
    if not ids:
        return []
    done = []
    for run in api.flow_runs(list(ids.values()), state={"type": {"any_": list(HOLDING)}}):
        _set(api, run["id"], "CRASHED", "Crashed", CRASHED)
        done.append(f"{run['name']} ({run['state']['name']}) marked Crashed: {CRASHED}")
    for run in api.flow_runs(list(ids.values()), state={"name": {"any_": [WAITING]}}):
        _set(api, run["id"], "CANCELLED", "Cancelled", CANCELLED)
        done.append(f"{run['name']} ({WAITING}) cancelled: {CANCELLED}")
    for name, ident in ids.items():
        try:
            limit = api.call("GET", f"/v2/concurrency_limits/deployment:{ident}")
        except httpx.HTTPStatusError as err:
            if err.response.status_code == 404:  # a deployment without a concurrency limit
                continue
            raise
        if limit.get("active_slots"):
            api.call("PATCH", f"/v2/concurrency_limits/deployment:{ident}", {"active_slots": 0})
            done.append(f"{name}: {limit['active_slots']} concurrency slot(s) held by no run, freed")
    return done


def _set(api: PrefectApi, run_id: str, kind: str, name: str, message: str) -> None:
    # Not forced: the server's own rules run, and ending a Running run releases its slot.
    api.call("POST", f"/flow_runs/{run_id}/set_state",
             {"state": {"type": kind, "name": name, "message": message}, "force": False})
