"""`wait_until` for the tests: the library's poll, answering True/False instead of raising; and
the one way a test stops a child process it started."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import httpx

from driftline.waiting import WaitTimeout, poll


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.1):
    """What `predicate()` answered once true, or its last answer when `timeout` passed first."""
    try:
        return poll(predicate, timeout, interval)
    except WaitTimeout as err:
        return err.last


def answers(url: str) -> bool:
    """True when `url` answers 200 (a server's health or ready page); False while it cannot."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stop_process(proc: subprocess.Popen, wait: float = 30) -> None:
    """SIGTERM, then SIGKILL if it is still running `wait` seconds later."""
    proc.terminate()
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(wait)
