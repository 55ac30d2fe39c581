"""Scale benchmark: the whole training pipeline on growing data, in one process against two local
Dask workers (`dask scheduler` and two `dask worker` processes, one thread each, started from the
command line as a team starts them), in one run: rows per second of the pipeline and the peak
memory of each process (the flow's own, each worker's).

The data is the demo data as a directory of Parquet files that DVC tracks and pushes to the
project's local remote; the model is XGBoost (the kind with a distributed fit), the same params
in both modes. The flow process's peak is its own VmHWM; a worker's is read from the worker
itself at the end of the run (each run gets a fresh cluster).

    make bench-scale                                     # 1M, 3M and 10M rows
    uv run python -m benchmarks.scale --rows 1000000 3000000
    uv run python -m benchmarks.scale --rows 30000000 --modes dask --memory-limit 8GB
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks import results
from benchmarks.dask_processes import DaskProcesses
from benchmarks.pipeline import build_project, run_phase, start_prefect

REPO = Path(__file__).resolve().parents[1]
ROWS_PER_FILE = 250_000
MODEL = ["data.path=data/loans/", "validation.previous.enabled=false", "evaluation.pinned.source=none",
         "training.estimator={kind: xgboost, params: {n_estimators: 100, learning_rate: 0.1, max_depth: 6, "
         "min_child_weight: 5}}", "registry.pictures=false"]


def write_parts(root: Path, rows: int) -> None:
    """`rows` demo rows as Parquet files of ROWS_PER_FILE under data/loans/, a file at a time
    (this process never holds the table)."""
    from driftline.core import demo_data

    folder = root / "data" / "loans"
    folder.mkdir(parents=True)
    for i in range(-(-rows // ROWS_PER_FILE)):
        demo_data.generate(min(ROWS_PER_FILE, rows - i * ROWS_PER_FILE), 7000 + i).to_parquet(
            folder / f"part-{i:04d}.parquet", index=False)


def one_run(root: Path, env: dict, rows: int, mode: str, name: str, memory_limit: str | None) -> dict:
    overrides = [*MODEL, f"registry.model_name={name}"]
    if mode == "in-process":
        r = run_phase("pipeline", root, env, overrides)
        return {"rows": rows, "mode": mode, "seconds": r["seconds"], "flow_peak_mb": r["peak_rss_mb"],
                "worker_peaks_mb": [], "status": r["result"]["status"]}
    partitions = max(8, -(-rows // ROWS_PER_FILE))
    cluster = DaskProcesses(2, memory_limit, env)
    try:
        r = run_phase("pipeline", root, {**env, "DRIFTLINE_DASK_ADDRESS": cluster.address},
                      [*overrides, f"training.distributed={{partitions: {partitions}}}"])
        workers = cluster.peaks_mb()
    finally:
        cluster.stop()
    return {"rows": rows, "mode": mode, "seconds": r["seconds"], "flow_peak_mb": r["peak_rss_mb"],
            "worker_peaks_mb": [round(w) for w in workers], "status": r["result"]["status"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--modes", nargs="+", default=["in-process", "dask"], choices=["in-process", "dask"])
    parser.add_argument("--memory-limit", default=None, help="each worker's limit, e.g. 8GB")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="driftline-scale-"))
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
           "DVC_SITE_CACHE_DIR": str(work / "dvc-site"), "PYTHONPATH": str(REPO)}
    os.environ["DVC_SITE_CACHE_DIR"] = env["DVC_SITE_CACHE_DIR"]
    server, url = start_prefect(work / "prefect-home", env)
    env.update({"PREFECT_API_URL": url, "PREFECT_HOME": str(work / "prefect-home")})
    runs = []
    try:
        for rows in args.rows:
            root = work / f"rows-{rows}" / "project"
            began = time.perf_counter()
            build_project(root, rows, write_parts)
            files = -(-rows // ROWS_PER_FILE)
            print(f"{rows:,} rows in {files} files built in {time.perf_counter() - began:.0f} s", flush=True)
            for mode in args.modes:
                r = one_run(root, env, rows, mode, f"scale-{mode}-{rows}", args.memory_limit)
                r["rows_per_second"] = rows / r["seconds"]
                runs.append(r)
                print(f"{rows:>11,} rows  {mode:<10} {r['seconds']:8.1f} s  {r['rows_per_second']:9,.0f} rows/s  "
                      f"flow peak {r['flow_peak_mb']:7,.0f} MB  workers' peaks {r['worker_peaks_mb']} MB  "
                      f"[{r['status']}]", flush=True)
            shutil.rmtree(root.parent, ignore_errors=True)
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    ratios = []
    for rows in args.rows:
        at = {r["mode"]: r for r in runs if r["rows"] == rows}
        if len(at) == 2:
            ratios.append(results.ratio(f"{rows:,} rows: seconds, 2 Dask workers / in-process",
                                        at["dask"]["seconds"] / at["in-process"]["seconds"]))
            ratios.append(results.ratio(f"{rows:,} rows: flow process peak, 2 Dask workers / in-process",
                                        at["dask"]["flow_peak_mb"] / at["in-process"]["flow_peak_mb"]))
    results.write("scale", "The whole training pipeline (XGBoost) on growing data: in one process against 2 "
                  "local Dask workers", "make bench-scale",
                  settings={"rows": args.rows, "modes": args.modes, "memory_limit": args.memory_limit,
                            "rows_per_file": ROWS_PER_FILE, "workers": 2, "threads_per_worker": 1,
                            "model": "xgboost, 100 rounds, max_depth 6"},
                  ratios=ratios, figures={}, rounds=[{k: (round(v, 2) if isinstance(v, float) else v)
                                                       for k, v in r.items()} for r in runs])


if __name__ == "__main__":
    main()
