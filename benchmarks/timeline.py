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

from benchmarks import results
from benchmarks.pipeline import bench_stack, run_phase


def timeline(url: str) -> tuple[list[str], dict]:
    """The newest flow run's task spans, in seconds from its start: printed lines, and as data."""
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
    data = {"flow_run_seconds": round(flow["total_run_time"], 3),
            "tasks": [{"task": name, "start": round(a, 2), "end": round(b, 2)} for a, b, name in spans]}
    return lines, data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with bench_stack(args.rows, "driftline-timeline-") as (root, env, url):
        bare = run_phase("bare", root, env, [])
        print(f"bare script (load, split, train, evaluate): {bare['seconds']:.2f} s", flush=True)
        runs = {}
        for phase, overrides in (("first champion", []), ("challenger", ["training.seed=1"])):
            r = run_phase("pipeline", root, env, overrides)
            time.sleep(2)  # the last task states arrive as events
            print(f"\n{phase}: {r['seconds']:.2f} s in its process ({r['seconds'] / bare['seconds']:.2f}x bare), "
                  f"{r['result']}", flush=True)
            lines, data = timeline(url)
            print("\n".join(lines), flush=True)
            runs[phase] = {"process_seconds": round(r["seconds"], 3), **data}
    results.write(
        "timeline", "Where a pipeline run's time goes: its task-run timeline", "make bench-timeline",
        settings={"rows": args.rows},
        ratios=[results.ratio(f"{phase} / bare", run["process_seconds"] / bare["seconds"])
                for phase, run in runs.items()],
        figures={"bare_seconds": round(bare["seconds"], 3), **runs})


if __name__ == "__main__":
    main()
