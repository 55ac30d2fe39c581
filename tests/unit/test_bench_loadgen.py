"""benchmarks/loadgen.py's open-loop generator: at a fixed offered load, a request's latency counts
from when it was due, so a server that stalls is charged for every request that waited behind the
stall (counted from when it was sent, they would look as fast as the rest)."""

from __future__ import annotations

import asyncio

from benchmarks.loadgen import run_at_rate
from benchmarks.serving import paired


async def _serve_with_one_stall(stall: float):
    """A loopback HTTP/1.1 server answering 200 at once, except the first request: `stall` s."""
    first = True

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal first
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the client closed its connection
                return
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            if first:
                first = False
                await asyncio.sleep(stall)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"


def test_the_open_loop_charges_the_requests_that_waited_behind_a_stall():
    async def offered():
        server, url = await _serve_with_one_stall(0.6)
        async with server:
            return await run_at_rate(url, 50, 2.0, [{"a": 1}], connections=1)

    opened = asyncio.run(offered())
    assert opened["requests"] == 100 and opened["errors"] == 0 and opened["offered_rps"] == 50
    # About 30 requests fell due during the 0.6 s stall and were sent after it, on the one
    # connection: more than 1% of the 100 waited at least 0.3 s from when they were due.
    assert opened["p99_ms"] > 300


def test_a_ratio_pairs_the_two_servers_within_each_round():
    rounds = [{"server": "a", "round": 1, "rows": 1, "rps": 100}, {"server": "b", "round": 1, "rows": 1, "rps": 4},
              {"server": "b", "round": 2, "rows": 1, "rps": 5}, {"server": "a", "round": 2, "rows": 1, "rps": 90},
              {"server": "a", "round": 1, "rows": 16, "rps": 1}]
    assert paired(rounds, "a", "b", "rps") == [25.0, 18.0]
