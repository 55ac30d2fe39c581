"""Serving benchmark, one run, same model, same load generators (16 concurrent single-row clients
on loopback): `wrk` for the headline figures (C, outside the server's process, not the
bottleneck) and the in-process Python generator as the second reference:

- driftline's server against `mlflow models serve --env-manager local` (throughput, p99), both
  driven on `POST /invocations` with the same body (MLflow's `dataframe_records`);
- driftline's other protocols against its own `/predict`: `/invocations` and the Open Inference
  Protocol's `/v2/models/{name}/infer`, in interleaved rounds (median, every round printed);
- driftline's per-row cost at saturation against in-process batched `predict` (the floor);
- prediction logging on against off.

    make bench-serving      # or: uv run python -m benchmarks.serving --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks import results, wrk
from benchmarks.loadgen import run, sample_records
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


def oip_body(record: dict) -> dict:
    """One record as an Open Inference Protocol request: one input a column, numbers as FP64."""
    from driftline.config import load_params

    features = load_params(REPO / "params.yaml").data.features
    kinds = {f.name: "FP64" if f.type == "numeric" else "BYTES" for f in features}
    return {"inputs": [{"name": c, "shape": [1], "datatype": kinds[c], "data": [v]} for c, v in record.items()]}


# driftline's protocols on one record: the path, and the body the record is sent as.
PROTOCOLS = {"/predict": lambda r: r, "/invocations": lambda r: {"dataframe_records": [r]},
             "/v2/models/loan-default/infer": oip_body}


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
    return proc, f"http://127.0.0.1:{port}/invocations"


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


def floor_rows_per_second(root: Path, seconds: float, batch: int) -> float:
    """In-process batched predict of the same model on `batch`-row frames: the cost floor per row."""

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


def protocol_rounds(proc: subprocess.Popen, url: str, clients: int, seconds: float, rounds: int, records) -> list:
    """wrk on each of driftline's protocols in turn, `rounds` times, the order rotated each round."""
    out, paths = [], list(PROTOCOLS)
    for i in range(rounds):
        for path in paths[i % len(paths):] + paths[:i % len(paths)]:
            r = under_wrk(proc, f"{url}{path}", clients, seconds, records, PROTOCOLS[path])
            out.append({"round": i + 1, "path": path, **{k: round(v, 3) for k, v in r.items()}})
            print(f"round {i + 1}  {path:<32} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.1f} ms  "
                  f"p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}/{r['requests']}  "
                  f"{r['server_ms_per_request']:.2f} server ms a request", flush=True)
    return out


