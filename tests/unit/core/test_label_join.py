"""Labels join the rows they name, (request_id, record_index), and the newest label by the
server's clock wins: the rollout analysis and the monitor read them the same way."""

from __future__ import annotations

import json

import pandas as pd

from driftline.config import MonitoringConfig
from driftline.core import monitoring
from driftline.core.rollout import _accuracy


def _rows() -> pd.DataFrame:
    # One request of three records, answered 1, 0, 1.
    return pd.DataFrame({"request_id": ["a"] * 3, "record_index": [0, 1, 2], "status": "ok", "variant": "champion",
                         "prediction": [1, 0, 1]})


def _live(rows: pd.DataFrame, feedback: pd.DataFrame) -> tuple[int, float]:
    perf = monitoring.performance(rows, feedback, 0.9, MonitoringConfig(min_labels=1))
    return perf.labelled, perf.live_accuracy


def test_each_record_of_a_request_has_its_own_label():
    feedback = pd.DataFrame({"request_id": ["a", "a", "a"], "record_index": [0, 1, 2],
                             "label": [json.dumps(v) for v in (1, 0, 0)],
                             "timestamp": ["2026-11-23T02:00:00+00:00"] * 3})
    assert _accuracy(_rows(), feedback) == (2 / 3, 3)
    assert _live(_rows(), feedback) == (3, 2 / 3)


def test_the_newest_label_by_the_server_clock_wins_whatever_the_file_order():
    # The correction (label 0 -> 1 for record 1) was stamped later but sits first in the files.
    feedback = pd.DataFrame({"request_id": ["a", "a"], "record_index": [1, 1], "label": ["1", "0"],
                             "timestamp": ["2026-11-23T03:00:00+00:00", "2026-11-23T02:00:00+00:00"]})
    assert _accuracy(_rows(), feedback) == (0.0, 1)
    assert _live(_rows(), feedback) == (1, 0.0)


def test_rows_and_labels_from_before_record_indices_join_as_index_0():
    old_rows = pd.DataFrame({"request_id": ["x", "y"], "status": "ok", "prediction": [1, 1]})
    old_feedback = pd.DataFrame({"request_id": ["x", "y"], "label": ["1", "0"]})
    assert _accuracy(old_rows, old_feedback) == (0.5, 2)
    mixed = pd.concat([old_rows, _rows()], ignore_index=True)  # record_index is NaN on the old rows
    assert _accuracy(mixed, old_feedback) == (0.5, 2)
