"""How the local stack starts and stops its processes: signals that hurry a stop but never abandon
it, a port already held by another process refused before any work, one stack per state
directory (a lock, and stack.json naming what it started, for `driftline down`), and process
groups stopped within 10 s of their signal."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from driftline.waiting import WaitTimeout, poll


class StackError(RuntimeError):
    pass


# Set by a signal that arrives while the stack stops: each part then gets SIGKILL after 2 s instead
# of 10 (a second Ctrl-C hurries the stop, it never abandons it).
_hurry = threading.Event()


def interruptible() -> None:
    """Ctrl-C and SIGTERM both stop the stack cleanly. The first raises KeyboardInterrupt where the
    program is, and the stack then stops every part it started; any later one only hurries that
    stop. (A second Ctrl-C 0.2 s after the first used to interrupt the stop itself and leave the
    Prefect server, the MLflow UI and the deployments running, each in its own session.) Python
    leaves SIGINT ignored when the parent ignored it (a shell's background job does), and then
    Ctrl-C would do nothing: the handlers are installed whatever was there."""
    def first(signum, frame):
        stopping_signals()
        raise KeyboardInterrupt

    _hurry.clear()
    signal.signal(signal.SIGINT, first)
    signal.signal(signal.SIGTERM, first)


def stopping_signals() -> None:
    """From here on a signal only hurries the stop (main thread only: Python's rule for handlers)."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: _hurry.set())


def stop_part(process: subprocess.Popen, first: int = signal.SIGTERM) -> None:
    """Stop the child's whole process group, even when the child itself has already exited:
    what it started (flow runs, server workers) may still be running. SIGKILL follows after 10 s,
    or 2 s once the stop was hurried by another signal."""
    for sig in (first, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        began = time.monotonic()
        while time.monotonic() - began < (2 if _hurry.is_set() else 10):
            if process.poll() is not None and not _group_alive(process.pid):
                return
            time.sleep(0.1)


STATE_FILE = "stack.json"


def take_lock(state: Path):
    """The state directory's stack lock (held open while the stack runs; the OS releases it when
    the process dies), or StackError naming the stack that holds it."""
    import fcntl

    handle = (state / "stack.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        running = _record_of(state)
        who = f"pid {running.get('pid')}, started {running.get('started')}" if running else "another process"
        raise StackError(f"a stack is already running from {state} ({who}): `driftline down` stops it") from None
    return handle


def _record_of(state: Path) -> dict:
    try:
        return json.loads((state / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def down(state: Path, echo: Callable[[str], None] = print, wait: float = 60, quiet: bool = False) -> bool:
    """Stop the stack started from `state` elsewhere: ask its process to stop (SIGTERM: it stops
    every part it started), or, when that process is gone (killed), stop the parts it recorded.
    False when no stack was running there."""
    if not state.is_dir():
        if not quiet:
            echo(f"no stack is running from {state}")
        return False
    record = _record_of(state)
    try:
        lock = take_lock(state)
    except StackError:
        lock = None
    if lock is not None:  # nobody holds the lock: no stack, or a dead one's parts
        with contextlib.closing(lock):
            parts = [p for p in record.get("parts", []) if _group_alive(p["pid"])]
            for p in parts:
                _stop_group(p["pid"])
                echo(f"stopped the {p['name']} (pid {p['pid']}), left by a stack whose process is gone")
            (state / STATE_FILE).unlink(missing_ok=True)
        if not parts and not quiet:
            echo(f"no stack is running from {state}")
        return bool(parts)
    echo(f"stopping the stack of pid {record.get('pid')} (started {record.get('started')})")
    os.kill(record["pid"], signal.SIGTERM)
    try:
        poll(lambda: not (state / STATE_FILE).exists() and _lock_free(state), wait, 0.2)
    except WaitTimeout:
        raise StackError(f"the stack of pid {record.get('pid')} did not stop within {wait:.0f} s") from None
    echo(f"stopped the stack started from {state}: the {', the '.join(p['name'] for p in record.get('parts', []))}")
    return True


def _lock_free(state: Path) -> bool:
    try:
        take_lock(state).close()
        return True
    except StackError:
        return False


def _stop_group(pgid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        began = time.monotonic()
        while time.monotonic() - began < 10 and _group_alive(pgid):
            time.sleep(0.1)
        if not _group_alive(pgid):
            return


def claim(url: str, what: str) -> None:
    """StackError when the address `url` (http://host:port) is already bound by another process."""
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return
        except OSError:
            pass
    raise StackError(f"port {port} ({host}), where the {what} would listen, is already in use by "
                     f"{_holder(port)}: stop it, or give driftline another address")


def _holder(port: int) -> str:
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                command = " ".join(psutil.Process(conn.pid).cmdline())
                return f"pid {conn.pid} ({command[:160]})"
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        pass
    return "a process this user cannot see"


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs: one that exited but was not reaped yet (a zombie)
    answers a signal too, and would hold a stop for its whole wait."""
    import psutil

    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, PermissionError):
            continue
    return False


@contextlib.contextmanager
def no_second_interrupt():
    """Ctrl-C ignored while a command cleans up: a second one (0.2 s after the first, measured in a
    full run) cut the cleanup short and left the demo's stack's servers running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def interrupts_held():
    """Ctrl-C and SIGTERM arriving inside the block are acted on when it ends, so that what the block
    starts is held by the caller before the interrupt is raised. Blocking the signal was not enough
    (seen in CI): one that arrived just before had already been taken by Python, whose handler then
    raised inside Popen after the fork, and the command ran on unseen past the stack's last line."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not caught:
        return
    first = signal.Signals(caught[0])
    handler = previous[first]
    if callable(handler):
        handler(first, None)
    elif handler == signal.SIG_DFL:
        raise KeyboardInterrupt


def run_to_the_end(argv: list[str], env: dict[str, str]) -> int:
    """Run a command and return its exit code. Interrupted, it is stopped (SIGTERM, SIGKILL 10 s
    later) before the interruption goes on, so that it neither outlives its caller nor reports the
    stack it used going away; a second Ctrl-C meanwhile does not cut that short."""
    child = None
    try:
        with interrupts_held():  # a Ctrl-C while it starts is raised once `child` holds it
            child = subprocess.Popen(argv, env=env)
        return child.wait()
    except BaseException:
        if child is None:
            raise
        child.terminate()
        deadline = time.monotonic() + 10
        while child.poll() is None:
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                deadline = time.monotonic() + 10
            except KeyboardInterrupt:  # a second Ctrl-C: it must still be gone before the stack is
                continue
        raise