def medians(rounds: list[dict]) -> dict[str, dict]:
    import statistics

    return {path: {k: statistics.median(r[k] for r in rounds if r["path"] == path)
                   for k in ("rps", "p50_ms", "p99_ms", "server_ms_per_request")} for path in PROTOCOLS}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the protocols' comparison")
    parser.add_argument("--round-seconds", type=float, default=8)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="driftline-serving-bench-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    os.environ["OMP_NUM_THREADS"] = "1"
    version = register_model(root)
    records = sample_records()
    if not wrk.available():
        raise SystemExit("wrk is not installed: `make bench-serving` installs it (make system-packages)")
    results_by, python_gen, rounds = {}, {}, []
    invocations = PROTOCOLS["/invocations"]  # MLflow's dataframe_records: the same body to both servers
    for name, start in (
        ("driftline (log on)", lambda: serve_driftline(root, env, True)),
        ("driftline (log off)", lambda: serve_driftline(root, env, False)),
        ("mlflow models serve", lambda: serve_mlflow(root, env, version)),
    ):
        proc, base = start()
        url = f"{base}/invocations"
        try:
            asyncio.run(run(url, args.clients, 2, records, invocations))  # warm-up
            results_by[name] = under_wrk(proc, url, args.clients, args.seconds, records, invocations)
            python_gen[name] = asyncio.run(run(url, args.clients, args.seconds, records, invocations))
            if name == "driftline (log on)":
                rounds = protocol_rounds(proc, base, args.clients, args.round_seconds, args.rounds, records)
        finally:
            proc.terminate()
            proc.wait(30)
        for generator, r in (("wrk", results_by[name]), ("python", python_gen[name])):
            print(f"{name:<22} {generator:<7} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.1f} ms  "
                  f"p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}/{r['requests']}", flush=True)
        r = results_by[name]
        print(f"{'':<22} CPU under wrk: the server {r['server_cores']:.2f} cores ({r['threads']} threads, the "
              f"busiest {r['busiest_thread_cores']:.2f}), {r['server_ms_per_request']:.2f} ms a request; "
              f"wrk {r['wrk_cores']:.2f} cores", flush=True)
    floor = floor_rows_per_second(root, 5, 64)
    floor16 = floor_rows_per_second(root, 5, args.clients)
    on, off, ml = (results_by[k] for k in ("driftline (log on)", "driftline (log off)", "mlflow models serve"))
    by_path = medians(rounds)
    native, mlflow_path, oip_path = (by_path[p] for p in PROTOCOLS)
    print()
    pon, pml = python_gen["driftline (log on)"], python_gen["mlflow models serve"]
    print("POST /invocations, the same body to both servers:")
    print(f"throughput driftline / mlflow models serve = {on['rps'] / ml['rps']:.1f}x with wrk  (goal >= 25x); "
          f"{pon['rps'] / pml['rps']:.1f}x with the Python generator")
    print(f"p99 driftline / mlflow models serve        = {on['p99_ms'] / ml['p99_ms']:.2f}  (goal < 1)")
    print(f"driftline's protocols, median of {args.rounds} interleaved rounds of {args.round_seconds:g} s:")
    for path, m in by_path.items():
        print(f"  {path:<32} {m['rps']:8.1f} req/s  p99 {m['p99_ms']:7.1f} ms  "
              f"throughput / /predict = {m['rps'] / native['rps']:.3f}  p99 / /predict = "
              f"{m['p99_ms'] / native['p99_ms']:.3f}")
    print(f"in-process batched predict (64-row frames) = {floor:.0f} rows/s; driftline serves "
          f"{on['rps']:.0f} rows/s = {on['rps'] / floor:.1%} of that floor")
    print(f"in-process batched predict ({args.clients}-row frames, the largest batch {args.clients} single-row "
          f"clients can form) = {floor16:.0f} rows/s; driftline = {on['rps'] / floor16:.1%} of it")
    print(f"prediction logging cost: throughput on / off = {on['rps'] / off['rps']:.3f}  (goal >= 0.90)")
    keep = ("rps", "p50_ms", "p99_ms", "errors", "requests", "server_cores", "busiest_thread_cores", "threads",
            "server_ms_per_request", "wrk_cores")

    def kept(by: dict) -> dict:
        return {name: {k: round(v, 3) for k, v in r.items() if k in keep} for name, r in by.items()}

    floor_of = f"in-process batched predict, {args.clients}-row frames"
    results.write(
        "serving", f"The model server against mlflow models serve on POST /invocations, {args.clients} single-row "
        "clients; driftline's protocols against its /predict", "make bench-serving",
        settings={"seconds": args.seconds, "clients": args.clients, "OMP_NUM_THREADS": "1", "rounds": args.rounds,
                  "round_seconds": args.round_seconds, "body": "dataframe_records, one record"},
        ratios=[results.ratio("throughput driftline / mlflow models serve, /invocations (wrk)", on["rps"] / ml["rps"],
                              ">= 25"),
                results.ratio("throughput driftline / mlflow models serve, /invocations (Python generator)",
                              pon["rps"] / pml["rps"]),
                results.ratio("p99 driftline / mlflow models serve, /invocations (wrk)", on["p99_ms"] / ml["p99_ms"],
                              "< 1"),
                results.ratio("throughput /invocations / /predict (median of rounds)",
                              mlflow_path["rps"] / native["rps"], ">= 0.95"),
                results.ratio("throughput /v2/models/{name}/infer / /predict (median of rounds)",
                              oip_path["rps"] / native["rps"], ">= 0.95"),
                results.ratio("p99 /invocations / /predict (median of rounds)",
                              mlflow_path["p99_ms"] / native["p99_ms"]),
                results.ratio("p99 /v2/models/{name}/infer / /predict (median of rounds)",
                              oip_path["p99_ms"] / native["p99_ms"]),
                results.ratio("throughput with the prediction log / without, /invocations", on["rps"] / off["rps"],
                              ">= 0.90"),
                results.ratio("driftline / in-process batched predict, 64-row frames", on["rps"] / floor),
                results.ratio(f"driftline / {floor_of}", on["rps"] / floor16)],
        figures={"wrk, /invocations": kept(results_by), "python generator, /invocations": kept(python_gen),
                 "driftline's protocols, medians of rounds (wrk)": {p: {k: round(v, 3) for k, v in m.items()}
                                                                    for p, m in by_path.items()},
                 "rows per second, in-process batched predict, 64-row frames": round(floor),
                 f"rows per second, {floor_of}": round(floor16)},
        rounds=rounds)


if __name__ == "__main__":
    main()
