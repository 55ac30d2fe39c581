"""The Prefect API over plain HTTP: the few reads the local stack, the CI report and the tests make.

Not Prefect's own client, on purpose: the library never imports prefect (the CI report runs with
nothing but httpx), and 3.8.8's client is broken where we would need it: `read_artifacts` sends
`"limit": null, "offset": null` when they are not given, which the server (with the pinned
fastapi/pydantic) rejects with 422. So every body here states each field it sends.
Nothing connects at import or construction."""

from __future__ import annotations

import time

import httpx

PAGE = {"limit": 200, "offset": 0}


class PrefectApi:
    """`api_key`: Prefect Cloud's; `auth_string`: a self-hosted server's `user:password`
    (PREFECT_SERVER_API_AUTH_STRING there, PREFECT_API_AUTH_STRING for its clients, read from the
    environment when not given). A server with CSRF protection gets a token for every request that
    changes state, as Prefect's own client does."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 30, busy_retries: int = 0,
                 auth_string: str | None = None):
        import base64
        import os
        import uuid

        self.url = url.rstrip("/")
        auth_string = auth_string or os.environ.get("PREFECT_API_AUTH_STRING")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else \
            {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()} if auth_string else {}
        self.timeout, self.busy_retries = timeout, busy_retries
        self._csrf: dict[str, str] = {}  # asked for when a server refuses a change without one
        self._client = str(uuid.uuid4())

    def _new_csrf_token(self) -> None:
        answer = httpx.request("GET", f"{self.url}/csrf-token?client={self._client}", headers=self.headers,
                               timeout=self.timeout)
        answer.raise_for_status()
        self._csrf = {"Prefect-Csrf-Token": answer.json()["token"], "Prefect-Csrf-Client": self._client}

    def call(self, method: str, path: str, body: dict | None = None):
        """The answer's JSON (None when empty); HTTPStatusError on any other answer than 2xx."""
        for attempt in range(self.busy_retries + 1):
            response = self._send(method, path, body)
            if response.status_code == 403 and "CSRF" in response.text:  # none yet, or expired: ask, once
                self._new_csrf_token()
                response = self._send(method, path, body)
            # The server's SQLite answers 503 while another writer holds it (seen deleting deployments
            # while the served runner was still shutting down): that is a retry, not an answer.
            if response.status_code != 503 or attempt == self.busy_retries:
                break
            time.sleep(1 + attempt)
        response.raise_for_status()
        return response.json() if response.content else None

    def _send(self, method: str, path: str, body: dict | None) -> httpx.Response:
        headers = {**self.headers, **(self._csrf if method != "GET" else {})}
        return httpx.request(method, f"{self.url}{path}", json=body, headers=headers, timeout=self.timeout)

    def deployment_ids(self) -> dict[str, str]:
        """Deployments by name (the last one of a name wins)."""
        return {d["name"]: d["id"] for d in self.call("POST", "/deployments/filter", PAGE)}

    def flow_run(self, flow_run_id: str) -> dict:
        return self.call("GET", f"/flow_runs/{flow_run_id}")

    def flow_runs(self, deployment_ids: list[str], sort: str = "EXPECTED_START_TIME_ASC",
                  state: dict | None = None) -> list[dict]:
        """The deployments' runs; `state`: a filter on their state, e.g. {"type": {"any_": ["RUNNING"]}}."""
        return self.call("POST", "/flow_runs/filter", {
            "deployments": {"id": {"any_": deployment_ids}}, "sort": sort, **PAGE,
            **({"flow_runs": {"state": state}} if state else {})})

    def artifacts(self, *, key: str | None = None, flow_run_id: str | None = None, kind: str | None = None,
                  limit: int = 10) -> list[dict]:
        """Artifacts, newest first, matching every filter given."""
        match = {"key": key, "flow_run_id": flow_run_id, "type": kind}
        return self.call("POST", "/artifacts/filter", {
            "artifacts": {field: {"any_": [value]} for field, value in match.items() if value is not None},
            "sort": "CREATED_DESC", "limit": limit, "offset": 0})
