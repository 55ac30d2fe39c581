"""Tasks through `.fn()`: each hands its work to the adapter it is given, and the retry rules
retry what may pass next time and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from prefect.states import Completed, Failed

from driftline.adapters.dvc_data import DataError, Snapshot
from driftline.adapters.registry.faults import RegistryUnreachable
from tasks import data, monitor, registry


class Given:
    """A part that answers with what it was built with and records what it was asked."""

    def __init__(self, answer):
        self.answer, self.asked = answer, []

    def start(self) -> Given:
        return self

    def stop(self) -> None:
        pass

    def __getattr__(self, method):
        def call(*args):
            self.asked.append((method, args))
            return self.answer
        return call


def test_the_data_tasks_read_through_the_project_data_they_are_given(params):
    snap = Snapshot(Path("data/loans.parquet"), "0" * 32, "data.dvc")
    source = Given(snap)
    assert data.pull_data.fn(source, "data/loans.parquet") is snap
    frame = pd.DataFrame({"a": [1]})
    source.answer = frame
    assert data.load_data.fn(source, snap.path) is frame
    assert source.asked == [("snapshot", ("data/loans.parquet",)), ("read", (snap.path,))]


def test_the_monitor_tasks_read_and_render_through_the_parts_they_are_given(params):
    since, rows, reference = datetime.now(UTC), pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [2]})
    log = Given((rows, pd.DataFrame()))
    assert monitor.read_window.fn(log, since, 50, params)[0] is rows
    assert log.asked == [("window", (since, 50, params))]
    reports = Given("<html/>")
    assessment = object()
    assert monitor.render_report.fn(reports, rows, reference, params, assessment, "3") == "<html/>"
    assert reports.asked == [("render", (rows, reference, params, assessment, "3"))]


@pytest.mark.parametrize(("error", "retried"), [
    (DataError("the remote did not answer", transient=True), True),
    (DataError("data/loans.parquet is not tracked by DVC"), False),
    (ValueError("not a data error"), False),
])
def test_pulling_retries_only_a_transient_data_error(error, retried):
    assert data._transient(None, None, Failed(data=error)) is retried


def test_loading_the_champion_is_not_retried_once_the_registry_was_found_unreachable():
    unreachable = RegistryUnreachable("sqlite:///x.db", "read", OSError("reset"), 3)
    assert registry._unless_unreachable(None, None, Failed(data=unreachable)) is False
    assert registry._unless_unreachable(None, None, Failed(data=OSError("reset"))) is True
    assert registry._unless_unreachable(None, None, Completed()) is True
