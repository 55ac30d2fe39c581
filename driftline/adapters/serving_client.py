"""The model server, seen from outside: what it has loaded, and predictions over HTTP.

Used by the deploy flow (blue-green's live smoke test, waiting for the server to converge) and
by the demo's traffic. Nothing connects at import time."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pandas as pd

from driftline.config import ServeSettings
from driftline.waiting import WaitTimeout, poll


class ServerUnavailable(RuntimeError):
    pass


def client_records(x: pd.DataFrame) -> list[dict]:
    """Feature rows as a client sends them: JSON-ready dicts, None for a missing value."""
    return [{k: (None if v != v else v) for k, v in r.items()} for r in x.to_dict("records")]


class ServingClient:
    """Each request carries the credential its endpoint takes: the predict token for /predict, the
    label token for /feedback, the metrics token (else the predict token) for /models, where a
    server holding credentials shows the rollout only to callers presenting one."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0, feedback_token: str | None = None,
                 metrics_token: str | None = None):
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._feedback_headers = {"authorization": f"Bearer {feedback_token}"} if feedback_token else {}
        insider = metrics_token or token
        self._models_headers = {"authorization": f"Bearer {insider}"} if insider else {}

    @classmethod
    def of(cls, cfg: ServeSettings, url: str | None = None, timeout: float = 10.0) -> ServingClient:
        """A client of the server `cfg` describes (at `url`, by default its address), with its tokens."""
        return cls(url or cfg.address, cfg.token, timeout, cfg.feedback_token, cfg.metrics_token)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def models(self) -> dict:
        try:
            response = self._http.get("/models", headers=self._models_headers)
            response.raise_for_status()
            return response.json()
        except httpx.HTTPError as err:
            raise ServerUnavailable(f"model server at {self.url} did not answer /models: {err}") from None

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float, interval: float = 0.25) -> dict:
        """Poll /models until `predicate` holds; TimeoutError carries the last state seen."""
        def probe() -> tuple[bool, dict]:
            try:
                state = self.models()
            except ServerUnavailable as err:
                return False, {"error": str(err)}
            return predicate(state), state

        try:
            return poll(probe, timeout, interval, done=lambda answer: answer[0])[1]
        except WaitTimeout as err:
            raise TimeoutError(f"model server at {self.url} did not converge within {timeout:g} s; "
                               f"last state: {err.last[1]}") from None

    def predict(self, records: list[dict], *, smoke: bool = False, request_id: str | None = None) -> httpx.Response:
        """The answer's `request_id` (the server's) is what /feedback takes. `request_id` here is an
        X-Request-ID, honoured only with the token: it comes back as `client_request_id`."""
        headers = {}
        if smoke:
            headers["x-driftline-variant"] = "smoke"
        if request_id:
            headers["x-request-id"] = request_id
        try:
            return self._http.post("/predict", json=records, headers=headers)
        except httpx.HTTPError as err:
            raise ServerUnavailable(f"model server at {self.url} did not answer /predict: {err}") from None

    def feedback(self, items: list[dict]) -> httpx.Response:
        """`items`: [{"request_id": <from the /predict answer>, "index": <record>, "label": <value>}]."""
        try:
            return self._http.post("/feedback", json=items, headers=self._feedback_headers)
        except httpx.HTTPError as err:
            raise ServerUnavailable(f"model server at {self.url} did not answer /feedback: {err}") from None
