"""The Markdown report of a finished flow run, read through the Prefect API: what CI writes to
the job summary and a pull-request comment.

    python -m driftline.app.ci_report FLOW_RUN_ID

Reads PREFECT_API_URL (and PREFECT_API_KEY for Prefect Cloud). Plain HTTP on purpose: it is
all a CI job needs, and some 3.8.8 client helpers send fields the server refuses.
"""

from __future__ import annotations

import os
import sys

import httpx


def report(api_url: str, flow_run_id: str, api_key: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=api_url.rstrip("/"), headers=headers, timeout=30) as client:
        run = client.get(f"/flow_runs/{flow_run_id}")
        run.raise_for_status()
        state = run.json()["state"]
        found = client.post("/artifacts/filter", json={
            "artifacts": {"flow_run_id": {"any_": [flow_run_id]}, "type": {"any_": ["markdown"]}},
            "sort": "CREATED_DESC", "limit": 10, "offset": 0})
        found.raise_for_status()
    head = f"**{run.json()['name']}**: {state['name']}" + (f" ({state['message']})" if state.get("message") else "")
    bodies = [a["data"] for a in found.json() if a.get("data")]
    return "\n\n".join([head, *bodies]) if bodies else head + "\n\n(the run published no report)"


def main() -> None:  # pragma: no cover - exercised through scripts/training-ci.sh
    if len(sys.argv) != 2:
        sys.exit("usage: python -m driftline.app.ci_report FLOW_RUN_ID")
    print(report(os.environ["PREFECT_API_URL"], sys.argv[1], os.environ.get("PREFECT_API_KEY")))


if __name__ == "__main__":
    main()
