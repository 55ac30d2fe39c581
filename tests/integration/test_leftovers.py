"""What a stack stopped without ending its runs leaves in its Prefect database is ended before the
next stack serves (driftline/app/leftovers.py), on the session's real Prefect server: a run left
Running holds its deployment's slot, and the runs after it wait as AwaitingConcurrencySlot."""

from __future__ import annotations

import uuid

from driftline.app.leftovers import end_leftovers
from tests.integration.conftest import session_api


def _state(api, run_id: str) -> dict:
    return api.call("GET", f"/flow_runs/{run_id}")["state"]


def _propose(api, run_id: str, kind: str) -> str:
    return api.call("POST", f"/flow_runs/{run_id}/set_state", {"state": {"type": kind}, "force": False})["status"]


def test_a_run_left_running_is_crashed_the_one_behind_it_cancelled_and_the_slot_serves_the_next_run():
    api = session_api()
    name = f"leftovers-{uuid.uuid4().hex[:8]}"
    flow_id = api.call("POST", "/flows/", {"name": "leftovers-probe"})["id"]
    deployment = api.call("POST", "/deployments/", {"name": name, "flow_id": flow_id, "concurrency_limit": 1,
                                                    "concurrency_options": {"collision_strategy": "ENQUEUE"}})["id"]
    runs = []
    try:
        def new_run() -> str:
            runs.append(api.call("POST", f"/deployments/{deployment}/create_flow_run", {})["id"])
            return runs[-1]

        left = new_run()  # a stopped stack's run: it took the slot, and nothing will end it
        assert _propose(api, left, "PENDING") == "ACCEPT" and _propose(api, left, "RUNNING") == "ACCEPT"
        behind = new_run()
        assert _propose(api, behind, "PENDING") != "ACCEPT"
        assert _state(api, behind)["name"] == "AwaitingConcurrencySlot"  # what stalled `make demo`

        said = end_leftovers(api, {name, "a deployment this server does not have"})

        assert _state(api, left)["type"] == "CRASHED" and "stopped" in _state(api, left)["message"]
        assert _state(api, behind)["type"] == "CANCELLED"
        assert len(said) == 2 and any("marked Crashed" in line for line in said), said
        after = new_run()
        assert _propose(api, after, "PENDING") == "ACCEPT"  # the slot is free again
        assert _propose(api, after, "RUNNING") == "ACCEPT"
        assert _propose(api, after, "COMPLETED") == "ACCEPT"

        # A slot still counted with no run holding it (a restarted server forgot its lease): freed.
        api.call("PATCH", f"/v2/concurrency_limits/deployment:{deployment}", {"active_slots": 1})
        assert end_leftovers(api, {name}) == [f"{name}: 1 concurrency slot(s) held by no run, freed"]
        assert api.call("GET", f"/v2/concurrency_limits/deployment:{deployment}")["active_slots"] == 0
    finally:
        for run in runs:
            api.call("DELETE", f"/flow_runs/{run}")
        api.call("DELETE", f"/deployments/{deployment}")
