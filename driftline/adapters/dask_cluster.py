"""The Dask cluster a distributed fit runs on: the one at DRIFTLINE_DASK_ADDRESS, or a temporary
local one. Reached (or started) before any work; what it is made of is the run's cluster shape.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

# The libraries a fitted model depends on (by module): a distributed fit is reproducible for the same versions.
LIBRARIES = ("xgboost", "dask", "distributed", "pandas", "numpy", "pyarrow", "sklearn")
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
    import importlib

    return {name: str(importlib.import_module(name).__version__) for name in LIBRARIES}


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
                self.client = Client(self.address, timeout=CONNECT_SECONDS, set_as_default=True)
            except (OSError, TimeoutError) as err:
                raise ClusterError(f"the Dask scheduler at {self.address} did not answer within "
                                   f"{CONNECT_SECONDS:.0f} s ({type(err).__name__}: {err}); nothing was read, trained "
                                   "or registered") from None
        else:
            # One thread a worker, OpenMP too: XGBoost's threads would otherwise oversubscribe the cores.
            self._local = LocalCluster(n_workers=self.local_workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, env={"OMP_NUM_THREADS": "1"})
            self.client = Client(self._local, set_as_default=True)
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


# What a lost worker or connection raises through a distributed fit: the scheduler's verdict on a
# worker that died under a task, a closed comm, XGBoost's collective failing when a peer vanished
# (an XGBoostError naming the socket or the connection: an XGBoostError on a parameter is no such
# loss, and is not retried), and xgboost.dask's own check that its task still runs where its data was.
LOST = ("KilledWorker", "CommClosedError", "StreamClosedError", "FutureCancelledError")
LOST_WORDS = ("worker died", "invalid worker address", "missing required workers", "connection reset",
              "connection closed", "socket", "worker left", "failed to recv", "failed to send")  # lower case


def lost_worker(err: BaseException) -> bool:
    """Whether a fit failed because the cluster lost a worker or a connection."""
    seen = 0
    while err is not None and seen < 10:
        if type(err).__name__ in LOST or isinstance(err, OSError | TimeoutError) or \
                any(word in str(err).lower() for word in LOST_WORDS):
            return True
        err = err.__cause__ or err.__context__
        seen += 1
    return False


class SchedulerSink:
    """Called on the first worker with each checkpoint (rounds, raw booster, done): puts it in the
    scheduler's metadata under `name`, where `Relay` reads it from the flow's process. Only the
    latest is kept: a flow that stopped reading leaves one booster behind, not one per round."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, rounds: int, raw: bytes, done: bool) -> None:
        from distributed import get_client

        get_client().set_metadata(["driftline-checkpoints", self.name], {"rounds": rounds, "raw": raw, "done": done})


class Relay:
    """Reads a `SchedulerSink`'s checkpoints in a thread of the flow's process and hands each new one
    to `save(rounds, raw, done)`: the workers need not reach the artifact store."""

    def __init__(self, client, name: str, save, every: float = 1.0):
        import threading

        self.client, self.key, self.save, self.every = client, ["driftline-checkpoints", name], save, every
        self.seen = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"relay-{name}", daemon=True)

    def __enter__(self) -> Relay:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.drain()  # the last checkpoint, handed after the thread's last read
        with contextlib.suppress(Exception):  # a scheduler gone with the fit: nothing left to free
            self.client.set_metadata(self.key, None)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.drain()

    def drain(self) -> None:
        try:
            value = self.client.get_metadata(self.key, default=None)
            if value and (value["rounds"] > self.seen or (value["done"] and value["rounds"] == self.seen)):
                self.seen = value["rounds"]
                self.save(value["rounds"], value["raw"], value["done"])
        except Exception as err:  # noqa: BLE001 - a checkpoint missed is said once the fit ends, not raised mid-fit
            self.error = err


def _stale_locks(workers: list[str], dask_scheduler=None) -> dict[str, int]:
    """On the scheduler: for each of `workers` that a MultiLock holds, how many tasks it runs."""
    ext = dask_scheduler.extensions["multi_locks"]
    return {w: len(dask_scheduler.workers[w].processing) if w in dask_scheduler.workers else 0
            for w in workers if ext.locks.get(w)}


def _release(workers: list[str], dask_scheduler=None) -> list[str]:
    ext = dask_scheduler.extensions["multi_locks"]
    holders = {ext.locks[w][0] for w in workers if ext.locks.get(w)}
    for holder in holders:
        ext.release(id=holder)
    return sorted(holders)


def free_workers(client, workers: list[str], grace: float = 5.0, timeout: float = 900.0) -> bool:
    """XGBoost's Dask fit holds a MultiLock on its workers; a flow killed mid-fit never releases it,
    and every later fit on those workers would wait forever. A lock whose workers run nothing for
    `grace` seconds is such a leftover: it is released. While they still run (a killed flow's fit
    goes on to its end on the workers), this waits, up to `timeout`. True when one was released."""
    waited = idle_since = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = client.run_on_scheduler(_stale_locks, workers)
        if not held:
            return waited is not None
        waited = True
        if any(held.values()):
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= grace:
            client.run_on_scheduler(_release, workers)
            return True
        time.sleep(0.5)
    raise ClusterError(f"the workers {', '.join(workers)} are held by another XGBoost fit for more than "
                       f"{timeout:.0f} s; nothing was trained or registered")
