"""A model server whose log disk fills up (a real one: a small tmpfs mounted as its log directory,
then filled): predictions are still answered, labels are answered 503 ("could not be written")
rather than 200, no half-written file is left, and once space is freed the same labels are
answered 200 and are in the log the monitor reads.

Before: /feedback answered 200 once the labels were queued; on a full disk they were then dropped
(`driftline_log_rows_total{outcome="dropped"}`), and the caller never knew to send them again.

Needs to mount a tmpfs (root, or CAP_SYS_ADMIN): skipped, saying so, where that is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from driftline.adapters.predlog_reader import read_log
from driftline.app.traffic import demo_records
from driftline.config import load_params
from tests.faults.conftest import launch, train_champion
from tests.waiting import answers, stop_process, wait_until


def _mount(where: Path) -> None:
    where.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}): a real full disk needs one")


def _fill(where: Path) -> Path:
    """Write until the disk says ENOSPC; the filler file, to delete for space."""
    filler = where / "filler"
    done = subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True, text=True)
    assert "No space left on device" in done.stderr, done.stderr
    return filler


def _dropped_or_quarantined(url: str) -> float:
    scraped = httpx.get(f"{url}/metrics", timeout=10).text
    lines = [line for line in scraped.splitlines() if line.startswith('driftline_log_rows_total{log="feedback"')
             and ('outcome="dropped"' in line or 'outcome="quarantined"' in line)]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def test_labels_on_a_full_log_disk_are_answered_503_and_taken_once_space_is_freed(tmp_path):
    root = tmp_path / "proj"
    train_champion(root)
    logs = tmp_path / "logdisk"
    _mount(logs)
    proc, url, output = launch(root, logs)
    try:
        assert wait_until(lambda: proc.poll() is None and answers(f"{url}/ready"), 120, interval=0.2), \
            output.read_text()[-3000:]
        filler = _fill(logs)
        record = demo_records(load_params(root / "params.yaml"), 1, 5)[0][0]

        served = httpx.post(f"{url}/predict", json=record, timeout=10)
        assert served.status_code == 200, served.text  # a full log disk does not stop predictions
        label = {"request_id": served.json()["request_id"], "label": 1}
        refused = httpx.post(f"{url}/feedback", json=label, timeout=30)
        assert refused.status_code == 503, refused.text
        assert "could not be written" in refused.json()["detail"]
        assert _dropped_or_quarantined(url) >= 1  # the cause: the write failed, counted
        assert not list(logs.rglob("*.tmp"))  # no half-written part left on the full disk
        assert httpx.post(f"{url}/predict", json=record, timeout=10).status_code == 200

        filler.unlink()  # space again: the caller sends the same label again
        taken = httpx.post(f"{url}/feedback", json=label, timeout=30)
        assert taken.status_code == 200 and taken.json() == {"accepted": 1}, taken.text
        back = read_log(logs / "feedback")  # answered 200 only once written: no wait for a flush here
        assert back["request_id"].tolist() == [label["request_id"]]
    finally:
        stop_process(proc)
        subprocess.run(["umount", "-l", str(logs)], check=False)
