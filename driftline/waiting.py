"""Waiting for something to become true, with a deadline: the one loop the local stack, the demo,
the serving client and the tests share, so each wait stops and reports the same way.

Not tenacity: it comes only through plotly (Evidently's), not as a declared dependency, and the
whole need is the ten lines below."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The deadline passed; `last` is what the probe answered last."""

    def __init__(self, last: object, seconds: float):
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
