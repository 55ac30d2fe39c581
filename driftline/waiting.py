"""Waiting for something to become true, with a deadline: the one loop the local stack, the demo,
the serving client and the tests share, so each wait stops and reports the same way.

Not tenacity: it comes only through plotly (Evidently's), not as a declared dependency, and the
whole need is the ten lines below."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The deadline passed; `last` is what the probe answered last."""

    def __init__(self, last: Any, seconds: float):
        super().__init__(f"not done within {seconds:g} s (last: {last!r})")
        self.last = last


def poll(probe: Callable[[], T], seconds: float, interval: float, done: Callable[[T], bool] = bool) -> T:
    """Call `probe` every `interval` s until `done(answer)`, and return that answer; WaitTimeout
    once `seconds` have passed. An exception from `probe` ends the wait at once."""
    deadline = time.monotonic() + seconds
    while True:
        answer = probe()
        if done(answer):
            return answer
        if time.monotonic() > deadline:
            raise WaitTimeout(answer, seconds)
        time.sleep(interval)


@contextmanager
def heartbeat(say: Callable[[str], None], what: str, every: float = 15.0):
    """While the block runs, `say` "<what>: still running, N s" every `every` s: a long step
    (training on a million rows, a push of a large table) shows a person it is alive."""
    stop = threading.Event()
    began = time.monotonic()

    def beat() -> None:
        while not stop.wait(every):
            say(f"{what}: still running, {time.monotonic() - began:.0f} s so far")

    thread = threading.Thread(target=beat, daemon=True, name="heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1)


class Every:
    """`due()` is true at most once per `seconds`: for periodic progress lines from a loop."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.clock = seconds, clock
        self.last = clock()

    def due(self) -> bool:
        now = self.clock()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True
