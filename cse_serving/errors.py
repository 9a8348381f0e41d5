"""The one error body of the service, `{status_code, detail}`, in the two places that answer with it.

Exception handlers answer through Litestar (`error_response`). Middleware and the server layer answer
before a handler runs or outside Litestar (rate limit, concurrency limit), so they write the same
body as raw ASGI messages (`send_error`) — one shape whoever answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import msgspec
from litestar import MediaType, Response
from litestar.types import Send


def error_response(status_code: int, detail: str, headers: dict[str, str] | None = None) -> Response[dict[str, Any]]:
    return Response(
        {"status_code": status_code, "detail": detail},
        status_code=status_code,
        media_type=MediaType.JSON,
        headers=headers,
    )


def error_bytes(status_code: int, detail: str) -> bytes:
    return msgspec.json.encode({"status_code": status_code, "detail": detail})


async def send_error(
    send: Send, status_code: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = (), *, close: bool = False
) -> None:
    """Answer `status_code` with the JSON error body on a raw ASGI `send`; `close` asks the client to
    open a new connection for its next request."""
    body = error_bytes(status_code, detail)
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    if close:
        raw_headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status_code, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def retry_after_header(seconds: float) -> str:
    """A Retry-After value: whole seconds, at least 1 (RFC 9110 delay-seconds)."""
    return str(max(1, math.ceil(seconds)))
