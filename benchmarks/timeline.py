"""Where a pipeline run's time goes: the task-run timeline of a first-champion run and of a
challenger run (against that champion) on the 1,000,000-row demo data, read back from the
benchmark's own Prefect server, beside the bare script's total.

    make bench-timeline     # or: uv run python -m benchmarks.timeline --rows 1000000

Each run is in a fresh process, as in `make bench`; the server is private to this benchmark,
so the newest flow run is the one just run.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

import httpx

from benchmarks.pipeline import bench_stack, run_phase


def timeline(url: str) -> list[str]:
    flow = httpx.post(f"{url}/flow_runs/filter", json={"sort": "EXPECTED_START_TIME_DESC", "limit": 1}).json()[0]
    tasks = httpx.post(f"{url}/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow["id"]]}},
                                                         "limit": 200}).json()
    start = datetime.fromisoformat(flow["start_time"])
    lines = [f"  flow run {flow['name']}: {flow['total_run_time']:.2f} s from its start to its end"]

    def seconds(stamp: str) -> float:
        return (datetime.fromisoformat(stamp) - start).total_seconds()

    spans = sorted((seconds(t["start_time"]), seconds(t["end_time"]), t["name"].rsplit("-", 1)[0])
                   for t in tasks if t["start_time"] and t["end_time"])
    lines += [f"  {a:6.2f} -> {b:6.2f} s  ({b - a:5.2f} s)  {name}" for a, b, name in spans]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with bench_stack(args.rows, "driftline-timeline-") as (root, env, url):
        bare = run_phase("bare", root, env, [])
        print(f"bare script (load, split, train, evaluate): {bare['seconds']:.2f} s", flush=True)
        for phase, overrides in (("first champion", []), ("challenger", ["training.seed=1"])):
            r = run_phase("pipeline", root, env, overrides)
            time.sleep(2)  # the last task states arrive as events
            print(f"\n{phase}: {r['seconds']:.2f} s in its process ({r['seconds'] / bare['seconds']:.2f}x bare), "
                  f"{r['result']}", flush=True)
            print("\n".join(timeline(url)), flush=True)


if __name__ == "__main__":
    main()
