"""Request ids on every response, and an optional access log line per request.

`X-Request-ID`: the client's own id when it is sane (1–128 characters of `A-Za-z0-9._:-`: anything
else could forge or split log lines), else a fresh random one; it is returned on the response and kept
in the request's state (`request_id`) so that an error logged while handling it names it.

The access log (off by default: `CSE_SERVING_ACCESS_LOG=1` or `cse-serving serve --access-log`) writes one
line per request to the `cse_serving.access` logger: request id, method, route template (the quoted raw
path only when no route matched), status, duration in ms and the NAME of the token that authenticated
(`-` without one). Never the token itself.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable

from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("cse_serving.access")

REQUEST_ID_HEADER = b"x-request-id"
_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


def request_id(scope: Scope) -> str:
    """The client's X-Request-ID when sane, else a new random id (64 bits, hex)."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if _SANE_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return secrets.token_hex(8)


def access_log_middleware(enabled: bool) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware factory: tag every HTTP request with an id; log it when `enabled`."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            rid = request_id(scope)
            state = scope.setdefault("state", {})  # type: ignore[typeddict-item]
            state["request_id"] = rid
            header = (REQUEST_ID_HEADER, rid.encode("ascii"))
            status = 500
            start = time.perf_counter()

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", ()), header]
                await send(message)

            try:
                await app(scope, receive, send_with_id)
            finally:
                if enabled:
                    _log_line(scope, rid, status, time.perf_counter() - start)

        return middleware

    return factory


def _log_line(scope: Scope, rid: str, status: int, seconds: float) -> None:
    route = scope.get("path_template") or repr(scope["path"][:200])
    token = scope.get("state", {}).get("token")
    log.info(
        "%s %s %s %d %.2fms token=%s", rid, scope["method"], route, status, seconds * 1e3, getattr(token, "name", "-")
    )
