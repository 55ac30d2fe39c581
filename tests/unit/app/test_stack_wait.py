"""`Stack.wait` with real child processes: one worker of two dying leaves the stack up, saying so;
the last worker, or any other part, stops it naming the part."""

from __future__ import annotations

import subprocess
import threading

import pytest

from driftline.app.stack import Part, Stack, StackError
from driftline.config import Settings


def _stack(tmp_path, said: list[str]) -> Stack:
    stack = Stack(Settings(project_dir=tmp_path), tmp_path / "params.yaml", echo=said.append)
    for name, kind in (("server", None), ("worker 1", "worker"), ("worker 2", "worker")):
        stack.parts.append(Part(name, subprocess.Popen(["sleep", "60"]), kind=kind))
    return stack


def _kill_later(part: Part, seconds: float) -> None:
    threading.Timer(seconds, part.process.kill).start()


def test_a_dead_worker_is_reported_and_the_last_one_stops_the_stack(tmp_path):
    said: list[str] = []
    stack = _stack(tmp_path, said)
    try:
        _kill_later(stack.parts[1], 0.2)
        _kill_later(stack.parts[2], 2.5)
        with pytest.raises(StackError, match=r"^worker 1, worker 2 stopped"):
            stack.wait()
        assert stack.parts[0].process.poll() is None  # the server was never the reason
        assert said[0].startswith("the worker 1 stopped (exit code -9); 1 worker(s) go on"), said
    finally:
        for part in stack.parts:
            part.process.kill()
            part.process.wait()


def test_any_other_part_dying_stops_the_stack_at_once(tmp_path):
    said: list[str] = []
    stack = _stack(tmp_path, said)
    try:
        _kill_later(stack.parts[0], 0.2)
        with pytest.raises(StackError, match=r"^server stopped"):
            stack.wait()
        assert said == []
    finally:
        for part in stack.parts:
            part.process.kill()
            part.process.wait()


def test_a_restartable_part_is_started_again_until_it_keeps_failing(tmp_path):
    said: list[str] = []
    stack = Stack(Settings(project_dir=tmp_path), tmp_path / "params.yaml", echo=said.append)
    (stack.settings.state / "logs").mkdir(parents=True)
    stack.env = {"PATH": "/usr/bin:/bin"}
    database = stack._spawn("database", ["sh", "-c", "echo up; sleep 0.3; exit 3"], "database.log")
    database.restart = True
    try:
        with pytest.raises(StackError, match="the database exited 5 times within 5 minutes"):
            stack.wait()
        assert said == ["the database exited (code 3); started it again"] * 5, said
        assert (stack.settings.state / "logs" / "database.log").read_text() == "up\n" * 6  # same command, same log
    finally:
        database.process.kill()
        database.process.wait()
