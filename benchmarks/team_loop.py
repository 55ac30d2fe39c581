"""The loop's wall time on the team profile against the embedded profile, in one run.

    make bench-team      (python -m benchmarks.team_loop [--rows 50000])

For each profile, in a fresh project with the demo data (DVC, git): `driftline up [--profile
team]` until it is up (timed apart), then the loop as a user meets it, timed from CI's command to
the retraining's end: CI's `prefect deployment run 'training-pipeline/training-ci' --watch`
registers the first champion; the model server(s) load it; 600 covariate-shifted requests;
the `drift-monitor` deployment runs (what its schedule does) and emits
`driftline.drift.detected`; the `retrain-on-drift` run it triggers completes. The embedded
profile runs its flows in the `driftline up` process on SQLite; the team profile on two process
workers, with PostgreSQL under Prefect and MLflow and the artifacts behind `mlflow server`.
The embedded profile is the baseline: the ratio is team / embedded."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks import results as bench_results
from benchmarks.pipeline import REPO, _free_port, _git, build_project

DRIFTED = 600


def _project(root: Path, rows: int) -> None:
    import yaml

    build_project(root, rows)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["monitoring"]["cooldown_hours"] = 0.0  # the champion is a minute old when drift comes
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "prefect.yaml").write_bytes((REPO / "prefect.yaml").read_bytes())
    (root / "flows").symlink_to(REPO / "flows")  # prefect.yaml's entrypoints, as in the repo
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "loop")


def _until(proc: subprocess.Popen, needle: str, seconds: float) -> str:
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    while not any(needle in line for line in lines):
        line = proc.stdout.readline()
        if (not line and proc.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError("the stack did not come up:\n" + "".join(lines[-40:]))
        lines.append(line)
    return "".join(lines)


def _run(env: dict, api: str, deployment: str) -> str:
    done = subprocess.run([sys.executable, "-m", "prefect", "deployment", "run", deployment, "--watch"],
                          env={**env, "PREFECT_API_URL": api}, capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(f"{deployment}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).json().get("champion") == "1"
    except (httpx.HTTPError, ValueError):
        return False


def loop(profile: str, root: Path, rows: int) -> dict[str, float]:
    from driftline.adapters.serving_client import client_records
    from driftline.config import load_params
    from driftline.core import demo_data, frames

    _project(root / "proj", rows)
    prefect_port, mlflow_port, serve_port = _free_port(), _free_port(), _free_port()
    while any(_used(serve_port + i) for i in (1, 2)):
        serve_port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "DRIFTLINE_"))}
    env.update(DRIFTLINE_PROJECT_DIR=str(root / "proj"), DRIFTLINE_PREFECT_UI_URL=f"http://127.0.0.1:{prefect_port}",
               DRIFTLINE_MLFLOW_UI_URL=f"http://127.0.0.1:{mlflow_port}", DRIFTLINE_SERVE_PORT=str(serve_port),
               DRIFTLINE_TEAM_POSTGRES_PORT=str(_free_port()), DRIFTLINE_SERVE_POLL_SECONDS="1",
               PREFECT_WORKER_QUERY_SECONDS="2", PREFECT_HOME=str(root / "prefect-home"))
    api = f"http://127.0.0.1:{prefect_port}/api"
    began = time.monotonic()
    up = subprocess.Popen([sys.executable, "-m", "driftline.app.cli", "up", "--profile", profile], cwd=root / "proj",
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = ""
    try:
        out = _until(up, "Ctrl-C stops everything", 600)
        started = time.monotonic() - began
        began = time.monotonic()
        _run(env, api, "training-pipeline/training-ci")
        trained = time.monotonic() - began
        replicas = [serve_port, serve_port + 1] if profile == "team" else [serve_port]
        deadline = time.monotonic() + 120
        while not all(_ready(p) for p in replicas):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the model servers did not load version 1: {replicas}")
            time.sleep(0.2)
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        records = client_records(frames.features(demo_data.generate(DRIFTED, 11, "covariate_shift"),
                                                 load_params(root / "proj" / "params.yaml").data))
        with httpx.Client(timeout=30) as client:
            for i, record in enumerate(records):
                client.post(f"http://127.0.0.1:{replicas[i % len(replicas)]}/predict", json=record).raise_for_status()
        time.sleep(3)  # the prediction log's writers flush every 2 s
        _run(env, api, "drift-monitor/drift-monitor")
        deadline = time.monotonic() + 600
        while not (runs := httpx.post(f"{api}/flow_runs/filter", json={
                "flow_runs": {"start_time": {"after_": since}, "state": {"type": {"any_": ["COMPLETED"]}}},
                "deployments": {"name": {"any_": ["retrain-on-drift"]}}}).json()):
            if time.monotonic() > deadline:
                raise RuntimeError("no retrain-on-drift run completed within 600 s")
            time.sleep(0.5)
        return {"up": started, "ci": trained, "loop": time.monotonic() - began, "retrainings": len(runs)}
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(180)
        except subprocess.TimeoutExpired:
            up.kill()
        if data := re.search(r"\(data: (/var/lib/driftline-postgres/\w+)/data;", out):
            shutil.rmtree(data.group(1), ignore_errors=True)  # as root PostgreSQL's data is outside the project


def _used(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="driftline-team-loop-") as tmp:
        for profile in ("embedded", "team"):
            results[profile] = loop(profile, Path(tmp) / profile, args.rows)
            r = results[profile]
            print(f"{profile:9s} up {r['up']:6.1f} s   CI training {r['ci']:5.1f} s   "
                  f"loop (CI to retrained) {r['loop']:6.1f} s", flush=True)
    e, t = results["embedded"], results["team"]
    print(f"team / embedded ({args.rows} rows): up {t['up'] / e['up']:.2f}x, loop {t['loop'] / e['loop']:.2f}x")
    bench_results.write(
        "team_loop", "The loop from CI's command to the drift retraining's end, team profile against embedded",
        "make bench-team", settings={"rows": args.rows, "drifted_requests": DRIFTED},
        ratios=[bench_results.ratio("up, team / embedded", t["up"] / e["up"]),
                bench_results.ratio("loop, team / embedded", t["loop"] / e["loop"])],
        figures={profile: {"up_seconds": round(r["up"], 2), "ci_training_seconds": round(r["ci"], 2),
                           "loop_seconds": round(r["loop"], 2), "retrainings": r["retrainings"]}
                 for profile, r in results.items()})


if __name__ == "__main__":
    main()
