"""Every `driftline.*` tag and event name is written in one module, and time tags are ISO times
that read back, as do the epoch seconds existing registries hold."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from driftline.adapters.registry import tags

REPO = Path(__file__).resolve().parents[4]
NAME = re.compile(r"^driftline\.[a-z0-9_.]*[a-z0-9_]$")
LOGGERS = {"driftline.serving", "driftline.app.cli"}  # logging.getLogger names and `python -m` targets


def _literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings and NAME.match(node.value)} - LOGGERS


def test_every_driftline_tag_and_event_name_is_written_in_tags_py():
    outside = {str(path.relative_to(REPO)): found for folder in ("driftline", "tasks", "flows", "deployments")
               for path in sorted((REPO / folder).rglob("*.py"))
               if path.name != "tags.py" and (found := _literals(path))}
    assert outside == {}
    # The scan sees names where they are (else the check above could not fail).
    assert {tags.STRATEGY_TAG, tags.DRIFT_DETECTED, tags.LEASE_TAG} <= _literals(Path(tags.__file__))


def test_a_time_is_written_as_an_iso_time_and_read_back_to_the_millisecond():
    text = tags.stamp(1796621584.918)
    assert text == "2026-12-07T05:33:04.918Z"
    assert tags.when(text) == pytest.approx(1796621584.918, abs=1e-6)


@pytest.mark.parametrize(("text", "expected"), [
    ("1796621584.918", 1796621584.918),  # what driftline wrote before: epoch seconds
    ("1796621584", 1796621584.0),
    ("2026-12-07T05:33:04.918+00:00", 1796621584.918),
    ("2026-12-07T06:33:04.918+01:00", 1796621584.918),
    ("2026-12-07T05:33:04.918", 1796621584.918),  # no zone: UTC
    ("2026-12-07 05:33:04Z", 1796621584.0),
])
def test_a_time_tag_reads_as_epoch_seconds_in_either_form(text, expected):
    assert tags.when(text) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("text", [None, "", "soon", "nan", "inf", "2026-13-01T00:00:00Z"])
def test_an_absent_or_unreadable_time_tag_is_none(text):
    assert tags.when(text) is None
