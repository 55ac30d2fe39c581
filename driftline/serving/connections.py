"""Bounded connections for the model server's uvicorn: a header deadline and a connection cap, on
uvicorn's httptools protocol (its h11 one where httptools is not installed).

uvicorn has neither: a connection that never sends a request's headers whole is kept for as long
as the client likes, and there is no limit on their number (measured: 1,100 connections sending
nothing were all still open after 40 s; uvicorn's `limit_concurrency` answers 503 to every new
request once that many connections are open, idle or not, so idle ones would lock good clients
out). Here a connection is *waiting* while the server owes it no response: from its accept, and
from each response's end, until the next request's headers arrive whole. A waiting connection is
closed at the header deadline; when the cap is reached, the one waiting the longest is closed to
make room, and only when none is waiting is the new connection answered 503 and closed.

httptools, not h11: measured against the server before the cap (which ran uvicorn's default,
httptools), the bounded h11 protocol served 0.66 of its throughput (`make bench-against`); the
bookkeeping itself cost under 2% (`benchmarks/connections.py`)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is uvicorn's optional C parser
    HttpToolsProtocol = None  # type: ignore[misc]

from driftline.config import ServeSettings

_FULL_BODY = b'{"detail": "too many open connections, each with a request under way; retry shortly"}'
# Written straight to the socket: the connection is refused before HTTP is parsed on it.
FULL = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nretry-after: 1\r\nconnection: close\r\n\r\n" % len(_FULL_BODY)) + _FULL_BODY
# How long a refused connection may linger to read its 503 before it is closed: closing a socket
# with the client's request unread sends a reset, which can destroy the 503 before it is read.
REFUSED_GRACE_SECONDS = 1.0


class Connections:
    """The open connections of one server, with those waiting for a request in the order they began
    to wait (the first is the one idle the longest)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.open: set[Any] = set()
        self.waiting: dict[Any, None] = {}  # insertion-ordered: oldest first
        self.refused = 0  # connections answered 503 for want of room

    def admit(self, conn) -> bool:
        """Whether `conn` may stay open; when full, room is made by closing the connection waiting
        the longest (its `close()`); False when every open connection has a request under way."""
        if len(self.open) >= self.limit:
            if not self.waiting:
                return False
            oldest = next(iter(self.waiting))
            self.closed(oldest)
            oldest.close()
        self.open.add(conn)
        return True

    def wait(self, conn) -> None:
        """`conn` now waits for a request's headers (it goes last in the order)."""
        if conn in self.open:
            self.waiting.pop(conn, None)
            self.waiting[conn] = None

    def busy(self, conn) -> None:
        """`conn` has a request under way."""
        self.waiting.pop(conn, None)

    def closed(self, conn) -> None:
        self.open.discard(conn)
        self.waiting.pop(conn, None)


class Bounded:
    """A header deadline and a place in its server's `Connections`, for one of uvicorn's HTTP
    protocols (`protocol_class` makes one subclass a server, carrying both)."""

    header_timeout: float
    tracked: Connections
    # The protocol's own, read here (uvicorn's H11Protocol and HttpToolsProtocol both have them).
    cycle: Any
    transport: Any
    loop: Any
    logger: Any

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.deadline: asyncio.TimerHandle | None = None
        self.refused = False

    def connection_made(self, transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if self.tracked.admit(self):
            self._watch()
            return
        self.refused = True  # every connection has a request under way: this one waits for room elsewhere
        transport.write(FULL)
        self.tracked.refused += 1
        if self.tracked.refused % 1000 == 1:  # a flood of them must not flood the log
            self.logger.warning("refused a connection (%d so far): %d are open, each with a request under way",
                                self.tracked.refused, len(self.tracked.open))
        self.loop.call_later(REFUSED_GRACE_SECONDS, transport.close)

    def data_received(self, data: bytes) -> None:
        if not self.refused:  # a refused connection's request is never read as one
            super().data_received(data)  # type: ignore[misc]
            self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)  # type: ignore[misc]
        self._disarm()
        self.tracked.closed(self)

    def close(self) -> None:
        """Close a waiting connection (the deadline passed, or room is needed)."""
        self._disarm()
        self.tracked.closed(self)
        self.transport.close()  # connection_lost then tells the parser, as for uvicorn's keep-alive timeout

    def _watch(self) -> None:
        """Arm the deadline when the connection begins to wait for a request, disarm it when one
        arrives: a connection sending a header a byte at a time still meets the same deadline."""
        waiting = (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing()
        if waiting and self.deadline is None:
            self.deadline = self.loop.call_later(self.header_timeout, self.close)
            self.tracked.wait(self)
        elif not waiting and self.deadline is not None:
            self._disarm()
            self.tracked.busy(self)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None


class BoundedH11Protocol(Bounded, H11Protocol):
    pass


BOUNDED: dict[str, type[Bounded]] = {"h11": BoundedH11Protocol}
if HttpToolsProtocol is not None:
    class BoundedHttpToolsProtocol(Bounded, HttpToolsProtocol):
        pass

    BOUNDED["httptools"] = BoundedHttpToolsProtocol


def protocol_class(cfg: ServeSettings, parser: str | None = None) -> type[Bounded]:
    """The protocol class for one server (uvicorn builds one instance a connection from it), on
    `parser` (httptools when installed, else h11)."""
    base = BOUNDED[parser or ("httptools" if "httptools" in BOUNDED else "h11")]

    class Protocol(base):  # type: ignore[valid-type, misc]
        header_timeout = cfg.header_timeout_seconds
        tracked = Connections(cfg.max_connections)

    return Protocol
