"""Which earlier windows the monitor reads again: the newest judgement of each stretch of time,
and only those that labels arrived for since they were last judged."""

from __future__ import annotations

import numpy as np

from driftline.core.past_windows import PastWindow, labels_per_window, pending, tile


def _w(run: str, first: str, last: str, seen: float = -1) -> PastWindow:
    return PastWindow(run, "1", f"2026-03-01T{first}:00+00:00", f"2026-03-01T{last}:00+00:00", {}, seen)


def test_an_hourly_monitor_over_overlapping_windows_is_tiled_by_its_newest_judgements():
    # Runs at 10:00, 11:00, 12:00 over 4-hour windows, and the current window starting at 12:30.
    runs = [_w("a", "06:00", "10:00"), _w("b", "07:00", "11:00"), _w("c", "08:00", "12:00"),
            _w("d", "02:00", "06:30"), _w("e", "01:00", "03:00")]
    kept = tile(runs, "2026-03-01T12:30:00+00:00")
    assert [w.run_id for w in kept] == ["c", "d"]  # c stands for 08-12 (a, b overlap it), d for 02-06:30 (e overlaps d)
    assert [w.run_id for w in tile(runs, "2026-03-01T11:30:00+00:00")] == ["b", "d"]  # c is not over yet


def test_only_windows_whose_labels_grew_are_read_again_newest_first():
    windows = [_w("new", "10:00", "11:00", seen=5), _w("mid", "08:00", "09:00", seen=-1),
               _w("old", "06:00", "07:00", seen=3)]
    at = lambda hhmm: np.datetime64(f"2026-03-01T{hhmm}:00").astype("datetime64[s]").astype(float)  # noqa: E731
    issued = np.array([at("10:15")] * 5 + [at("08:30")] * 2 + [at("06:30")] * 3 + [np.nan, at("12:00")])
    assert labels_per_window(windows, issued) == [5, 2, 3]
    assert [(w.run_id, n) for w, n in pending(windows, issued, 6)] == [("mid", 2)]
    more = np.append(issued, [at("10:59"), at("06:01")])
    assert [(w.run_id, n) for w, n in pending(windows, more, 6)] == [("new", 6), ("mid", 2), ("old", 4)]
    assert [w.run_id for w, _ in pending(windows, more, 2)] == ["new", "mid"]
