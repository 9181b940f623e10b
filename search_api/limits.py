"""Request size limits, enforced before anything reads the request: the largest valid search
body (100 filter values of each kind, a 500-character query) is far below them."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024


class RequestLimits:
    """413 for a body over MAX_BODY_BYTES (declared or streamed), 431 for headers over
    MAX_HEADER_BYTES in total; both as JSON ``{"detail": ...}`` like every other error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        if sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES:
            await _refuse(send, 431, f"request headers over {MAX_HEADER_BYTES} bytes")
            return
        declared = dict(headers).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await _refuse(send, 413, f"request body over {MAX_BODY_BYTES} bytes")
            return
        if declared is None:
            # A streamed (chunked) body: read it here, up to the limit, then hand it on.
            buffered = await _read_bounded(receive)
            if buffered is None:
                await _refuse(send, 413, f"request body over {MAX_BODY_BYTES} bytes")
                return
            receive = _replay(buffered, receive)
        await self.app(scope, receive, send)


async def _read_bounded(receive: Receive) -> list[Message] | None:
    """Every body message of a request, or None once they pass MAX_BODY_BYTES."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return None
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives the buffered messages first, then whatever comes next."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
        }
    )  # fmt: skip
    await send({"type": "http.response.body", "body": body})
