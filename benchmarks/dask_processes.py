"""A real Dask cluster on loopback: a `dask scheduler` and `dask worker` processes started from the
command line as a team starts them (each worker under its nanny, which starts it again if it
dies), one thread each, stopped at the end. The scale benchmark runs on it, and so do the tests
of the search and of distributed training (tests/dask_processes.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from benchmarks.pipeline import _free_port


class DaskProcesses:
    """`with DaskProcesses(2) as cluster:` then `cluster.address`. `memory_limit`: each worker's
    (`dask worker --memory-limit`); `env`: the processes' environment (OMP_NUM_THREADS is 1)."""

    def __init__(self, workers: int, memory_limit: str | None = None, env: dict | None = None):
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        env = {**(os.environ if env is None else env), "OMP_NUM_THREADS": "1"}
        dask = [sys.executable, "-m", "dask"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
        self.procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port",
                                        self.address.rsplit(":", 1)[1], "--no-dashboard"], **quiet)]
        limit = ["--memory-limit", memory_limit] if memory_limit else []
        self.procs += [subprocess.Popen([*dask, "worker", self.address, "--nthreads", "1", "--no-dashboard",
                                         "--host", "127.0.0.1", "--name", f"worker-{i}", *limit], **quiet)
                       for i in range(workers)]
        self.workers = workers
        try:
            self.wait(workers)
        except BaseException:  # a cluster that never came up is not left running
            self.stop()
            raise

    def _client(self):
        from distributed import Client

        return Client(self.address, timeout=60, set_as_default=False)

    def wait(self, n: int, timeout: float = 120) -> None:
        with self._client() as client:
            client.wait_for_workers(n, timeout=timeout)

    def worker_pids(self) -> dict[str, int]:
        """Each worker's address -> the pid of its worker process (the nanny's child)."""
        with self._client() as client:
            return client.run(os.getpid)

    def kill_worker(self, address: str) -> int:
        pid = self.worker_pids()[address]
        os.kill(pid, signal.SIGKILL)
        return pid

    def peaks_mb(self) -> list[float]:
        """Each worker process's peak resident memory so far (VmHWM), in MB, largest first."""
        with self._client() as client:
            return sorted(client.run(_vm_hwm_mb).values(), reverse=True)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def __enter__(self) -> DaskProcesses:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
