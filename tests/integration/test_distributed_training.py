"""Training on a real Dask cluster (`dask scheduler` and two `dask worker` processes on loopback,
one thread each): the data read as partitions from the DVC remote by the workers, never gathered
in the flow's process.

On data that fits one process, the distributed run's validation report is the in-process report
word for word (both choose target encoding's folds and the near-copy chance level by row hash), its
holdout is the in-process holdout row for row (its logged holdout metrics are its model's metrics
on the rows the in-process split holds out, exactly), and its holdout ROC AUC is within 0.005 of
the in-process XGBoost fit's. One worker and two fit models of the same quality.
A worker SIGKILLed mid-fit: the fit is retried from the run's last checkpoint. `driftline train`
SIGKILLed mid-fit: the same training started again resumes from the killed run's checkpoint. A warm
start continues the champion's booster. On 2M rows, the flow's own process grows by far less than
the data's size in memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import psutil
import pytest
from sklearn import metrics as skm

from benchmarks.dask_processes import DaskProcesses
from driftline.adapters.registry.tags import CHECKPOINT_ROUNDS_TAG, FLOW_RUN_TAG, RESUMED_TAG, WARM_START_TAG
from driftline.config import load_params
from driftline.core import boosting, frames, training
from tests.dask_processes import (
    count_fits,
    fits_by_worker,
    new_data_version,
    partitioned_project,
    parts_frame,
    wait_for,
)

AUC_TOLERANCE = 0.005  # the same rows and params; the histogram cuts differ (sketches merged across workers)
ACCURACY_TOLERANCE = 0.01  # ~120 of 12,000 holdout rows: labels at the threshold move with the cuts


@pytest.fixture(scope="module")
def cluster():
    with DaskProcesses(2) as procs:
        yield procs


@pytest.fixture
def at_cluster(cluster, monkeypatch):
    """The flow reaches the cluster as a team's does: by DRIFTLINE_DASK_ADDRESS."""
    monkeypatch.setenv("DRIFTLINE_DASK_ADDRESS", cluster.address)
    count_fits(cluster.address)
    return cluster


def _report(store, run_id: str) -> str:
    with open(store.client.download_artifacts(run_id, "validation/report.md")) as f:
        return f.read()


