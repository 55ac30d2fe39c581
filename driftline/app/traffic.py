"""Live traffic for the demo and the tests: single-row requests from a demo-data scenario, at a
bounded rate, and each request's true label through /feedback (under the request id the server
answered with). Labels go in batches from a thread of their own, as a label source sends them:
/feedback answers once its labels are written, which takes up to a flush gap, and the requests
must not wait for that. With `hold_labels` the labels are kept back instead, as a lender's arrive
months later, until `release_labels` posts them."""

from __future__ import annotations

import threading
import time

from driftline.adapters.serving_client import ServerUnavailable, ServingClient, client_records
from driftline.config import Params
from driftline.core import demo_data, frames


def demo_records(params: Params, n: int, seed: int, scenario: str = "baseline") -> tuple[list[dict], list]:
    """Feature records as a client would send them (None for missing) and their true labels."""
    frame = demo_data.generate(n, seed, scenario)
    return client_records(frames.features(frame, params.data)), frame[params.data.target].tolist()


class Traffic:
    def __init__(self, url: str, params: Params, *, scenario: str = "baseline", seed: int = 21, rows: int = 2000,
                 threads: int = 4, rate: float | None = None, token: str | None = None,
                 feedback_token: str | None = None, hold_labels: bool = False):
        """`rate` caps requests per second over all threads (None: as fast as the server answers)."""
        self.records, self.labels = demo_records(params, rows, seed, scenario)
        self.url, self.token, self.feedback_token = url, token, feedback_token
        self.failures: list[str] = []
        self.sent = 0
        self.hold_labels = hold_labels
        self.held: list[dict] = []  # labels kept back (hold_labels), as /feedback takes them
        self._labels: list[dict] = []  # labels not yet posted (without hold_labels)
        self._labels_lock = threading.Lock()
        self._interval = threads / rate if rate else 0.0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i, threads), daemon=True, name=f"traffic-{i}")
                         for i in range(threads)]
        for t in self._threads:
            t.start()
        self._poster = threading.Thread(target=self._post_labels, daemon=True, name="traffic-labels")
        self._poster.start()

    def _run(self, offset: int, step: int) -> None:
        client = ServingClient(self.url, self.token, timeout=30, feedback_token=self.feedback_token)
        i = offset
        while not self._stop.is_set():
            began = time.monotonic()
            k = i % len(self.records)
            try:
                answer = client.predict([self.records[k]])
                if answer.status_code != 200:
                    self.failures.append(f"HTTP {answer.status_code}: {answer.text[:200]}")
                else:
                    label = {"request_id": answer.json()["request_id"], "index": 0, "label": self.labels[k]}
                    if self.hold_labels:
                        self.held.append(label)
                    else:
                        with self._labels_lock:
                            self._labels.append(label)
            except ServerUnavailable as err:
                self.failures.append(str(err))
            self.sent += 1
            i += step
            if self._interval:
                self._stop.wait(max(0.0, self._interval - (time.monotonic() - began)))
        client.close()

    def _post_labels(self, batch: int = 1000) -> None:
        """Every 0.2 s, the labels the requests collected, in bodies of at most `batch`; the last
        ones after `stop`."""
        with ServingClient(self.url, self.token, timeout=30, feedback_token=self.feedback_token) as client:
            while True:
                done = self._stop.is_set() and not any(t.is_alive() for t in self._threads)
                with self._labels_lock:
                    labels, self._labels = self._labels, []
                for i in range(0, len(labels), batch):
                    try:
                        answer = client.feedback(labels[i:i + batch])
                        if answer.status_code != 200:
                            self.failures.append(f"feedback HTTP {answer.status_code}: {answer.text[:200]}")
                    except ServerUnavailable as err:
                        self.failures.append(str(err))
                if done:
                    return
                time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self._poster.join(timeout=60)

    def release_labels(self, batch: int = 1000, url: str | None = None) -> int:
        """Post the labels held back so far (after `stop`), in batches, to this server or to `url`
        (another that shares its request-id key); how many were accepted."""
        held, self.held = self.held, []
        accepted = 0
        with ServingClient(url or self.url, self.token, timeout=30, feedback_token=self.feedback_token) as client:
            for i in range(0, len(held), batch):
                answer = client.feedback(held[i:i + batch])
                if answer.status_code != 200:
                    self.failures.append(f"feedback HTTP {answer.status_code}: {answer.text[:200]}")
                else:
                    accepted += answer.json()["accepted"]
        return accepted
