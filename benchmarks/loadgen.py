"""A bounded load generator on loopback: N concurrent clients sending single-row requests.

    python -m benchmarks.loadgen http://127.0.0.1:8080/predict --clients 16 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx
import numpy as np


def sample_records(n: int = 256) -> list[dict]:
    from pathlib import Path

    from driftline.config import load_params
    from driftline.core import demo_data, frames

    p = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    x = frames.features(demo_data.generate(n, 99), p.data)
    return [{k: (None if v != v else v) for k, v in r.items()} for r in x.to_dict("records")]


async def run(url: str, clients: int, seconds: float, records: list[dict], wrap=lambda r: r) -> dict:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(i: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(timeout=30) as http:
            k = i
            while time.perf_counter() < stop:
                start = time.perf_counter()
                response = await http.post(url, json=wrap(records[k % len(records)]))
                latencies.append(time.perf_counter() - start)
                errors += response.status_code != 200
                k += clients

    began = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - began
    lat = np.array(latencies)
    return {"requests": len(lat), "errors": errors, "rps": len(lat) / elapsed,
            "p50_ms": float(np.percentile(lat, 50) * 1000), "p99_ms": float(np.percentile(lat, 99) * 1000)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--mlflow", action="store_true", help="wrap rows as MLflow's dataframe_records")
    args = parser.parse_args()
    wrap = (lambda r: {"dataframe_records": [r]}) if args.mlflow else (lambda r: r)
    print(json.dumps(asyncio.run(run(args.url, args.clients, args.seconds, sample_records(), wrap))))


if __name__ == "__main__":
    main()
