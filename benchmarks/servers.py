"""The servers the serving benchmarks start and how they read one under wrk: the demo model
registered as @champion in a fresh project, driftline's server and `mlflow models serve` on it,
and the CPU each uses while wrk loads it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from benchmarks import wrk
from benchmarks.pipeline import _free_port

REPO = Path(__file__).resolve().parents[1]


def register_model(root: Path) -> str:
    """Train the demo model on 50,000 rows and register it as @champion (no Prefect needed)."""
    from driftline import services
    from driftline.core import demo_data, evaluation, frames, training

    with services.open_project(root, REPO / "params.yaml") as project:
        p, store = project.params, project.registry
        df = demo_data.generate(50_000, 7)
        parts = training.split(df, p)
        model = training.train(parts.train, p)
        run_id = store.start_run("bench", {})
        example = frames.features(parts.train.head(5), p.data)
        uri = store.log_model(run_id, model, example, model.predict(example))
        store.log_frame(run_id, evaluation.reference_sample(parts.train, model, p), "reference/reference.parquet")
        store.finish(run_id)
        return store.register(uri, run_id, {}, "champion", "benchmark").version


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def serve_driftline(root: Path, env: dict, log: bool) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "driftline.app.cli", "serve", "--params", str(REPO / "params.yaml")],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**env, "DRIFTLINE_PROJECT_DIR": str(root), "DRIFTLINE_SERVE_PORT": str(port),
                                 "DRIFTLINE_SERVE_LOG_PREDICTIONS": str(log).lower()})
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/ready")
    return proc, url


def serve_mlflow(root: Path, env: dict, version: str) -> tuple[subprocess.Popen, str]:
    from driftline.config import Settings

    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)  # `--env-manager local` runs a bare `uvicorn`
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/loan-default/{version}",
                             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",
                                 "MLFLOW_TRACKING_URI": Settings(project_dir=root).mlflow_uri})
    wait_http(f"http://127.0.0.1:{port}/ping")
    return proc, f"http://127.0.0.1:{port}"


def cpu_seconds(proc: subprocess.Popen) -> dict[int, float]:
    """CPU seconds (user + system) so far of each thread of the server's process tree, by thread id."""
    import psutil

    out = {}
    root = psutil.Process(proc.pid)
    for p in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            out.update({t.id: t.user_time + t.system_time for t in p.threads()})
    return out


def under_wrk(proc: subprocess.Popen, url: str, clients: int, seconds: float, records, wrap) -> dict:
    """wrk's figures, and where the machine's CPU went meanwhile: the server's process tree (in
    cores, and its busiest thread) and wrk's own (a child of this process)."""
    import resource

    before, wrk_before, began = cpu_seconds(proc), resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    r = wrk.run(url, clients, seconds, records, wrap)
    after, wrk_after = cpu_seconds(proc), resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter() - began
    used = sorted((after[t] - before.get(t, 0.0) for t in after), reverse=True)
    wrk_cpu = (wrk_after.ru_utime - wrk_before.ru_utime) + (wrk_after.ru_stime - wrk_before.ru_stime)
    return {**r, "server_cores": sum(used) / wall, "busiest_thread_cores": used[0] / wall if used else 0.0,
            "threads": len(used), "server_ms_per_request": 1000 * sum(used) / max(r["requests"], 1),
            "wrk_cores": wrk_cpu / wall}


def ab_rounds(servers: dict, order: list[str], rounds: int, clients: int, seconds: float, records) -> list[dict]:
    """wrk on each server's `/predict` in turn (`servers`: name -> (process, url)), `rounds` times,
    `order` reversed every other round; each round's figures printed and returned."""
    out = []
    for i in range(rounds):
        for name in (order if i % 2 == 0 else order[::-1]):
            proc, url = servers[name]
            r = under_wrk(proc, f"{url}/predict", clients, seconds, records, lambda x: x)
            out.append({"round": i + 1, "server": name, **{k: round(v, 3) for k, v in r.items()}})
            print(f"round {i + 1}  {name:<24} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:6.2f} ms  "
                  f"p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}/{r['requests']}  "
                  f"{r['server_ms_per_request']:.3f} server ms a request", flush=True)
    return out
