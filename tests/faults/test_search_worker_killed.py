"""A `dask worker` process killed (SIGKILL) while it runs a trial: the scheduler gives the lost trial to a
worker that lives, the search finishes with exactly the trials a quiet cluster gives, and the
model is registered. Nothing is retried by hand and no trial is lost or counted twice."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from benchmarks.dask_processes import DaskProcesses
from tests.integration.conftest import make_project
from tests.integration.test_search import FAST, in_process, searched

pytestmark = pytest.mark.usefixtures("prefect_url")


def kill_a_worker_mid_trial(address: str, killed: dict, stop: threading.Event) -> None:
    """Wait until a worker is running a trial, then SIGKILL that worker's process."""
    from distributed import Client

    with Client(address) as client:
        while not stop.is_set():
            busy = {w: keys for w, keys in client.processing().items() if keys}
            if busy:
                worker = sorted(busy)[0]
                pid = client.run(os.getpid, workers=[worker])[worker]
                os.kill(pid, signal.SIGKILL)
                killed.update(worker=worker, pid=pid, running=list(busy[worker]))
                return
            time.sleep(0.05)


def test_a_worker_killed_mid_trial_changes_no_trial_and_no_model(tmp_path):
    project = make_project(tmp_path / "proj")
    expected = [(t.values, t.score) for t in in_process(project, FAST)]
    killed: dict = {}
    stop = threading.Event()
    with DaskProcesses(2) as cluster:
        killer = threading.Thread(target=kill_a_worker_mid_trial, args=(cluster.address, killed, stop), daemon=True)
        killer.start()
        try:
            run = searched(project, FAST, cluster.address)
        finally:
            stop.set()
            killer.join(30)
    assert killed.get("running"), "no worker was killed while running a trial: the fault never happened"
    assert all("cv_trial" in str(key) or "cv-trial" in str(key) for key in killed["running"]), killed
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)  # that process is gone for real
    got = [({k: _typed(v) for k, v in r.data.params.items()}, r.data.metrics["cv_score"]) for r in run["trials"]]
    assert got == expected  # all eight trials, each once, each with the score a quiet cluster gives
    assert run["result"]["version"] == "1"


def _typed(text: str):
    from tests.integration.test_search import _typed as typed

    return typed(text)
