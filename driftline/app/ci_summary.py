"""The Markdown report of a finished flow run, read through the Prefect API: what CI writes to
the job summary and a pull-request comment.

    python -m driftline.app.ci_summary FLOW_RUN_ID

Reads PREFECT_API_URL (and PREFECT_API_KEY for Prefect Cloud), over plain HTTP: see
driftline/adapters/prefect_api.py for why.
"""

from __future__ import annotations

import os
import sys

from driftline.adapters.prefect_api import PrefectApi


def summary(api_url: str, flow_run_id: str, api_key: str | None = None) -> str:
    api = PrefectApi(api_url, api_key)
    run = api.flow_run(flow_run_id)
    found = api.artifacts(flow_run_id=flow_run_id, kind="markdown")
    state = run["state"]
    head = f"**{run['name']}**: {state['name']}" + (f" ({state['message']})" if state.get("message") else "")
    bodies = [a["data"] for a in found if a.get("data")]
    return "\n\n".join([head, *bodies]) if bodies else head + "\n\n(the run published no report)"


def main() -> None:  # pragma: no cover - exercised through scripts/training-ci.sh
    if len(sys.argv) != 2:
        sys.exit("usage: python -m driftline.app.ci_summary FLOW_RUN_ID")
    print(summary(os.environ["PREFECT_API_URL"], sys.argv[1], os.environ.get("PREFECT_API_KEY")))


if __name__ == "__main__":
    main()
