"""Pipeline benchmark: the whole Prefect+MLflow+DVC training pipeline against a bare script.

    make bench            # or: uv run python -m benchmarks.pipeline --rows 1000000

Builds a real git+DVC project with N rows of demo data, starts a real Prefect server, then
runs, each in a fresh process: a warm-up run (not counted), bare, pipeline (first champion),
the same without pictures, cached rerun, pipeline with a champion (Evidently check + bootstrap comparison + challenger
registration), bare again.
Prints ratios against the named baselines, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks import results as bench_results

REPO = Path(__file__).resolve().parents[1]
# Bare and pipeline alternate so that drift in machine speed hits both. The second pipeline
# run registers under another model name and changes a parameter HGB ignores (n_jobs), so it
# is a first run too: no champion, and no task-cache hit for training or evaluation.
# "no pictures" is a first run with registry.pictures=false: beside "pipeline", what the
# training run's pictures cost, in three pairs in the order A B B A A B, so that a steady drift
# in machine speed cancels out, and compared by the medians of three.
# "warm-up" (not counted) is the first flow run on the fresh server and in the fresh project.
# Without it, in three runs on 2026-11-30, the first pipeline phase took 2.2 to 5.1 s longer
# than the second (34.4/29.3, 31.5/29.3, 29.1/26.2 s), a cost of the fresh setup that the
# pictures' ratio then carried.
PHASES = [
    ("warm-up", ["registry.model_name=loan-default-w", "training.n_jobs=5", "registry.pictures=false"]),
    ("bare", []),
    ("pipeline", []),
    ("no pictures", ["registry.model_name=loan-default-c", "training.n_jobs=3", "registry.pictures=false"]),
    ("bare", []),
    ("no pictures", ["registry.model_name=loan-default-d", "training.n_jobs=4", "registry.pictures=false"]),
    ("pipeline", ["registry.model_name=loan-default-b", "training.n_jobs=2"]),
    ("pipeline", ["registry.model_name=loan-default-e", "training.n_jobs=6"]),
    ("no pictures", ["registry.model_name=loan-default-f", "training.n_jobs=7", "registry.pictures=false"]),
    ("cached", []),
    ("challenger", ["training.seed=1"]),
    ("bare", []),
    # The data-version checks (issue 33) alone, in-process: their cost beside the bare script's.
    ("checks", []),
    ("checks", []),
    ("checks", []),
]


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def build_project(root: Path, rows: int) -> None:
    from driftline import services
    from driftline.adapters import dvc_data
    from driftline.app.project import write_demo_data

    root.mkdir(parents=True)
    _git(root, "init", "-q")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    dvc_data.init(root)
    dvc_data.set_local_remote(root, root.parent / "remote")
    write_demo_data(root / "data" / "loans.parquet", rows=rows)
    dvc_data.push(root, dvc_data.add(root, "data"))
    # What `driftline init` does: the tracking store exists before the first run.
    with services.open_project(root) as project:
        project.services  # noqa: B018 - started (the schema made) and stopped
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "bench")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_prefect(home: Path, env: dict) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env={**env, "PREFECT_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    raise RuntimeError("the Prefect server did not start within 180 s")


def run_phase(phase: str, root: Path, env: dict, overrides: list[str]) -> dict:
    kind = phase if phase in ("bare", "checks") else "pipeline"
    done = subprocess.run([sys.executable, "-m", "benchmarks.phase", kind, str(root), *overrides], cwd=REPO, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"phase {phase} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def bench_stack(rows: int, prefix: str) -> Iterator[tuple[Path, dict, str]]:
    """A new git+DVC project with `rows` rows of demo data under a temporary directory, and a
    Prefect server of its own: (the project's root, the environment phases run in, the API URL).
    The server stops and the directory is removed on leaving."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
           "DVC_SITE_CACHE_DIR": str(work / "dvc-site"), "PYTHONPATH": str(REPO)}
    os.environ["DVC_SITE_CACHE_DIR"] = env["DVC_SITE_CACHE_DIR"]
    root = work / "project"
    t = time.perf_counter()
    build_project(root, rows)
    print(f"project with {rows:,} rows built in {time.perf_counter() - t:.1f} s at {root}", flush=True)
    server, url = start_prefect(work / "prefect-home", env)
    env.update({"PREFECT_API_URL": url, "PREFECT_HOME": str(work / "prefect-home")})
    try:
        yield root, env, url
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    results = []
    with bench_stack(args.rows, "driftline-bench-") as (root, env, _):
        for phase, overrides in PHASES:
            r = {**run_phase(phase, root, env, overrides), "phase": phase}
            if phase == "checks":  # the checks alone, without reading the table
                r["seconds"] = r["result"]["checks_seconds"]
            results.append(r)
            print(f"{phase:<11} {r['seconds']:8.2f} s  peak RSS {r['peak_rss_mb']:7.0f} MB  {r['result']}",
                  flush=True)
    def seconds(phase: str) -> float:
        return statistics.median(r["seconds"] for r in results if r["phase"] == phase)

    def peak(phase: str) -> float:
        return max(r["peak_rss_mb"] for r in results if r["phase"] == phase)

    bare_s, first_s = seconds("bare"), seconds("pipeline")
    print()
    print(f"baseline: bare script (load/split/train/evaluate, no Prefect/MLflow/DVC), median of 3: {bare_s:.2f} s")
    print(f"pipeline (first champion), median of 3 / bare = {first_s / bare_s:.3f}  (goal <= 1.10)")
    print(f"pipeline against a champion / bare            = {seconds('challenger') / bare_s:.3f}")
    with_pictures = [r["seconds"] for r in results if r["phase"] == "pipeline"]
    without = [r["seconds"] for r in results if r["phase"] == "no pictures"]
    print(f"pictures: pipeline / no pictures            = {first_s / seconds('no pictures'):.3f}  (goal <= 1.10; "
          f"+{first_s - seconds('no pictures'):.2f} s; the pairs: "
          + ", ".join(f"{a / b:.3f}" for a, b in zip(with_pictures, without, strict=True)) + ")")
    print(f"cached rerun / pipeline first run             = {seconds('cached') / first_s:.3f}  (goal <= 0.05)")
    print(f"data-version checks / bare                    = {seconds('checks') / bare_s:.3f}  (rounds: "
          + ", ".join(f"{r['seconds']:.2f} s" for r in results if r["phase"] == "checks") + ")")
    print(f"peak RSS pipeline / bare                      = {peak('pipeline') / peak('bare'):.2f}"
          f"  ({peak('pipeline'):.0f} MB vs {peak('bare'):.0f} MB)")
    counted = [r for r in results if r["phase"] != "warm-up"]
    bench_results.write(
        "pipeline", "The training pipeline against a bare script doing the same work", "make bench",
        settings={"rows": args.rows, "order": [phase for phase, _ in PHASES]},
        ratios=[bench_results.ratio("pipeline (first champion) / bare", first_s / bare_s, "<= 1.10"),
                bench_results.ratio("pipeline / the same without pictures", first_s / seconds("no pictures"),
                                    "<= 1.10"),
                bench_results.ratio("cached rerun / first run", seconds("cached") / first_s, "<= 0.05"),
                bench_results.ratio("pipeline against a champion / bare", seconds("challenger") / bare_s, "<= 1.25"),
                bench_results.ratio("data-version checks / bare", seconds("checks") / bare_s, "<= 0.05"),
                bench_results.ratio("peak RSS pipeline / bare", peak("pipeline") / peak("bare"))],
        figures={phase: {"median_seconds": round(seconds(phase), 3), "peak_rss_mb": round(peak(phase)),
                         "runs": sum(r["phase"] == phase for r in counted)}
                 for phase in dict.fromkeys(r["phase"] for r in counted)},
        rounds=[{"phase": r["phase"], "seconds": round(r["seconds"], 3), "peak_rss_mb": round(r["peak_rss_mb"])}
                for r in results])


if __name__ == "__main__":
    main()
