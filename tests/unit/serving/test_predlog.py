"""The prediction log on a local directory: partitions, mixed rows, nothing lost."""

from __future__ import annotations

from driftline.serving.predlog import PartitionedLog, read_log


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
