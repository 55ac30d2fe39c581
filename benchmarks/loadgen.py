"""A bounded load generator on loopback: N concurrent keep-alive clients sending single-row requests.

It writes HTTP/1.1 by hand on asyncio streams. An httpx-based generator topped out at ~840
requests/s against a server that does nothing (this one: ~10,000/s), so on two shared cores it
measured itself, not the server. Both servers in a benchmark get this same generator.

    python -m benchmarks.loadgen http://127.0.0.1:8080/predict --clients 16 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

import numpy as np


def sample_records(n: int = 256) -> list[dict]:
    from pathlib import Path

    from driftline.adapters.serving_client import client_records
    from driftline.config import load_params
    from driftline.core import demo_data, frames

    p = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    return client_records(frames.features(demo_data.generate(n, 99), p.data))


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes,
                    body: bytes) -> int:
    writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    status = int((await reader.readline()).split()[1])
    length, chunked = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return status
    while size := int((await reader.readline()).strip(), 16):
        await reader.readexactly(size + 2)
    await reader.readline()
    return status


def _requests(url: str, records: list, wrap):
    """The URL's parts, the request head every request shares, and each record's JSON body."""
    parts = urlsplit(url)
    head = (f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\n").encode()
    return parts, head, [json.dumps(wrap(r)).encode() for r in records]


async def run(url: str, clients: int, seconds: float, records: list[dict], wrap=lambda r: r) -> dict:
    parts, head, bodies = _requests(url, records, wrap)
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(i: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            k = i
            while time.perf_counter() < stop:
                start = time.perf_counter()
                status = await _exchange(reader, writer, head, bodies[k % len(bodies)])
                latencies.append(time.perf_counter() - start)
                errors += status != 200
                k += clients
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - began
    lat = np.array(latencies)
    return {"requests": len(lat), "errors": errors, "rps": len(lat) / elapsed,
            "p50_ms": float(np.percentile(lat, 50) * 1000), "p99_ms": float(np.percentile(lat, 99) * 1000)}


async def run_at_rate(url: str, rate: float, seconds: float, records: list, wrap=lambda r: r,
                      connections: int = 16) -> dict:
    """Open loop at a fixed offered load: request i is due at the start + i / `rate`, whatever the
    earlier ones did, and its latency counts from when it was due, so a server that stalls is
    charged for every request that waited (no coordinated omission). `connections` keep-alive
    connections take the due requests in turn."""
    parts, head, bodies = _requests(url, records, wrap)
    total, taken, errors = int(rate * seconds), 0, 0
    latencies: list[float] = []
    began = time.perf_counter()

    async def connection() -> None:
        nonlocal taken, errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while taken < total:
                i, taken = taken, taken + 1
                due = began + i / rate
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                status = await _exchange(reader, writer, head, bodies[i % len(bodies)])
                latencies.append(time.perf_counter() - due)
                errors += status != 200
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    lat = np.array(latencies)
    return {"requests": len(lat), "errors": errors, "offered_rps": rate,
            "rps": len(lat) / (time.perf_counter() - began),
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
