"""The POST endpoints (`/predict`, `/feedback`, and the other protocols' `/invocations` and
`/v2/models/{name}/infer`) as bare ASGI, with the limits a public endpoint needs: the route's
content types only (415), the route's credentials checked from the headers before the body is read
(401/403), a body size limit (413), and a body read deadline (408)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI

from driftline.serving.intake import json_content_type

# The response header that carries the request id the server issued, whatever the protocol: the
# id a label names in /feedback. Not X-Request-ID, which is the caller's own correlation id.
REQUEST_ID = b"x-driftline-request-id"

Headers = dict[bytes, bytes]
# (status, payload) or (status, payload, response headers); a dict payload is sent as JSON, bytes
# as they are (the route's headers then say what they are).
Reply = tuple
Handler = Callable[[Headers, bytes], Awaitable[Reply]]
# Why a request is refused from its headers alone, as (status, message), or None to read its body.
Gate = Callable[[Headers], "tuple[int, str] | None"]


def detail(message: str, status: int = 400) -> dict:
    """driftline's own error body (the status is in the status line alone)."""
    return {"detail": message}


def json_only(headers: Headers) -> str | None:
    """None when the body is declared JSON, else why it is refused (intake.json_content_type)."""
    return None if json_content_type(headers.get(b"content-type", b"")) else "Content-Type must be application/json"


@dataclass(frozen=True)
class Route:
    """One bare-ASGI POST endpoint: its handler, which content types it takes (`accepts` says why
    not, or None), how its protocol words an error (`error(message, status) -> body`), and who may open it
    (`gate`: see `gates`; None: anyone, as far as the hot path knows)."""

    handler: Handler
    accepts: Callable[[Headers], str | None] = json_only
    error: Callable[[str, int], dict] = detail
    gate: Gate | None = None


def request_id_header(payload: dict) -> tuple:
    """The REQUEST_ID response header for an answer that names the request id the server issued."""
    rid = payload.get("request_id")
    return ((REQUEST_ID, rid.encode()),) if rid else ()


def with_request_id(handler: Handler) -> Handler:
    """`handler`, with the request id its answer names also sent as the REQUEST_ID header."""
    async def answer(headers: Headers, body: bytes) -> Reply:
        status, payload = await handler(headers, body)
        return status, payload, request_id_header(payload)
    return answer


class HotPath:
    """The routes' POST endpoints as bare ASGI; everything else goes to FastAPI.

    At saturation FastAPI's middleware, routing and response encoding took about 1 ms of the
    event loop's ~1.4 ms per request here, and the event loop shares one GIL with the predict
    thread, so that time came straight off throughput."""

    def __init__(self, api: FastAPI, routes: Mapping[str, Route | Handler], max_body_bytes: int,
                 body_timeout: float = 10.0, on_refused=None):
        self.api, self.max_body_bytes = api, max_body_bytes
        self.routes = {path: r if isinstance(r, Route) else Route(r) for path, r in routes.items()}
        self.body_timeout = body_timeout
        self.on_refused = on_refused or (lambda path, status: None)  # counts non-200 answers
        self.state = api.state

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path")
        route = self.routes.get(path) if scope["type"] == "http" else None
        if route is None:
            await self.api(scope, receive, send)
            return
        headers = dict(scope["headers"])
        headers[b":peer"] = (scope.get("client") or ("",))[0].encode()  # the caller's address (model_server.PEER)
        reply: Reply
        if scope["method"] != "POST":
            reply = 405, route.error("method not allowed; use POST", 405)
        elif route.gate is not None and (closed := route.gate(headers)) is not None:
            # Before the body: a caller without the credential does not get the server to read a
            # megabyte for it. The handler checks the credential again (defence in depth).
            status, message = closed
            reply = status, route.error(message, status), ((b"www-authenticate", b"Bearer"),) if status == 401 else ()
        elif (refused := route.accepts(headers)) is not None:
            reply = 415, route.error(refused, 415)
        else:
            body = await _read_body(receive, headers, self.max_body_bytes, self.body_timeout)
            if body is None:
                return  # the client went away: nobody to answer
            if body is TOO_LARGE:
                reply = 413, route.error(f"body larger than {self.max_body_bytes} bytes", 413)
            elif isinstance(body, bytes):
                reply = await route.handler(headers, body)
            else:  # TOO_SLOW
                reply = 408, route.error(f"body not received within {self.body_timeout:g} s", 408)
        if reply[0] != 200:
            self.on_refused(path, reply[0])
        await _send(send, *reply)


TOO_LARGE, TOO_SLOW = object(), object()


async def _read_body(receive, headers: dict[bytes, bytes], limit: int, timeout: float) -> bytes | object | None:
    """The whole body; TOO_LARGE as soon as it is known to exceed `limit`; TOO_SLOW when it has not
    arrived whole within `timeout` seconds (uvicorn has no body deadline: a client sending a byte
    a second would hold its connection, and its buffer, for as long as it likes); None when the
    client disconnected."""
    length = headers.get(b"content-length", b"")
    if length.isdigit() and int(length) > limit:
        return TOO_LARGE
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    return TOO_LARGE
                chunks.append(chunk)
                if not message.get("more_body"):
                    return b"".join(chunks)
    except TimeoutError:
        return TOO_SLOW


async def _send(send, status: int, payload: dict | bytes, extra: tuple = ()) -> None:
    if isinstance(payload, bytes):
        body, headers = payload, list(extra)
    else:
        body, headers = json.dumps(payload, allow_nan=False).encode(), [(b"content-type", b"application/json"), *extra]
    headers.append((b"content-length", str(len(body)).encode()))
    if status == 503:
        headers.append((b"retry-after", b"1"))
    if status in (408, 413):  # the rest of the body may still be on its way: do not read it as a request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
