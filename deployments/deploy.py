"""`prefect deploy`, with the one call of prefect 3.8.8 that fails against its own server fixed.

    python -m deployments.deploy --all        # what `prefect deploy --all` should do

After creating each deployment, `prefect deploy` asks the server for the work pool's online
workers and sends `"limit": null, "offset": null`; the server (with the fastapi that 3.8.8 allows
here, see pyproject.toml) answers 422, and the command fails after the first deployment. The
same bug as the client's `read_artifacts` (see driftline/adapters/prefect_api.py). This sends
the server's own defaults instead, and runs the prefect command unchanged otherwise."""

from __future__ import annotations

import sys

from prefect.client.orchestration._work_pools.client import WorkPoolAsyncClient

_read_workers = WorkPoolAsyncClient.read_workers_for_work_pool


async def _read_workers_with_paging(self, work_pool_name, worker_filter=None, offset=None, limit=None):
    return await _read_workers(self, work_pool_name, worker_filter, 0 if offset is None else offset,
                               200 if limit is None else limit)


def main(argv: list[str] | None = None) -> None:
    WorkPoolAsyncClient.read_workers_for_work_pool = _read_workers_with_paging
    from prefect.cli import app

    sys.argv = ["prefect", "deploy", *(sys.argv[1:] if argv is None else argv)]
    sys.exit(app())


if __name__ == "__main__":
    main()
