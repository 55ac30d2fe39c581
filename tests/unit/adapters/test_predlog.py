"""The prediction log on a local directory: partitions, mixed rows, nothing lost: a row that
cannot be written is kept in a local quarantine file, and only that row."""

from __future__ import annotations

import json
import time

from driftline.adapters.predlog import PartitionedLog
from driftline.adapters.predlog_reader import read_log
from tests.waiting import wait_until


def test_rows_land_in_date_and_hour_partitions_and_read_back_whole(tmp_path):
    log = PartitionedLog(tmp_path / "predictions", flush_rows=3, flush_seconds=0.1)
    log.start()
    ok = {"request_id": "a", "variant": "champion", "model_version": "1", "status": "ok", "latency_ms": 3.5,
          "age": 40.0, "region": "north", "prediction": 1, "score": 0.7}
    error = {"request_id": "b", "variant": "challenger", "model_version": "2", "status": "error", "latency_ms": 9.0}
    log.append([{**ok, "timestamp": "2026-11-23T01:59:59.900000+00:00"}])
    log.append([{**error, "timestamp": "2026-11-23T02:00:00.100000+00:00"}])
    log.append([{**ok, "request_id": "c", "region": None, "timestamp": "2026-11-23T02:10:00+00:00"}])
    log.stop()
    assert (log.written, log.dropped) == (3, 0)
    hours = sorted(p.relative_to(tmp_path / "predictions").parent.as_posix()
                   for p in (tmp_path / "predictions").rglob("*.parquet"))
    assert hours == ["date=2026-11-23/hour=01", "date=2026-11-23/hour=02"]
    back = read_log(tmp_path / "predictions").sort_values("request_id").reset_index(drop=True)
    assert back["request_id"].tolist() == ["a", "b", "c"]
    assert back.loc[0, "score"] == 0.7 and back.loc[0, "prediction"] == 1
    assert back.loc[1, "status"] == "error" and back["region"].isna().tolist() == [False, True, True]


def test_an_empty_log_reads_as_an_empty_frame(tmp_path):
    assert read_log(tmp_path / "nothing").empty


def _row(i: int, region: str = "north", stamp: str = "2026-11-23T02:00:00+00:00") -> dict:
    return {"request_id": f"r{i}", "record_index": 0, "timestamp": stamp, "variant": "champion", "status": "ok",
            "model_version": "1", "age": 30.0 + i, "region": region, "prediction": 1, "score": 0.5}


def test_a_row_that_cannot_be_encoded_is_quarantined_and_only_it(tmp_path):
    log = PartitionedLog(tmp_path / "predictions", flush_rows=10_000, flush_seconds=0.1)
    log.start()
    rows = [_row(i) for i in range(300)]
    rows[137] = _row(137, region="\udfff")  # a lone surrogate: Parquet (UTF-8) cannot hold it
    log.append(rows[:200])
    log.append(rows[200:])
    log.stop()
    back = read_log(tmp_path / "predictions")
    assert len(back) == 299 and "r137" not in set(back["request_id"])  # the other 299 were written
    assert (log.written, log.quarantined, log.dropped) == (299, 1, 0)
    spilled = [json.loads(line) for f in (tmp_path / "quarantine" / "predictions").glob("*.jsonl")
               for line in f.read_text().splitlines()]
    assert [s["row"]["request_id"] for s in spilled] == ["r137"] and spilled[0]["row"]["region"] == "\udfff"
    assert "cannot be encoded" in spilled[0]["reason"]


def test_a_partition_that_cannot_be_written_is_retried_then_quarantined_whole(tmp_path):
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "date=2026-11-23").write_text("a file where the partition directory goes")
    log = PartitionedLog(tmp_path / "predictions", flush_seconds=0.1, retries=2, retry_seconds=0.01)
    log.start()
    log.append([_row(i) for i in range(5)] + [_row(9, stamp="2026-11-24T00:00:00+00:00")])
    log.stop()
    assert (log.written, log.quarantined, log.dropped) == (1, 5, 0)
    spilled = [json.loads(line) for f in (tmp_path / "quarantine" / "predictions").glob("*.jsonl")
               for line in f.read_text().splitlines()]
    assert sorted(s["row"]["request_id"] for s in spilled) == [f"r{i}" for i in range(5)]
    assert all("write failed 3 times" in s["reason"] for s in spilled)


def test_the_backlog_is_bounded_for_the_request_path(tmp_path):
    log = PartitionedLog(tmp_path / "predictions", max_backlog=3)
    log.append([_row(0), _row(1)])
    assert not log.full
    log.append([_row(2)])
    assert log.full  # not started: nothing takes rows off the queue


def test_the_writer_sleeps_until_a_flush_is_due_instead_of_waking_for_each_append(tmp_path):
    # Woken for each append, the writer took the GIL from a saturated server's request loop once a
    # request: a fifth of its samples under wrk, and about a fifth of its throughput.
    log = PartitionedLog(tmp_path / "predictions", flush_rows=50, flush_seconds=30)
    log.start()
    try:
        for i in range(49):
            log.append([_row(i)])
        time.sleep(0.5)  # were it woken by each append, it would have taken them by now
        assert log.taken == 0 and log.written == 0
        log.append([_row(49)])  # a flush's worth: it wakes, takes all 50 and writes them
        assert wait_until(lambda: log.written == 50, 30), (log.taken, log.written)
    finally:
        log.stop()
    assert len(read_log(tmp_path / "predictions")) == 50


