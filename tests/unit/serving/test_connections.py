"""The connection bookkeeping (`Connections`) and uvicorn's real protocols as the server runs them
(`protocol_class`: httptools, and h11 where httptools is missing), driven on an event loop through
an in-memory transport: no socket."""

from __future__ import annotations

import asyncio

import pytest
import uvicorn
from uvicorn.server import ServerState

from driftline.config import ServeSettings
from driftline.serving.connections import BOUNDED, FULL, Connections, protocol_class

GET = b"GET /health HTTP/1.1\r\nhost: driftline\r\n\r\n"


class Conn:
    def __init__(self, name: str):
        self.name, self.closed = name, False

    def close(self) -> None:
        self.closed = True


def test_the_cap_closes_the_connection_waiting_the_longest_else_refuses():
    tracked = Connections(3)
    a, b, c, d, e = (Conn(n) for n in "abcde")
    for conn in (a, b, c):
        assert tracked.admit(conn)
        tracked.wait(conn)
    tracked.busy(a)
    tracked.wait(a)  # a's request was answered: it waits again, now the newest waiting
    assert tracked.admit(d)
    assert b.closed and not (a.closed or c.closed)  # b has waited the longest
    tracked.busy(c)
    tracked.busy(d)
    assert tracked.admit(e) and not c.closed  # a was the only one waiting
    assert a.closed and tracked.open == {c, d, e}
    tracked.busy(e)
    assert not tracked.admit(Conn("f"))  # every open connection has a request under way
    tracked.closed(d)
    assert tracked.admit(Conn("g"))  # a closed connection leaves room


class Transport(asyncio.Transport):
    """What the protocol writes, and whether it closed the connection."""

    def __init__(self):
        super().__init__()
        self.written, self.closing = b"", False

    def write(self, data) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 8080) if name in ("sockname", "peername") else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _ok(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _server(header_timeout: float, max_connections: int, parser: str):
    cls = protocol_class(ServeSettings(header_timeout_seconds=header_timeout, max_connections=max_connections), parser)
    config = uvicorn.Config(_ok, http=cls, lifespan="off", log_level="warning")
    config.load()
    state = ServerState()

    def connect():
        proto, transport = cls(config=config, server_state=state, app_state={}), Transport()
        proto.connection_made(transport)
        return proto, transport
    return cls, connect


@pytest.mark.parametrize("parser", sorted(BOUNDED))
def test_the_header_deadline_is_armed_while_waiting_and_kept_through_a_trickled_header(parser):
    async def scenario():
        cls, connect = _server(60.0, 10, parser)
        proto, transport = connect()
        armed = proto.deadline
        assert armed is not None and proto in cls.tracked.waiting  # waiting from the accept
        proto.data_received(GET[:20])
        assert proto.deadline is armed  # a byte of header does not restart the deadline
        proto.data_received(GET[20:])
        assert proto.deadline is None and armed.cancelled() and proto not in cls.tracked.waiting
        for _ in range(10):
            await asyncio.sleep(0)
        assert transport.written.startswith(b"HTTP/1.1 200") and not transport.closing  # kept alive
        assert proto.deadline is not None and proto in cls.tracked.waiting  # waiting for the next request
        proto.connection_lost(None)
        assert proto.deadline is None and proto not in cls.tracked.open
    asyncio.run(scenario())


@pytest.mark.parametrize("parser", sorted(BOUNDED))
def test_a_connection_without_whole_headers_is_closed_at_the_deadline(parser):
    async def scenario():
        cls, connect = _server(0.01, 10, parser)
        _, quiet = connect()
        partial, half = connect()
        partial.data_received(GET[:25])
        await asyncio.sleep(0.2)  # well past the deadline
        assert quiet.closing and half.closing and not cls.tracked.open
        assert quiet.written == half.written == b""
    asyncio.run(scenario())


@pytest.mark.parametrize("parser", sorted(BOUNDED))
def test_a_full_server_makes_room_from_the_idle_and_refuses_when_all_are_busy(parser):
    async def scenario():
        _, connect = _server(60.0, 2, parser)
        _, idle = connect()
        busy, _ = connect()
        busy.data_received(b"POST /predict HTTP/1.1\r\nhost: d\r\ncontent-length: 10\r\n\r\n")  # body pending
        newcomer, newcomer_transport = connect()
        assert idle.closing and not newcomer_transport.closing  # the idle one made room
        newcomer.data_received(b"POST /predict HTTP/1.1\r\nhost: d\r\ncontent-length: 10\r\n\r\n")
        refused, transport = connect()
        assert transport.written == FULL and refused.refused
        refused.data_received(GET)  # never read as a request
        assert transport.written == FULL
        assert FULL.startswith(b"HTTP/1.1 503 ") and b"retry-after: 1" in FULL
        busy.connection_lost(None)
        again, fresh = connect()
        assert not again.refused and fresh.written == b""
    asyncio.run(scenario())


def test_the_server_runs_the_bounded_protocol_with_its_settings_and_room_for_its_sockets():
    import resource

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from driftline.serving.connections import Bounded
    from driftline.serving.server import room_for_connections, uvicorn_config

    config = uvicorn_config(_ok, ServeSettings(header_timeout_seconds=3.5, max_connections=7, port=9))
    assert issubclass(config.http, Bounded) and config.port == 9 and config.ws == "none"
    assert issubclass(config.http, HttpToolsProtocol)  # the C parser: h11 served 0.66 of its throughput
    assert config.http.header_timeout == 3.5 and config.http.tracked.limit == 7
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
        room_for_connections(1000)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == min(1256, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
