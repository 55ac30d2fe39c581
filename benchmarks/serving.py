"""Serving benchmark, one run, same model, every server up at once and driven in interleaved
rounds (the order rotated each round; each ratio the median of the rounds' ratios, every round
printed and recorded), 16 keep-alive clients on loopback, `OMP_NUM_THREADS=1`:

- driftline's server against `mlflow models serve --env-manager local` on `POST /invocations`
  with the same bodies (MLflow's `dataframe_records`) of 1, 16 and 256 rows, by `wrk` (C, outside
  the servers' processes, not the bottleneck): throughput and p99 at saturation;
- both at a fixed offered load below MLflow's saturation (half of it), by an open-loop generator
  that counts each request's latency from when it was due: p99 below saturation;
- prediction logging on against off (1-row bodies);
- driftline's other protocols against its own `/predict`: `/invocations` and the Open Inference
  Protocol's `/v2/models/{name}/infer`;
- driftline's per-row cost at saturation against in-process batched `predict` (the floor).

    make bench-serving      # or: uv run python -m benchmarks.serving --rounds 3 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
from pathlib import Path

from benchmarks import results, wrk
from benchmarks.loadgen import run, run_at_rate, sample_records
from benchmarks.servers import REPO, register_model, serve_driftline, serve_mlflow, under_wrk

LOG_ON, LOG_OFF, MLFLOW = "driftline (log on)", "driftline (log off)", "mlflow models serve"
SIZES = (1, 16, 256)


def oip_body(record: dict) -> dict:
    """One record as an Open Inference Protocol request: one input a column, numbers as FP64."""
    from driftline.config import load_params

    features = load_params(REPO / "params.yaml").data.features
    kinds = {f.name: "FP64" if f.type == "numeric" else "BYTES" for f in features}
    return {"inputs": [{"name": c, "shape": [1], "datatype": kinds[c], "data": [v]} for c, v in record.items()]}


# driftline's protocols on one record: the path, and the body the record is sent as.
PROTOCOLS = {"/predict": lambda r: r, "/invocations": lambda r: {"dataframe_records": [r]},
             "/v2/models/loan-default/infer": oip_body}


def frames_body(batch: list[dict]) -> dict:
    return {"dataframe_records": batch}


def batches(size: int) -> list[list[dict]]:
    """Request bodies of `size` records: the 256 sample rows one by one, or 16 windows of a
    1,024-row sample."""
    if size == 1:
        return [[r] for r in sample_records()]
    pool = sample_records(1024)
    return [pool[(j * 61) % (len(pool) - size + 1):][:size] for j in range(16)]


def rotated(names: list[str], i: int) -> list[str]:
    return names[i % len(names):] + names[:i % len(names)]


def saturation_rounds(servers: dict, rounds: int, clients: int, seconds: float) -> list[dict]:
    """wrk on each server's /invocations in turn, for each request size."""
    out = []
    for size in SIZES:
        bodies = batches(size)
        names = [n for n in servers if size == 1 or n != LOG_OFF]  # the log's cost: 1-row bodies only
        for i in range(rounds):
            for name in rotated(names, i):
                proc, base = servers[name]
                r = under_wrk(proc, f"{base}/invocations", clients, seconds, bodies, frames_body)
                out.append({"rows": size, "round": i + 1, "server": name, **{k: round(v, 3) for k, v in r.items()}})
                print(f"{size:>3} rows  round {i + 1}  {name:<20} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.1f} ms  "
                      f"p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}/{r['requests']}  server "
                      f"{r['server_cores']:.2f} cores, {r['server_ms_per_request']:.2f} ms a request", flush=True)
    return out


