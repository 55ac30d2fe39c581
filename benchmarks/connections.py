"""What the bounded connections cost (issue 32: a header deadline and a connection cap in the model
server's HTTP protocol, uvicorn's httptools one): the server as it runs now against the same server
on uvicorn's own httptools protocol (the baseline: uvicorn's default, as before the cap), same
model, same settings, both up at once and driven in interleaved rounds by wrk (16 keep-alive
single-row clients on `POST /predict`), the order alternated each round; the ratio is of the
medians, every round printed.

    make bench-serving      # or: uv run python -m benchmarks.connections --rounds 5 --round-seconds 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import results, wrk
from benchmarks.loadgen import sample_records
from benchmarks.pipeline import _free_port
from benchmarks.servers import REPO, ab_rounds, register_model, wait_http

BASELINE, BOUNDED = "uvicorn's httptools (before)", "bounded httptools (now)"


def serve(root: Path, port: int, baseline: bool) -> None:
    """One server over the project in `root`, built as `driftline serve` builds it; the baseline
    only swaps the protocol back to uvicorn's own."""
    import uvicorn

    from driftline import services
    from driftline.serving.server import build_app, uvicorn_config

    with services.open_project(root, REPO / "params.yaml") as project:
        cfg = project.settings.serve.model_copy(update={"port": port, "log_dir": root / f"logs-{port}"})
        app = build_app(project.settings, project.params, cfg, project.registry)
        uvicorn.Server(uvicorn_config(app, cfg, **({"http": "httptools"} if baseline else {}))).run()


def start(root: Path, env: dict, baseline: bool) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.connections", "--serve", str(root), "--port", str(port),
                             *(["--baseline"] if baseline else [])], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/ready")
    return proc, url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round-seconds", type=float, default=8)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.baseline)
        return
    if not wrk.available():
        raise SystemExit("wrk is not installed: `make bench-serving` installs it (make system-packages)")
    root = Path(tempfile.mkdtemp(prefix="driftline-connections-bench-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "DRIFTLINE_PROJECT_DIR": str(root)}
    os.environ["OMP_NUM_THREADS"] = "1"
    register_model(root)
    records = sample_records()
    servers = {name: start(root, env, name == BASELINE) for name in (BASELINE, BOUNDED)}
    try:
        for _, url in servers.values():  # warm-up
            wrk.run(f"{url}/predict", args.clients, 2, records)
        rounds = ab_rounds(servers, [BASELINE, BOUNDED], args.rounds, args.clients, args.round_seconds, records)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(30)
    median = {name: {k: statistics.median(r[k] for r in rounds if r["server"] == name)
                     for k in ("rps", "p50_ms", "p99_ms", "server_ms_per_request")} for name in servers}
    now, before = median[BOUNDED], median[BASELINE]
    print(f"throughput bounded / uvicorn's httptools = {now['rps'] / before['rps']:.3f}  (goal >= 0.95); "
          f"p99 {now['p99_ms'] / before['p99_ms']:.3f}; server CPU a request "
          f"{now['server_ms_per_request'] / before['server_ms_per_request']:.3f}")
    results.write(
        "connections", f"The model server's bounded connections against uvicorn's own h11 protocol, POST /predict, "
        f"{args.clients} keep-alive single-row clients (wrk)", "make bench-serving",
        settings={"clients": args.clients, "rounds": args.rounds, "round_seconds": args.round_seconds,
                  "OMP_NUM_THREADS": "1", "prediction log": "on"},
        ratios=[results.ratio("throughput bounded / uvicorn's httptools (median of rounds)", now["rps"] / before["rps"],
                              ">= 0.95"),
                results.ratio("p99 bounded / uvicorn's httptools (median of rounds)", now["p99_ms"] / before["p99_ms"]),
                results.ratio("server CPU a request, bounded / uvicorn's httptools (median of rounds)",
                              now["server_ms_per_request"] / before["server_ms_per_request"])],
        figures={"medians of rounds": {n: {k: round(v, 3) for k, v in m.items()} for n, m in median.items()}},
        rounds=rounds)


if __name__ == "__main__":
    main()
