"""How the stack starts and stops its processes (driftline.app.lifecycle), with real sockets, real
locks and real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from driftline.app import lifecycle
from driftline.app.lifecycle import StackError


def test_a_port_held_by_another_process_is_named_with_its_holder():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(StackError) as info:
            lifecycle.claim(f"http://127.0.0.1:{port}", "Prefect server")
    assert f"port {port} (127.0.0.1), where the Prefect server would listen, is already in use by pid {os.getpid()}" \
        in str(info.value)
    lifecycle.claim(f"http://127.0.0.1:{port}", "Prefect server")  # free again once it is closed


def test_one_stack_per_state_directory(tmp_path):
    first = lifecycle.take_lock(tmp_path)
    (tmp_path / lifecycle.STATE_FILE).write_text(json.dumps({"pid": 4242, "started": "today", "parts": []}))
    with pytest.raises(StackError, match=r"a stack is already running from .* \(pid 4242, started today\): "
                                         r"`driftline down` stops it"):
        lifecycle.take_lock(tmp_path)
    first.close()
    lifecycle.take_lock(tmp_path).close()  # released with its holder


def test_down_stops_the_parts_a_dead_stack_recorded(tmp_path):
    part = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    (tmp_path / lifecycle.STATE_FILE).write_text(json.dumps(
        {"pid": 999999, "started": "earlier", "parts": [{"name": "model server", "pid": part.pid}]}))
    said: list[str] = []
    assert lifecycle.down(tmp_path, said.append) is True
    assert part.wait(15) == -signal.SIGTERM
    assert said == [f"stopped the model server (pid {part.pid}), left by a stack whose process is gone"]
    assert not (tmp_path / lifecycle.STATE_FILE).exists()
    assert lifecycle.down(tmp_path, said.append) is False and said[-1] == f"no stack is running from {tmp_path}"


def test_the_first_signal_interrupts_and_any_later_one_only_hurries_the_stop():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        lifecycle.interruptible()
        with pytest.raises(KeyboardInterrupt):  # the handler runs at once, in this (the main) thread
            os.kill(os.getpid(), signal.SIGTERM)
        assert not lifecycle._hurry.is_set()
        os.kill(os.getpid(), signal.SIGINT)  # the second: no exception, the stop goes on, faster
        time.sleep(0.2)
        assert lifecycle._hurry.is_set()
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        lifecycle._hurry.clear()


def test_a_hurried_stop_kills_a_part_that_ignores_its_signal_after_2_seconds():
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"],
                                start_new_session=True, stdout=subprocess.PIPE, text=True)
    assert stubborn.stdout.readline().strip() == "ready"
    lifecycle._hurry.set()
    try:
        began = time.monotonic()
        lifecycle.stop_part(stubborn)
        assert stubborn.poll() == -signal.SIGKILL and time.monotonic() - began < 5
    finally:
        lifecycle._hurry.clear()



def _held_start() -> tuple[subprocess.Popen | None, bool]:
    child, raised = None, False
    try:
        with lifecycle.interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # Python runs its handlers between bytecodes: give it some
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    except KeyboardInterrupt:
        raised = True
    return child, raised


def test_an_interrupt_while_a_command_starts_is_raised_once_the_command_is_held():
    # The demo's case: a Ctrl-C inside Popen raised there and the started command ran on, unseen.
    # Here the signal arrives inside the block; the block still finishes (the child is held) and the
    # interrupt is raised after it, by the handler that was installed before.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    child = None
    try:
        child, raised = _held_start()
        assert raised
        assert child is not None and child.poll() is None
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, previous)
        if child is not None:
            child.kill()
            child.wait()


def test_an_interrupt_ignored_before_the_block_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    child = None
    try:
        child, raised = _held_start()
        assert not raised and child is not None
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
        if child is not None:
            child.kill()
            child.wait()


def test_a_command_run_to_the_end_is_gone_before_its_interruption_goes_on(tmp_path):
    # The demo's commands: a Ctrl-C while one runs must not leave it running past the demo's stack.
    pid_file = tmp_path / "pid"
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            lifecycle.run_to_the_end([sys.executable, "-c", "import os, pathlib, time; pathlib.Path("
                                      f"{str(pid_file)!r}).write_text(str(os.getpid())); time.sleep(60)"],
                                     dict(os.environ))
        child = int(pid_file.read_text())
        with pytest.raises(ProcessLookupError):  # reaped: gone, not a zombie
            os.kill(child, 0)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)


def test_a_command_run_to_the_end_gives_its_exit_code():
    assert lifecycle.run_to_the_end([sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ)) == 3