def fixed_load_rounds(servers: dict, rate: float, rounds: int, seconds: float) -> list[dict]:
    """The open-loop generator at `rate` requests/s of one row on driftline and on MLflow."""
    out, bodies = [], batches(1)
    for i in range(rounds):
        for name in rotated([LOG_ON, MLFLOW], i):
            r = asyncio.run(run_at_rate(f"{servers[name][1]}/invocations", rate, seconds, bodies, frames_body))
            out.append({"rows": 1, "round": i + 1, "server": name, "offered_rps": round(rate, 1),
                        **{k: round(v, 3) for k, v in r.items()}})
            print(f"fixed {rate:.1f} req/s  round {i + 1}  {name:<20} p50 {r['p50_ms']:7.1f} ms  "
                  f"p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}/{r['requests']}", flush=True)
    return out


def protocol_rounds(proc, url: str, clients: int, seconds: float, rounds: int, records) -> list:
    """wrk on each of driftline's protocols in turn, `rounds` times, the order rotated each round."""
    out = []
    for i in range(rounds):
        for path in rotated(list(PROTOCOLS), i):
            r = under_wrk(proc, f"{url}{path}", clients, seconds, records, PROTOCOLS[path])
            out.append({"round": i + 1, "path": path, **{k: round(v, 3) for k, v in r.items()}})
            print(f"round {i + 1}  {path:<32} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.1f} ms  "
                  f"p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}/{r['requests']}  "
                  f"{r['server_ms_per_request']:.2f} server ms a request", flush=True)
    return out


def floor_rows_per_second(root: Path, seconds: float, batch: int) -> float:
    """In-process batched predict of the same model on `batch`-row frames: the cost floor per row."""
    import time

    from driftline import services
    from driftline.serving.loader import load_version
    from driftline.serving.rows import predict_batch

    with services.open_project(root, REPO / "params.yaml") as project:
        loaded = load_version(project.registry, project.registry.aliases()["champion"])
    records = sample_records(batch)
    rows, stop = 0, time.perf_counter() + seconds
    while time.perf_counter() < stop:
        predict_batch(loaded, records)
        rows += len(records)
    return rows / seconds


def paired(rounds: list[dict], top: str, bottom: str, key: str, rows: int = 1) -> list[float]:
    """`key` of `top` over `bottom` within each round, in round order."""
    at = {(r["server"], r["round"]): r[key] for r in rounds if r["rows"] == rows}
    return [at[top, n] / at[bottom, n] for n in sorted({n for _, n in at}) if (top, n) in at and (bottom, n) in at]


