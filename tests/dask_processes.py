"""Dask for tests, beside the real cluster of processes they share with the benchmarks
(benchmarks/dask_processes.py): a count of the fit tasks each worker ran, and a partitioned
project: the demo data as a directory of Parquet files that DVC tracks and pushes."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from distributed import WorkerPlugin

from driftline.adapters import dvc_data
from driftline.core import demo_data
from tests.integration.conftest import Project, git, make_project

DISTRIBUTED = ["data.path=data/loans/", "validation.previous.enabled=false", "evaluation.pinned.source=none",
               "training.estimator={kind: xgboost, params: {n_estimators: 80, learning_rate: 0.1, max_depth: 5, "
               "min_child_weight: 5}, early_stopping: {rounds: 15}}",
               "training.distributed={partitions: 8}"]


class FitTasks(WorkerPlugin):
    """A worker plugin that counts the XGBoost training tasks each worker ran (one per worker
    holding partitions of the fit's data): read with `fits_by_worker`. xgboost.dask submits them
    through its map_worker_partitions, as a function named `fn`, which no other task of a
    training run is named (xgboost 3.2)."""

    name = "driftline-test-fit-tasks"

    def setup(self, worker) -> None:
        self.count = 0

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        if start == "executing" and finish == "memory" and str(key).startswith("fn-"):
            self.count += 1


def _fit_count(dask_worker) -> int:
    plugin = dask_worker.plugins.get(FitTasks.name)
    return plugin.count if plugin is not None else 0


def count_fits(address: str) -> None:
    """Start counting each worker's training tasks (from zero) on the cluster at `address`."""
    from distributed import Client

    with Client(address, timeout=60, set_as_default=False) as client:
        client.register_plugin(FitTasks(), name=FitTasks.name)


def fits_by_worker(address: str) -> dict[str, int]:
    from distributed import Client

    with Client(address, timeout=60, set_as_default=False) as client:
        return client.run(_fit_count)


def write_parts(root: Path, rows: int, files: int, seed: int = 7) -> int:
    """The demo data as `files` Parquet files under data/loans/, generated a file at a time (the
    test's process never holds the table); returns the table's size in memory as pandas reads it."""
    folder = root / "data" / "loans"
    folder.mkdir(parents=True, exist_ok=True)
    size, per = 0, -(-rows // files)
    for i in range(files):
        part = demo_data.generate(min(per, rows - i * per), seed * 1000 + i)
        part.to_parquet(folder / f"part-{i:04d}.parquet", index=False)
        size += int(pd.read_parquet(folder / f"part-{i:04d}.parquet").memory_usage(deep=True).sum())
    return size


def partitioned_project(root: Path, rows: int, files: int, *overrides: str, seed: int = 7) -> Project:
    """A git + DVC project whose data is a directory of Parquet files, pushed to its DVC remote,
    and whose params train on a Dask cluster (`DISTRIBUTED`, then `overrides`), committed."""
    project = make_project(root, rows=10)
    (root / "data" / "loans.parquet").unlink()
    write_parts(root, rows, files, seed)
    dvc_file = dvc_data.add(root, "data")
    dvc_data.push(root, dvc_file)
    git(root, "add", "data.dvc")
    git(root, "commit", "-qm", "data as partitions")
    project.commit_params("train on the cluster", *DISTRIBUTED, *overrides)
    return project


def new_data_version(project: Project, rows: int, files: int, seed: int) -> None:
    """Another version of the partitioned data (other rows, the same columns and categories),
    added, pushed and committed."""
    import shutil

    shutil.rmtree(project.root / "data" / "loans")
    write_parts(project.root, rows, files, seed)
    dvc_data.push(project.root, dvc_data.add(project.root, "data"))
    git(project.root, "add", "data.dvc")
    git(project.root, "commit", "-qm", "new data")


def parts_frame(root: Path) -> pd.DataFrame:
    """The partitioned data as one frame (for comparisons on data that fits)."""
    return dvc_data.read_table(root / "data" / "loans")


def wait_for(predicate, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
