"""`POST /predict` and `POST /feedback` as bare ASGI, with the limits a public endpoint needs:
JSON content types only (415), a body size limit (413), and a body read deadline (408)."""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI

from driftline.serving.intake import json_content_type


class HotPath:
    """`POST /predict` and `POST /feedback` as bare ASGI; everything else goes to FastAPI. A
    handler is `async (headers, body) -> (status, payload)`.

    At saturation FastAPI's middleware, routing and response encoding took about 1 ms of the
    event loop's ~1.4 ms per request here, and the event loop shares one GIL with the predict
    thread, so that time came straight off throughput."""

    def __init__(self, api: FastAPI, handlers: dict, max_body_bytes: int, body_timeout: float = 10.0,
                 on_refused=None):
        self.api, self.handlers, self.max_body_bytes = api, handlers, max_body_bytes
        self.body_timeout = body_timeout
        self.on_refused = on_refused or (lambda path, status: None)  # counts non-200 answers
        self.state = api.state

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path")
        handler = self.handlers.get(path) if scope["type"] == "http" else None
        if handler is None:
            await self.api(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if scope["method"] != "POST":
            status, payload = 405, {"detail": "method not allowed; use POST"}
        elif not json_content_type(headers.get(b"content-type", b"")):
            status, payload = 415, {"detail": "Content-Type must be application/json"}
        else:
            body = await _read_body(receive, headers, self.max_body_bytes, self.body_timeout)
            if body is None:
                return  # the client went away: nobody to answer
            if body is TOO_LARGE:
                status, payload = 413, {"detail": f"body larger than {self.max_body_bytes} bytes"}
            elif body is TOO_SLOW:
                status, payload = 408, {"detail": f"body not received within {self.body_timeout:g} s"}
            else:
                status, payload = await handler(headers, body)
        if status != 200:
            self.on_refused(path, status)
        await _send_json(send, status, payload)


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


async def _send_json(send, status: int, payload: dict) -> None:
    body = json.dumps(payload, allow_nan=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 503:
        headers.append((b"retry-after", b"1"))
    if status in (408, 413):  # the rest of the body may still be on its way: do not read it as a request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
