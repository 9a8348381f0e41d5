"""The HTTP server: uvicorn (httptools, uvloop) with read deadlines and a concurrency limit.

uvicorn bounds only the idle time between two requests of a keep-alive connection
(`timeout_keep_alive`); a client that connects and sends nothing, or half a request line, half its
headers or half its body, holds its connection (and, for a half body, a handler waiting on it) for
as long as it likes. `DeadlineHttpProtocol` adds the deadlines a front server like nginx has:

- `header_timeout_s`: from a connection's start, or from the first byte of a request on a kept-alive
  connection, until the request's headers are complete;
- `body_timeout_s`: from the end of the headers until the body is complete.

A deadline that passes closes the connection (with a JSON 408 when the client had begun a request and
no handler is running yet); a slow client cannot stretch a deadline by trickling bytes. Timers are armed
only when a request is still incomplete once the bytes at hand are parsed, so the usual request, read
whole in one go, costs no timer at all.

`limit_concurrency` is uvicorn's own (open connections or running requests): past it, requests are
answered 503 with the service's JSON error body and `Retry-After`, not uvicorn's plain text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from cse_serving.errors import error_bytes, send_error
from cse_serving.settings import Settings

log = logging.getLogger(__name__)

_IDLE, _HEADERS, _BODY = "idle", "headers", "body"


class ServerConfig(uvicorn.Config):
    """uvicorn's Config plus the read deadlines `DeadlineHttpProtocol` enforces."""

    def __init__(self, app: Any, *, header_timeout_s: float, body_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s


async def _over_limit(scope: Any, receive: Any, send: Any) -> None:
    await send_error(
        send, 503, "the server is at its concurrency limit; retry shortly", [(b"retry-after", b"1")], close=True
    )


class DeadlineHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body read deadlines (see the module)."""

    def __init__(self, config: ServerConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._timeouts = {_HEADERS: config.header_timeout_s, _BODY: config.body_timeout_s}
        self._phase = _HEADERS
        self._requests = 0
        self._armed: tuple[str, int] = (_IDLE, 0)
        self._deadline: asyncio.TimerHandle | None = None

    # ----------------------------------------------------------------- deadlines
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._armed != (self._phase, self._requests):
            self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _HEADERS
        self._requests += 1

    def on_headers_complete(self) -> None:
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            log.warning("concurrency limit of %d reached: answering 503", limit)
            app, self.app, self.limit_concurrency = self.app, _over_limit, None
            try:
                super().on_headers_complete()
            finally:
                self.app, self.limit_concurrency = app, limit
        else:
            super().on_headers_complete()
        self._phase = _BODY

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = _IDLE

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are not HTTP, with the JSON error body instead of plain text."""
        self._write_error(400, msg)

    def _write_error(self, status: int, detail: str) -> None:
        body = error_bytes(status, detail)
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
                    b"content-type: application/json\r\nconnection: close\r\n",
                    b"content-length: " + str(len(body)).encode() + b"\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()

    def _arm(self) -> None:
        self._cancel()
        self._armed = (self._phase, self._requests)
        if self._phase != _IDLE and not self.transport.is_closing():
            self._deadline = self.loop.call_later(self._timeouts[self._phase], self._deadline_passed, self._phase)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self, phase: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        log.debug("closing %s: request %s not received within %.3g s", self.client, phase, self._timeouts[phase])
        began = self._requests > 0 and (self.cycle is None or self.cycle.response_complete)
        if phase == _HEADERS and began:
            self._write_error(408, f"the request headers did not arrive within {self._timeouts[phase]:g} s")
        else:
            self.transport.close()


def server_config(app: Any, settings: Settings, *, log_level: str = "info") -> ServerConfig:
    return ServerConfig(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,  # cse_serving.access_log writes ours (with request ids and token names)
        http=DeadlineHttpProtocol,
        timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]
        limit_concurrency=settings.limit_concurrency or None,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
    )


def serve(app: Any, settings: Settings, *, log_level: str = "info") -> bool:
    """Serve `app` until SIGINT/SIGTERM; False when it could not start (e.g. the port is taken)."""
    server = uvicorn.Server(server_config(app, settings, log_level=log_level))
    with contextlib.suppress(KeyboardInterrupt):  # a SIGINT uvicorn re-raises once it has shut down
        server.run()
    return server.started