def test_on_data_that_fits_the_distributed_run_is_the_in_process_run(tmp_path, at_cluster):
    spread = partitioned_project(tmp_path / "spread", 60_000, 6)
    alone = partitioned_project(tmp_path / "alone", 60_000, 6, "training.distributed=null")
    got = spread.train_state(reason="test").result()
    assert got["status"] == "registered" and got["cluster"].startswith("2 workers x 1 thread(s), 8 partitions")
    assert sorted(fits_by_worker(at_cluster.address).values()) == [1, 1]  # the fit ran on both workers' partitions
    p = load_params(alone.root / "params.yaml")
    holdout = training.split(parts_frame(alone.root), p).holdout
    store = spread.store()  # the registry's models:/ address is the last store's: each read right after it
    model = store.load_model(store.version_by_alias("champion"))
    spread_report = _report(store, got["run_id"])
    logged = store.client.get_run(got["run_id"]).data.metrics

    x, y = frames.features(holdout, p.data), frames.target(holdout, p.data)
    proba, labels = model.predict_proba(x)[:, 1], model.predict(x)
    assert logged["holdout_roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba), abs=1e-12)
    assert logged["holdout_accuracy"] == pytest.approx(skm.accuracy_score(y, labels), abs=1e-12)
    assert logged["holdout_recall"] == pytest.approx(skm.recall_score(y, labels), abs=1e-12)
    assert logged["rows_trained"] == len(parts_frame(alone.root)) - len(holdout)

    base = alone.train_state(reason="test").result()
    assert base["status"] == "registered"
    alone_report = _report(alone.store(), base["run_id"])
    assert spread_report == alone_report
    # The line target encoding's folds decide (the out-of-fold values' range) is there, in both.
    assert "| derived: values | purpose_default_rate | pass |" in spread_report
    assert abs(logged["holdout_roc_auc"] - base["metrics"]["roc_auc"]) < AUC_TOLERANCE


def test_one_worker_and_two_workers_fit_models_of_the_same_quality(tmp_path, at_cluster, monkeypatch):
    """The same data and params fitted on one worker and on two: each fit's training task ran on
    every worker (the rows spread over their partitions), the cluster shape each run records says
    which, and the holdout metrics agree within the histogram sketches' tolerance."""
    two = partitioned_project(tmp_path / "two", 60_000, 6).train_state(reason="test").result()
    assert sorted(fits_by_worker(at_cluster.address).values()) == [1, 1]
    with DaskProcesses(1) as single:
        monkeypatch.setenv("DRIFTLINE_DASK_ADDRESS", single.address)
        count_fits(single.address)
        one = partitioned_project(tmp_path / "one", 60_000, 6).train_state(reason="test").result()
        assert list(fits_by_worker(single.address).values()) == [1]
    assert one["cluster"].startswith("1 workers x 1 thread(s), 8 partitions")
    assert two["cluster"].startswith("2 workers x 1 thread(s), 8 partitions")
    print(f"holdout on 1 worker: {one['metrics']}; on 2 workers: {two['metrics']}")
    assert abs(one["metrics"]["roc_auc"] - two["metrics"]["roc_auc"]) < AUC_TOLERANCE
    assert abs(one["metrics"]["accuracy"] - two["metrics"]["accuracy"]) < ACCURACY_TOLERANCE


def _booster(store, alias: str):
    return store.load_model(store.version_by_alias(alias)).estimator_.steps[-1][1].get_booster()


def test_a_worker_killed_mid_fit_the_retry_refits_from_the_last_checkpoint(tmp_path, at_cluster):
    """SIGKILL to a worker process while the booster is being fitted (its nanny starts it again):
    the fit task fails on the lost worker, is retried, and resumes from the checkpoint the run
    stored before the kill; the registered booster has every round."""
    project = partitioned_project(tmp_path / "p", 100_000, 10, "training.checkpoint_every=20",
                                  "training.estimator={kind: xgboost, params: {n_estimators: 400, learning_rate: 0.05, "
                                  "max_depth: 8, min_child_weight: 5}}")
    store = project.store()
    killed = {}

    def kill_after_two_checkpoints():
        def stored() -> int:
            runs = store.client.search_runs([store.experiment_id], f"tags.`{CHECKPOINT_ROUNDS_TAG}` != ''")
            return max([int(r.data.tags[CHECKPOINT_ROUNDS_TAG]) for r in runs] + [0])

        killed["at"] = wait_for(lambda: (n := stored()) >= 40 and n, 600, "two checkpoints", every=0.2)
        address = sorted(at_cluster.worker_pids())[0]
        killed["pid"] = at_cluster.kill_worker(address)

    killer = threading.Thread(target=kill_after_two_checkpoints, daemon=True)
    killer.start()
    got = project.train_state(reason="test").result()
    killer.join(5)
    assert "pid" in killed, "the fit ended before a worker was killed"
    assert killed["pid"] not in at_cluster.worker_pids().values()  # the process did die (and was started again)
    assert got["status"] == "registered"
    run_id, rounds = got["resumed_from"].split("@")
    assert run_id == got["run_id"] and 40 <= int(rounds) < 400  # this run's own checkpoint, from before the end
    assert int(rounds) >= killed["at"]
    assert store.client.get_run(got["run_id"]).data.tags[RESUMED_TAG] == got["resumed_from"]
    assert _booster(project.store(), "champion").num_boosted_rounds() == 400
    print(f"killed a worker after the checkpoint at round {killed['at']}; resumed from round {rounds}")


def test_a_flow_run_killed_mid_fit_resumes_from_its_checkpoint_when_the_training_starts_again(tmp_path, at_cluster):
    """`driftline train` SIGKILLed (its whole process group) after two checkpoints: nothing is
    registered; the same training started again finds the killed run's checkpoint by its key (data
    md5, config, cluster shape), resumes from it, says so, and registers a booster with every round."""
    from prefect.settings import PREFECT_API_URL

    from tests.integration.conftest import REPO, prefect_api

    project = partitioned_project(tmp_path / "p", 100_000, 10, "training.checkpoint_every=20",
                                  "training.estimator={kind: xgboost, params: {n_estimators: 400, learning_rate: 0.05, "
                                  "max_depth: 8, min_child_weight: 5}}")
    store = project.store()

    def checkpointed():
        runs = store.client.search_runs([store.experiment_id], f"tags.`{CHECKPOINT_ROUNDS_TAG}` != ''")
        return [(r, int(r.data.tags[CHECKPOINT_ROUNDS_TAG])) for r in runs]

    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_API_URL": PREFECT_API_URL.value()}
    with (tmp_path / "killed-train.log").open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "driftline.app.cli", "train", "--reason", "test"],
                                cwd=project.root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def second_checkpoint():
        if proc.poll() is not None:
            pytest.fail("train ended before two checkpoints:\n" + (tmp_path / "killed-train.log").read_text()[-3000:])
        return next(((r, n) for r, n in checkpointed() if n >= 40), None)

    try:
        killed, at = wait_for(second_checkpoint, 600, "two checkpoints", every=0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the flow's process and anything it started, at once
        proc.wait(30)
    assert store.versions() == []  # the killed run registered nothing
    try:
        got = project.train_state(reason="test").result()
    finally:  # the killed flow run stays Running on the server: it is this test's to remove
        prefect_api("DELETE", f"/flow_runs/{killed.data.tags[FLOW_RUN_TAG]}")
    assert got["status"] == "registered"
    run_id, rounds = got["resumed_from"].split("@")
    assert run_id == killed.info.run_id != got["run_id"]  # the killed run's checkpoint, found by its key
    assert 40 <= at <= int(rounds) < 400
    assert store.client.get_run(got["run_id"]).data.tags[RESUMED_TAG] == got["resumed_from"]  # and it says so
    assert _booster(project.store(), "champion").num_boosted_rounds() == 400


def test_a_warm_start_fits_on_from_the_champions_booster(tmp_path, at_cluster):
    # No fairness gate here: on 40k rows its smallest group (about 225 holdout rows) swings the recall
    # gap past 0.1 from one data version to the next, whichever way the model was fitted.
    project = partitioned_project(tmp_path / "p", 40_000, 4, "evaluation.fairness=[]")
    first = project.train_state(reason="test").result()
    assert first["status"] == "registered"
    champion = boosting.best_prefix(_booster(project.store(), "champion"))
    new_data_version(project, 40_000, 4, seed=11)
    project.commit_params("warm start", "training.warm_start=champion")
    got = project.train_state(reason="test").result()
    assert got["status"] == "registered" and got["warm_start_from"] == first["version"]
    assert "challenger" in got["aliases"]
    store = project.store()
    assert store.client.get_run(got["run_id"]).data.tags[WARM_START_TAG] == first["version"]
    booster = _booster(store, "challenger")
    kept = champion.num_boosted_rounds()
    assert booster.num_boosted_rounds() > kept
    assert booster[:kept].get_dump() == champion.get_dump()  # the champion's trees, then new ones


class PeakRss:
    """This process's resident memory, sampled every 20 ms in a thread: its peak above the start."""

    def __init__(self):
        self.proc, self.peak, self.idle = psutil.Process(), 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self):
        self.idle = self.peak = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.idle