def test_kept_rows_are_acknowledged_after_their_flush_and_repeats_of_a_row_collapse_to_the_last(tmp_path):
    log = PartitionedLog(tmp_path / "feedback", flush_seconds=0.1, unique=("request_id", "record_index"))
    log.start()
    first = log.keep([{**_row(1), "label": "0"}, {**_row(2), "label": "1"}])
    second = log.keep([{**_row(1), "label": "1"}])  # the same row again, corrected
    assert first.result(10) is True and second.result(10) is True
    log.stop()
    back = read_log(tmp_path / "feedback").sort_values("request_id")
    assert back[["request_id", "label"]].values.tolist() == [["r1", "1"], ["r2", "1"]], back


def test_kept_rows_wake_the_writer_and_callers_within_one_gap_share_one_part(tmp_path):
    log = PartitionedLog(tmp_path / "feedback", flush_seconds=60, gap_seconds=0.5)
    log.start()
    try:
        time.sleep(0.6)  # the gap since the writer started has passed: the next keep flushes at once
        first = log.keep([_row(1)])
        assert first.result(10) is True  # not after flush_seconds (60 s): keep woke the writer
        began = time.monotonic()
        second, third = log.keep([_row(2)]), log.keep([_row(3)])
        assert second.result(10) is True and third.result(10) is True
        waited = time.monotonic() - began
    finally:
        log.stop()
    parts = sorted((tmp_path / "feedback").rglob("*.parquet"))
    assert len(parts) == 2, parts  # 2 and 3 came within the gap after 1's flush: one part for both
    assert waited < 10 and log.written == 3


def test_a_kept_row_that_went_to_quarantine_is_not_acknowledged_and_other_callers_rows_are(tmp_path):
    log = PartitionedLog(tmp_path / "feedback", flush_seconds=60, gap_seconds=0.5)
    log.start()
    try:
        bad = log.keep([_row(1, region="\udfff")])  # Parquet cannot hold it: quarantined, not in the log
        good = log.keep([_row(2)])  # the same flush
        assert bad.result(10) is False and good.result(10) is True
    finally:
        log.stop()
    assert (log.written, log.quarantined, log.dropped) == (1, 1, 0)
    assert read_log(tmp_path / "feedback")["request_id"].tolist() == ["r2"]


def test_rows_that_can_be_neither_written_nor_quarantined_are_not_acknowledged(tmp_path):
    (tmp_path / "feedback").mkdir()
    (tmp_path / "feedback" / "date=2026-11-23").write_text("a file where the partition directory goes")
    (tmp_path / "quarantine").write_text("a file where the quarantine directory goes")
    log = PartitionedLog(tmp_path / "feedback", flush_seconds=0.1, retries=0, quarantine=tmp_path / "quarantine" / "f")
    log.start()
    assert log.keep([_row(1)]).result(10) is False
    log.stop()
    assert log.dropped == 1
    assert not list(tmp_path.rglob("*.tmp"))  # no half-written file left behind


def test_a_past_window_reads_its_own_rows_and_a_labels_request_id_says_when_it_was_issued(tmp_path, params):
    import time

    import numpy as np
    import pandas as pd

    from driftline.adapters.predlog_reader import issued_at, read_past_window
    from driftline.serving.ids import RequestIds

    log = PartitionedLog(tmp_path / "predictions", flush_rows=100, flush_seconds=0.1)
    log.start()
    base = {"variant": "champion", "model_version": "1", "status": "ok", "prediction": 1, "score": 0.4,
            "proba_0": 0.1, "proba_1": 0.9, "age": 30.0}
    stamps = ["2026-11-23T01:10:00+00:00", "2026-11-23T02:10:00+00:00", "2026-11-23T02:20:00+00:00",
              "2026-11-23T03:40:00+00:00"]
    log.append([{**base, "request_id": f"r{i}", "record_index": 0, "timestamp": t} for i, t in enumerate(stamps)])
    log.append([{**base, "request_id": "s", "variant": "shadow", "timestamp": stamps[1]}])
    log.stop()
    rows = read_past_window(tmp_path, stamps[1], stamps[2], params)
    assert rows["request_id"].tolist() == ["r1", "r2"]  # the shadow copy is no live answer
    assert {"proba_0", "proba_1", "score", "prediction"} <= set(rows.columns) and "age" not in rows.columns

    ids = RequestIds(b"k" * 32, 3600)
    at = time.time() - 86_400 * 200  # issued 200 days ago
    parsed = issued_at(pd.Series([ids.issue(1, at=at), "not-an-id", "g" * 56]))
    assert parsed[0] == int(at) and np.isnan(parsed[1:]).all()


def test_a_log_stamp_always_carries_microseconds_even_on_a_whole_second():
    from datetime import UTC, datetime
    from unittest import mock

    from driftline.adapters import predlog

    whole = datetime(2026, 12, 7, 23, 6, 53, tzinfo=UTC)
    with mock.patch.object(predlog, "datetime", wraps=datetime) as clock:
        clock.now.return_value = whole
        assert predlog.now() == "2026-12-07T23:06:53.000000+00:00"  # isoformat() alone gives no ".000000"
