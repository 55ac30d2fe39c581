"""benchmarks/results.py: every benchmark run writes one JSON record with its machine, date and
commit beside its figures; the docs draw the benchmarks pages from these records."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from benchmarks import results

REPO = Path(__file__).resolve().parents[2]


def test_a_record_carries_the_machine_the_date_and_the_commit(tmp_path, capsys):
    path = results.write("s3", "title", "make bench-s3", ratios=[results.ratio("push", 9.1)],
                         figures={"push_seconds": 0.77}, rounds=[{"round": 1}], settings={"rows": 10},
                         directory=tmp_path)
    record = json.loads(path.read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert record["commit"] == head
    assert isinstance(record["dirty"], bool)
    assert record["machine"]["cores"] == os.cpu_count()
    assert record["machine"]["memory_gb"] > 0 and record["machine"]["cpu"]
    assert datetime.fromisoformat(record["date"].replace("Z", "+00:00")).tzinfo is not None
    assert path.name.startswith("s3-") and record["figures"] == {"push_seconds": 0.77}
    assert results.problems(record) == []
    assert "result written to" in capsys.readouterr().out


def test_a_goal_is_judged_from_its_operator():
    assert results.ratio("a", 1.28, "<= 1.10")["met"] is False
    assert results.ratio("b", 1.087, "<= 1.10")["met"] is True
    assert results.ratio("c", 15.8, ">= 25")["met"] is False
    assert results.ratio("d", 0.11, "< 1")["met"] is True
    assert results.ratio("e", 0.5)["met"] is None
    with pytest.raises(ValueError, match="expected an operator"):
        results.ratio("f", 1.0, "about 1")


def test_records_load_newest_first_and_a_bad_one_is_named(tmp_path):
    for date in ("2026-11-22T10:00:00Z", "2026-12-06T04:45:00Z", "2026-11-30"):
        record = {"schema": 1, "benchmark": "pipeline", "title": "t", "command": "make bench", "date": date,
                  "commit": "abc", "machine": {}, "ratios": [], "figures": {}}
        (tmp_path / f"pipeline-{date[:10]}.json").write_text(json.dumps(record))
    assert [r["date"][:10] for r in results.load_all(tmp_path)] == ["2026-12-06", "2026-11-30", "2026-11-22"]
    (tmp_path / "broken.json").write_text(json.dumps({"benchmark": "x", "date": "yesterday"}))
    with pytest.raises(ValueError, match=r"broken.json: no 'schema'.*'date' is not ISO 8601"):
        results.load_all(tmp_path)



def test_every_committed_record_is_valid():
    records = results.load_all()
    assert records, "benchmarks/results/ holds the runs the docs show"
    for record in records:
        assert record["machine"].get("cores"), record["_file"]