def test_on_2m_rows_the_flow_process_that_fits_grows_far_less_than_the_data(tmp_path, at_cluster):
    """Peak minus idle resident memory of this process (where the flow runs) over a 2M-row run, the
    idle reading taken after a small run of the same flow, so that what any run loads once (the
    libraries, Prefect's and MLflow's machinery) is not counted as the data's."""
    small = partitioned_project(tmp_path / "small", 30_000, 3, "training.estimator.params.n_estimators=10")
    assert small.train_state(reason="test").result()["status"] == "registered"
    project = partitioned_project(tmp_path / "big", 2_000_000, 40, "training.distributed.partitions=40",
                                  "training.estimator.params.n_estimators=40")
    with PeakRss() as rss:
        started = time.perf_counter()
        got = project.train_state(reason="test").result()
        seconds = time.perf_counter() - started
    assert got["status"] == "registered"
    # The table's size in memory as pandas reads it, a file at a time, read after the run (memory
    # this process took for it would otherwise count as idle).
    size = sum(int(pd.read_parquet(f).memory_usage(deep=True).sum())
               for f in sorted((project.root / "data" / "loans").glob("*.parquet")))
    print(f"2M rows on 2 workers: {seconds:.0f} s; data in memory {size / 2**20:.0f} MiB; flow process grew "
          f"{rss.growth / 2**20:.0f} MiB (idle {rss.idle / 2**20:.0f} MiB, peak {rss.peak / 2**20:.0f} MiB)")
    assert rss.growth < size / 4, (rss.growth, size)
    assert got["metrics"]["roc_auc"] > 0.75
