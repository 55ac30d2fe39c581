"""`driftline demo`: the delivery story on the embedded demo data, step by step, through the same
`driftline` commands a user types. The model server runs as its own process with live traffic
(and labels) flowing while a challenger is trained, rolled out by canary and rolled back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from driftline.config import Params, ServeSettings, Settings
from driftline.serving_client import ServingClient
from driftline.traffic import Traffic, demo_records

# Short windows so the story takes minutes; production rollouts use params.yaml's values.
DEMO_ROLLOUT = ["deployment.steps=[0.5, 1.0]", "deployment.window_seconds=5", "deployment.min_requests=200",
                "deployment.min_labels=30", "deployment.max_wait_seconds=120"]


class DemoFailed(RuntimeError):
    pass


def _cli(*args: str, echo: Callable[[str], None]) -> None:
    echo(f"$ driftline {' '.join(args)}")
    code = subprocess.call([sys.executable, "-m", "driftline.cli", *args])
    if code != 0:
        raise DemoFailed(f"`driftline {' '.join(args)}` exited {code}")


def run(settings: Settings, p: Params, params_path: Path, echo: Callable[[str], None],
        keep_serving: bool = True) -> None:
    cfg = ServeSettings()
    url = f"http://{cfg.host}:{cfg.port}"
    client = ServingClient(url, cfg.token)
    base = ["--params", str(params_path)]

    echo("1. The first champion (trained now unless it already exists)")
    _cli("train", *base, "--reason", "demo", echo=echo)

    echo(f"2. The model server on {url}, with live traffic: 40 requests/s, each labelled through /feedback")
    server = subprocess.Popen([sys.executable, "-m", "driftline.cli", "serve", *base],
                              env={**os.environ, "DRIFTLINE_SERVE_POLL_SECONDS": "1"})
    traffic, failed = None, True
    try:
        client.wait_for(lambda m: m.get("champion") in m.get("loaded", []), 120)
        traffic = Traffic(url, p, rate=40, threads=2, token=cfg.token)

        echo("3. A challenger: the same data, another training seed")
        _cli("train", *base, "--reason", "demo-challenger", "--set", "training.seed=7", echo=echo)

        echo("4. Canary: 50% then 100% of traffic, judged on live errors, latency, scores and labels")
        version = _candidate(settings, p)
        _cli("deploy", *base, "--version", version, "--strategy", "canary",
             *[a for o in DEMO_ROLLOUT for a in ("--set", o)], echo=echo)

        echo("5. Rollback from the CLI: @previous becomes @champion again (it was kept loaded)")
        _cli("rollback", *base, "--reason", "demo: rollback from the CLI", echo=echo)
        client.wait_for(lambda m: m.get("champion") not in (None, version), 30)  # the server has swapped back

        echo("6. Every alias change, append-only in MLflow")
        _cli("history", *base, echo=echo)
        if traffic.failures:
            raise DemoFailed(f"{len(traffic.failures)} requests failed during the demo; first: {traffic.failures[0]}")
        echo(f"{traffic.sent} live requests during the rollout and the rollback, none failed.")
        serving = client.models()["champion"]
        failed = False
    finally:
        if traffic is not None:
            traffic.stop()
        if failed or not keep_serving:  # a failed demo leaves no server behind
            server.terminate()
            server.wait(30)
    echo(f"\n{p.registry.model_name} v{serving} {'is served' if keep_serving else 'was served'} on {url}. Try:\n"
         f"  curl -s {url}/predict -H 'content-type: application/json' -d '{_example(p)}'\n"
         f"MLflow UI: {settings.mlflow_ui_url}   Prefect UI: {settings.prefect_ui_url}   (`make ui` starts both)")
    if keep_serving:
        echo("Ctrl-C stops the server.")
        try:
            server.wait()
        except KeyboardInterrupt:
            server.terminate()
            server.wait(30)


def _candidate(settings: Settings, p: Params) -> str:
    """@challenger; on a second run the seed-7 model already exists (training said "unchanged"),
    so the newest version that is not @champion."""
    from driftline import services
    from driftline.tracking import CHALLENGER, CHAMPION

    store = services.mlflow_store(settings, p).start()
    aliases = store.aliases()
    if CHALLENGER in aliases:
        return aliases[CHALLENGER]
    others = [v.version for v in store.versions() if v.version != aliases.get(CHAMPION)]
    if not others:
        raise DemoFailed("no challenger to deploy: training registered nothing new")
    return others[-1]


def _example(p: Params) -> str:
    records, _ = demo_records(p, 1, 5)
    return json.dumps(records[0])
