"""`driftline --help` and each command's `--help` read as whole sentences: a docstring's line
breaks are not carried into the help boxes (Typer's default "rich" mode kept them, so the
command list broke mid-sentence, e.g. "...regenerated and" alone on a line)."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import pytest
import typer

from driftline.app.cli import app

COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands]


def _paragraphs(command: str) -> list[str]:
    callback = next(c.callback for c in app.registered_commands if (c.name or c.callback.__name__) == command)
    return [" ".join(p.split()) for p in inspect.cleandoc(callback.__doc__ or "").split("\n\n")]


def _lines(args: list[str]) -> list[str]:
    # The command as a user runs it, on a terminal wide enough that nothing needs wrapping: every
    # line break left would come from the source.
    done = subprocess.run([sys.executable, "-m", "driftline.app.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "400"}, timeout=120)
    assert done.returncode == 0, done.stderr
    return [" ".join(line.replace("│", " ").split()) for line in done.stdout.splitlines()]


def test_every_command_has_a_one_sentence_summary_and_help():
    assert len(COMMANDS) == 13  # down joined the twelve
    for command in COMMANDS:
        summary = _paragraphs(command)[0]
        assert summary.endswith("."), (command, summary)


def test_the_command_list_shows_each_summary_on_one_line():
    lines = _lines(["--help"])
    for command in COMMANDS:
        summary = _paragraphs(command)[0].replace("`", "")
        assert any(line == f"{command} {summary}" for line in lines), (command, summary, lines)


@pytest.mark.parametrize("command", COMMANDS)
def test_each_paragraph_of_a_commands_help_is_one_unbroken_line(command):
    lines = _lines([command, "--help"])
    for paragraph in _paragraphs(command):
        assert paragraph.replace("`", "") in lines, (paragraph, lines)


def test_the_help_is_rendered_as_markdown():
    # The mode that joins a paragraph's lines; "rich" (Typer's default) keeps every line break.
    assert isinstance(app, typer.Typer) and app.rich_markup_mode == "markdown"