def median_ratio(name: str, each: list[float], goal: str | None = None) -> dict:
    value = statistics.median(each)
    print(f"{name:<62} = {value:8.3f}  (goal {goal or '-'}; rounds: {', '.join(f'{x:.3f}' for x in each)})")
    return results.ratio(name, value, goal, note="rounds: " + ", ".join(f"{x:.3f}" for x in each))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10, help="wrk seconds per server, size and round")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every comparison")
    parser.add_argument("--round-seconds", type=float, default=8, help="wrk seconds per protocol and round")
    args = parser.parse_args()
    if not wrk.available():
        raise SystemExit("wrk is not installed: `make bench-serving` installs it (make system-packages)")
    root = Path(tempfile.mkdtemp(prefix="driftline-serving-bench-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    os.environ["OMP_NUM_THREADS"] = "1"
    version = register_model(root)
    servers = {LOG_ON: serve_driftline(root, env, True), LOG_OFF: serve_driftline(root, env, False),
               MLFLOW: serve_mlflow(root, env, version)}
    one = batches(1)
    try:
        python_gen = {}
        for name, (_, base) in servers.items():  # warm-up, then the second generator's one reading
            asyncio.run(run(f"{base}/invocations", args.clients, 2, one, frames_body))
            python_gen[name] = asyncio.run(run(f"{base}/invocations", args.clients, args.seconds, one, frames_body))
        sat = saturation_rounds(servers, args.rounds, args.clients, args.seconds)
        mlflow_rps = statistics.median(r["rps"] for r in sat if r["server"] == MLFLOW and r["rows"] == 1)
        fixed = fixed_load_rounds(servers, mlflow_rps / 2, args.rounds, args.seconds)
        proto = protocol_rounds(servers[LOG_ON][0], servers[LOG_ON][1], args.clients, args.round_seconds,
                                args.rounds, sample_records())
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(30)
    floor16 = floor_rows_per_second(root, 5, args.clients)
    print()
    ratios = [median_ratio("throughput driftline / mlflow models serve, 1 row (wrk)",
                           paired(sat, LOG_ON, MLFLOW, "rps"), ">= 25")]
    for size in SIZES[1:]:
        ratios.append(median_ratio(f"throughput driftline / mlflow models serve, {size} rows (wrk)",
                                   paired(sat, LOG_ON, MLFLOW, "rps", size)))
    for size in SIZES:
        ratios.append(median_ratio(f"p99 driftline / mlflow models serve, {size} rows, saturated (wrk)",
                                   paired(sat, LOG_ON, MLFLOW, "p99_ms", size), "< 1"))
    ratios.append(median_ratio(f"p99 driftline / mlflow models serve at {mlflow_rps / 2:.0f} req/s offered",
                               paired(fixed, LOG_ON, MLFLOW, "p99_ms"), "< 1"))
    ratios.append(median_ratio("throughput with the prediction log / without, 1 row", paired(sat, LOG_ON, LOG_OFF,
                                                                                              "rps"), ">= 0.90"))
    by_path = {p: [r for r in proto if r["path"] == p] for p in PROTOCOLS}
    for path in list(PROTOCOLS)[1:]:
        each = [a["rps"] / b["rps"] for a, b in zip(by_path[path], by_path["/predict"], strict=True)]
        ratios.append(median_ratio(f"throughput {path} / /predict", each, ">= 0.95"))
    on_rps = statistics.median(r["rps"] for r in sat if r["server"] == LOG_ON and r["rows"] == 1)
    ratios.append(median_ratio(f"driftline 1-row rows/s / in-process predict of {args.clients}-row frames",
                               [on_rps / floor16]))
    pon, pml = python_gen[LOG_ON], python_gen[MLFLOW]
    print(f"the Python generator, one reading each: {pon['rps']:.1f} against {pml['rps']:.1f} req/s = "
          f"{pon['rps'] / pml['rps']:.1f}x")

    def medians(rows: list[dict], by: str) -> dict:
        keys = ("rps", "p50_ms", "p99_ms", "server_cores", "server_ms_per_request")
        groups: dict[str, list[dict]] = {}
        for r in rows:
            groups.setdefault(f"{r[by]}, {r.get('rows', 1)} rows", []).append(r)
        return {g: {k: round(statistics.median(r[k] for r in rs), 3) for k in keys if k in rs[0]}
                for g, rs in groups.items()}

    results.write(
        "serving", f"The model server against mlflow models serve on POST /invocations ({args.clients} clients; bodies "
        "of 1, 16 and 256 rows; saturated and at a fixed load); driftline's protocols against its /predict",
        "make bench-serving",
        settings={"seconds": args.seconds, "clients": args.clients, "OMP_NUM_THREADS": "1", "rounds": args.rounds,
                  "round_seconds": args.round_seconds, "fixed offered load (req/s)": round(mlflow_rps / 2, 1),
                  "body": "dataframe_records"},
        ratios=ratios,
        figures={"wrk, /invocations, medians of rounds": medians(sat, "server"),
                 "fixed offered load, medians of rounds": medians(fixed, "server"),
                 "driftline's protocols, medians of rounds (wrk)": medians(proto, "path"),
                 "python generator, /invocations, one reading": {n: {k: round(v, 3) for k, v in r.items()}
                                                                 for n, r in python_gen.items()},
                 f"rows per second, in-process batched predict, {args.clients}-row frames": round(floor16)},
        rounds=[*sat, *({**r, "kind": "fixed load"} for r in fixed), *proto])


if __name__ == "__main__":
    main()
