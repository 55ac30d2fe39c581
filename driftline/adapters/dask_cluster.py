"""The Dask cluster a distributed fit runs on: the one at DRIFTLINE_DASK_ADDRESS, or a temporary
local one. Reached (or started) before any work; what it is made of is the run's cluster shape.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

# The libraries a fitted model depends on: a distributed fit is reproducible for the same versions.
LIBRARIES = ("xgboost", "dask", "distributed", "pandas", "numpy", "pyarrow", "scikit-learn")
CONNECT_SECONDS = 15.0  # a scheduler that does not answer within this is unreachable
WORKER_SECONDS = 60.0  # a scheduler without a worker for this long cannot fit


class ClusterError(RuntimeError):
    """The cluster cannot be reached, has no worker, or its workers disagree; one sentence."""


@dataclass(frozen=True)
class Shape:
    """What a distributed fit's result depends on besides the data and the params."""

    workers: int
    threads: int  # per worker (the smallest)
    partitions: int
    versions: tuple[tuple[str, str], ...]

    def text(self) -> str:
        libs = ", ".join(f"{k} {v}" for k, v in self.versions)
        return f"{self.workers} workers x {self.threads} thread(s), {self.partitions} partitions; {libs}"

    def key(self) -> str:
        return f"{self.workers}w{self.threads}t{self.partitions}p;" + ";".join(f"{k}={v}" for k, v in self.versions)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in LIBRARIES}


class DaskCluster:
    """`start()` connects (or starts a local cluster) and returns the client; `stop()` closes what
    was started here. An address that does not answer is a ClusterError naming it."""

    def __init__(self, address: str | None, local_workers: int = 2):
        self.address, self.local_workers = address, local_workers
        self.client: Any = None
        self._local: Any = None

    def start(self):
        from distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(logging.WARNING)
        if self.address:
            try:
                self.client = Client(self.address, timeout=CONNECT_SECONDS, set_as_default=False)
            except (OSError, TimeoutError) as err:
                raise ClusterError(f"the Dask scheduler at {self.address} did not answer within "
                                   f"{CONNECT_SECONDS:.0f} s ({type(err).__name__}: {err}); nothing was read, trained "
                                   "or registered") from None
        else:
            # One thread a worker, OpenMP too: XGBoost's threads would otherwise oversubscribe the cores.
            self._local = LocalCluster(n_workers=self.local_workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, env={"OMP_NUM_THREADS": "1"})
            self.client = Client(self._local, set_as_default=False)
        try:
            self.client.wait_for_workers(1, timeout=WORKER_SECONDS)
        except TimeoutError:
            where = self.address or "the local cluster"
            self.stop()
            raise ClusterError(f"the Dask scheduler at {where} has no worker after {WORKER_SECONDS:.0f} s; start "
                               "workers (`dask worker <address>`); nothing was read, trained or registered") from None
        return self.client

    def stop(self) -> None:
        client, local, self.client, self._local = self.client, self._local, None, None
        if client is not None:
            client.close()
        if local is not None:
            local.close()

    @property
    def scheduler_address(self) -> str:
        return self.client.scheduler.address

    def shape(self, partitions: int) -> Shape:
        """The workers, their threads and library versions (ClusterError when the workers differ)."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        found = self.client.run(_versions)
        distinct = {tuple(sorted(v.items())) for v in found.values()}
        if len(distinct) > 1:
            raise ClusterError("the Dask workers run different library versions (" + "; ".join(
                f"{w}: {', '.join(f'{k} {v}' for k, v in sorted(vs.items()))}" for w, vs in found.items())
                + "); a distributed fit needs one environment on every worker")
        threads = min(w["nthreads"] for w in info.values())
        return Shape(len(info), threads, partitions, next(iter(distinct)))

    def workers(self) -> list[str]:
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])

    def wait_for(self, n: int, timeout: float) -> None:
        """Until `n` workers are there (a worker that died may be restarted by its nanny)."""
        deadline = time.monotonic() + timeout
        while len(self.workers()) < n and time.monotonic() < deadline:
            time.sleep(0.5)
