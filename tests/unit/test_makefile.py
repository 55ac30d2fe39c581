"""`make demo` ended with Ctrl-C, as it asks, exits 0 and still prints the status.

The real Makefile's `demo` recipe runs on a pseudo-terminal, Ctrl-C typed as a user types it (the
terminal sends SIGINT to its foreground process group), with `RUN` pointing at a stand-in for
`uv run` whose `driftline demo` behaves as the demo's end does: it waits for Ctrl-C, stops, exits
0. Before the fix make itself took the SIGINT and died of it (exit 130), skipping the status.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FAKE_RUN = """\
import signal, sys, time
args = sys.argv[1:]
if args[:2] == ["driftline", "demo"]:
    if "--no-keep-serving" in args:
        print("demo done, stack stopped", flush=True)
        sys.exit(0)
    if "--fail" in args:
        sys.exit(1)
    try:  # printed inside: a Ctrl-C sent the moment the line appears must land in the handler
        print("The stack keeps running; Ctrl-C stops all of it.", flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        time.sleep(0.5)  # stopping the stack's parts takes a moment
        print("stopped the stack", flush=True)
        sys.exit(0)
    sys.exit(9)  # no Ctrl-C arrived
print("ran", " ".join(args), flush=True)
"""


def _make(tmp_path: Path, demo_args: str, ctrl_c: bool) -> tuple[int, str]:
    fake = tmp_path / "fake_run.py"
    fake.write_text(FAKE_RUN)
    argv = ["make", "--no-print-directory", "-C", str(REPO), "demo", "UV=true", f"RUN={sys.executable} {fake}",
            f"DEMO_ARGS={demo_args}"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session of its own with the pty as its terminal, as a user's shell gives make
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        # Run as a user runs it, not as a sub-make of `make test` (whose flags would be inherited).
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        os.execvpe(argv[0], argv, env)
    out, sent, deadline = b"", False, time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child side closed
                break
            if not chunk:
                break
            out += chunk
        if ctrl_c and not sent and b"Ctrl-C stops all of it" in out:
            os.write(fd, b"\x03")  # the terminal turns it into SIGINT for its foreground group
            sent = True
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


@pytest.mark.skipif(not Path("/bin/bash").exists(), reason="the Makefile's SHELL is bash")
def test_make_demo_ended_with_ctrl_c_exits_0_after_the_status(tmp_path):
    code, out = _make(tmp_path, "", ctrl_c=True)
    assert "stopped the stack" in out, out
    assert "ran driftline status" in out, out
    assert code == 0, out


def test_make_demo_with_no_keep_serving_ends_by_itself(tmp_path):
    code, out = _make(tmp_path, "--no-keep-serving", ctrl_c=False)
    assert "demo done" in out and "ran driftline status" in out, out
    assert code == 0, out


def test_a_failed_demo_still_fails_make_and_skips_the_status(tmp_path):
    code, out = _make(tmp_path, "--fail", ctrl_c=False)
    assert "ran driftline status" not in out, out
    assert code == 2, out  # make's own code when a recipe line fails
