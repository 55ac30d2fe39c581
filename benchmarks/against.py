"""The model server at this commit against the same server at a base commit, on the same model:
what a change cost on the request path. The base is checked out in a temporary git worktree with
its own environment from its own uv.lock; both servers run at once (prediction log on, each to
its own directory) and are driven by wrk in turn, `/predict` with single-row bodies, 16 keep-alive
clients, the order swapped each round. The ratio is the median of the rounds' ratios, every round
printed and recorded.

    make bench-against BASE=<commit>   # or: uv run python -m benchmarks.against --base <commit>
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import results
from benchmarks.loadgen import sample_records
from benchmarks.pipeline import _free_port
from benchmarks.servers import REPO, ab_rounds, register_model, wait_http

NOW, BASE = "this commit", "base"


def base_tree(commit: str, where: Path) -> Path:
    """`commit` checked out at `where`, with its own environment (uv sync of its own lock)."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), commit], check=True,
                   capture_output=True)
    uv = [shutil.which("uv")] if shutil.which("uv") else ["python3", "-m", "uv"]
    subprocess.run([*uv, "sync", "--locked", "-q"], cwd=where, check=True,
                   env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(where / ".venv")})
    return where


def serve(tree: Path, python: str, root: Path, logs: Path, env: dict) -> tuple[subprocess.Popen, str]:
    """`driftline serve` from `tree` (its code, its params.yaml) on the project at `root`."""
    port = _free_port()
    proc = subprocess.Popen([python, "-m", "driftline.app.cli", "serve", "--params", str(tree / "params.yaml")],
                            cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**env, "PYTHONPATH": str(tree), "DRIFTLINE_PROJECT_DIR": str(root),
                                 "DRIFTLINE_SERVE_PORT": str(port), "DRIFTLINE_SERVE_LOG_DIR": str(logs)})
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/ready")
    return proc, url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True, help="the commit to compare this one with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    base_sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", args.base], capture_output=True, text=True,
                              check=True).stdout.strip()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("VIRTUAL_ENV", None)
    records = sample_records()
    with tempfile.TemporaryDirectory(prefix="driftline-against-") as tmp:
        tree = Path(tmp) / "base"
        try:
            base_tree(base_sha, tree)
            root = Path(tmp) / "project"
            version = register_model(root)
            print(f"@champion: version {version}; base {base_sha[:10]}", flush=True)
            servers = {NOW: serve(REPO, sys.executable, root, Path(tmp) / "logs-now", env),
                       BASE: serve(tree, str(tree / ".venv" / "bin" / "python"), root, Path(tmp) / "logs-base", env)}
            try:
                rounds = ab_rounds(servers, [NOW, BASE], args.rounds, args.clients, args.seconds, records)
            finally:
                for proc, _ in servers.values():
                    proc.terminate()
                    proc.wait(30)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
    at = {(r["server"], r["round"]): r for r in rounds}
    ratios, figures = [], {}
    for key, name in (("rps", "throughput"), ("p99_ms", "p99"), ("server_ms_per_request", "server CPU a request")):
        each = [at[NOW, n][key] / at[BASE, n][key] for n in range(1, args.rounds + 1)]
        value = statistics.median(each)
        shown = ", ".join(f"{x:.3f}" for x in each)
        print(f"{name} this commit / base = {value:.3f}  (rounds: {shown})")
        ratios.append(results.ratio(f"{name}, this commit / base {base_sha[:10]}", value,
                                    ">= 0.95" if key == "rps" else None, note=f"rounds: {shown}"))
        for server in (NOW, BASE):
            figures[f"{name} {server}"] = statistics.median(at[server, n][key] for n in range(1, args.rounds + 1))
    results.write("against", f"The model server against base {base_sha[:10]}, POST /predict, single-row bodies, "
                  f"{args.clients} keep-alive clients (wrk)", f"make bench-against BASE={args.base}",
                  ratios=ratios, figures=figures, rounds=rounds,
                  settings={"base": base_sha, "rounds": args.rounds, "round_seconds": args.seconds,
                            "clients": args.clients, "OMP_NUM_THREADS": "1", "prediction log": "on"})


if __name__ == "__main__":
    main()
