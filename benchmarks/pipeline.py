"""Pipeline benchmark: the whole Prefect+MLflow+DVC training pipeline against a bare script.

    make bench            # or: uv run python -m benchmarks.pipeline --rows 1000000

Builds a real git+DVC project with N rows of demo data, starts a real Prefect server, then
runs, each in a fresh process: a warm-up run (not counted), then three rounds of bare, pipeline
(first champion), the same without pictures, cached rerun and pipeline against a champion
(Evidently check, bootstrap comparison, challenger registration). Each ratio against its named
baseline is the median of the three rounds' ratios; every round is printed and recorded.
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
# Three rounds, each with every phase once, so that every ratio is the median of three rounds'
# ratios, each round's pair measured minutes apart at most and every round printed:
# - "pipeline": a first champion (a model name of its own: no champion, no task-cache hit);
# - "no pictures": the same with registry.pictures=false, another name (what pictures cost);
# - "cached": the round's pipeline run again with the same parameters (every task a cache hit);
# - "challenger": the round's model name with another seed, judged against the round's champion
#   (Evidently check, bootstrap comparison, challenger registration);
# - "bare": the same load/split/train/evaluate with no Prefect, MLflow or DVC.
# The order of bare, pipeline and no pictures turns each round so that a steady drift in machine
# speed does not land on one side. A changed n_jobs (which HistGradientBoosting ignores) keeps
# the training task's cache key apart between names.
# "warm-up" (not counted) is the first flow run on the fresh server and in the fresh project.
# Without it, in three runs on 2026-11-30, the first pipeline phase took 2.2 to 5.1 s longer
# than the second (34.4/29.3, 31.5/29.3, 29.1/26.2 s), a cost of the fresh setup that the
# pictures' ratio then carried.
ROUNDS = 3


def phases(rounds: int = ROUNDS) -> list[tuple[str, int, list[str]]]:
    """(phase, round, overrides) in the order they run; round 0 is the warm-up."""
    out = [("warm-up", 0, ["registry.model_name=loan-default-w", "training.n_jobs=5", "registry.pictures=false"])]
    for r in range(1, rounds + 1):
        first = [f"registry.model_name=loan-default-r{r}", f"training.n_jobs={10 + r}"]
        trio = [("bare", r, []), ("pipeline", r, first),
                ("no pictures", r, [f"registry.model_name=loan-default-r{r}n", f"training.n_jobs={20 + r}",
                                    "registry.pictures=false"])]
        turn = (r - 1) % len(trio)
        out += trio[turn:] + trio[:turn]
        out += [("cached", r, first), ("challenger", r, [*first, f"training.seed={100 + r}"])]
    # The data-version checks (issue 33) alone, in-process: their cost beside the bare script's.
    return out + [("checks", r, []) for r in range(1, rounds + 1)]


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def build_project(root: Path, rows: int, write_data=None) -> None:
    """A git + DVC project under `root` with `rows` demo rows in data/, pushed to a local remote
    beside it and committed; `write_data(root, rows)` writes them (default: one Parquet file)."""
    from driftline import services
    from driftline.adapters import dvc_data
    from driftline.app.project import write_demo_data

    root.mkdir(parents=True)
    _git(root, "init", "-q")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    dvc_data.init(root)
    dvc_data.set_local_remote(root, root.parent / "remote")
    if write_data is None:
        write_demo_data(root / "data" / "loans.parquet", rows=rows)
    else:
        write_data(root, rows)
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
        for phase, round_, overrides in phases():
            r = {**run_phase(phase, root, env, overrides), "phase": phase, "round": round_}
            if phase == "checks":  # the checks alone, without reading the table
                r["seconds"] = r["result"]["checks_seconds"]
            results.append(r)
            print(f"round {round_}  {phase:<11} {r['seconds']:8.2f} s  peak RSS {r['peak_rss_mb']:7.0f} MB  "
                  f"{r['result']}", flush=True)
    report(results, args.rows)


def round_ratios(results: list[dict], top: str, bottom: str) -> list[float]:
    """`top` / `bottom` within each round, in round order."""
    at = {(r["phase"], r["round"]): r["seconds"] for r in results}
    return [at[top, n] / at[bottom, n] for n in range(1, ROUNDS + 1) if (top, n) in at and (bottom, n) in at]


def report(results: list[dict], rows: int) -> None:
    counted = [r for r in results if r["phase"] != "warm-up"]

    def seconds(phase: str) -> float:
        return statistics.median(r["seconds"] for r in counted if r["phase"] == phase)

    def peak(phase: str) -> float:
        return max(r["peak_rss_mb"] for r in counted if r["phase"] == phase)

    ratios = []
    print()
    print(f"baseline: the bare script (load/split/train/evaluate, no Prefect/MLflow/DVC), median of {ROUNDS}: "
          f"{seconds('bare'):.2f} s; each ratio is the median of the rounds' ratios")
    for name, top, bottom, goal in (("pipeline (first champion) / bare", "pipeline", "bare", "<= 1.10"),
                                    ("pipeline against a champion / bare", "challenger", "bare", "<= 1.25"),
                                    ("cached rerun / first run", "cached", "pipeline", "<= 0.05"),
                                    ("pipeline / the same without pictures", "pipeline", "no pictures", "<= 1.10"),
                                    ("data-version checks / bare", "checks", "bare", "<= 0.05")):
        each = round_ratios(results, top, bottom)
        value = statistics.median(each)
        print(f"{name:<40} = {value:.3f}  (goal {goal}; rounds: {', '.join(f'{x:.3f}' for x in each)})")
        ratios.append(bench_results.ratio(name, value, goal, note="rounds: " + ", ".join(f"{x:.3f}" for x in each)))
    print(f"peak RSS pipeline / bare                 = {peak('pipeline') / peak('bare'):.2f}"
          f"  ({peak('pipeline'):.0f} MB vs {peak('bare'):.0f} MB)")
    ratios.append(bench_results.ratio("peak RSS pipeline / bare", peak("pipeline") / peak("bare")))
    bench_results.write(
        "pipeline", "The training pipeline against a bare script doing the same work", "make bench",
        settings={"rows": rows, "rounds": ROUNDS, "order": [f"{p}#{n}" for p, n, _ in phases()]},
        ratios=ratios,
        figures={phase: {"median_seconds": round(seconds(phase), 3), "peak_rss_mb": round(peak(phase)),
                         "runs": sum(r["phase"] == phase for r in counted)}
                 for phase in dict.fromkeys(r["phase"] for r in counted)},
        rounds=[{"phase": r["phase"], "round": r["round"], "seconds": round(r["seconds"], 3),
                 "peak_rss_mb": round(r["peak_rss_mb"]), "status": r["result"].get("status")} for r in results])

if __name__ == "__main__":
    main()
