"""The web page for people (`GET /`) and its static files (`/static/...`): plain HTML + one JS file + the
vendored uPlot chart library. The page calls the same API as any client with the token the user enters;
it is public, so it holds no data itself. Served with a Content-Security-Policy that allows only this
origin's scripts and styles (no inline script) and with caching headers: the page is revalidated on every
visit, the static files are cached for an hour.

The page's own data comes from read-only views guarded by `require_reader`: a token as everywhere, or none
while `Settings.public_page` (CSE_SERVING_PUBLIC_PAGE) is on — see the settings module for what that opens
and why /predict stays closed."""

from __future__ import annotations

from pathlib import Path

from litestar import Controller, Response, get
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader, State
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.static_files import create_static_files_router

from cse_serving.auth import presented_token, require_token
from cse_serving.openapi import BEARER, error_responses

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
PUBLIC_META_OFF = b'<meta name="cse-public-page" content="off">'
PUBLIC_META_ON = b'<meta name="cse-public-page" content="on">'

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def require_reader(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Guard of the page's read-only views: `require_token`, except that a request without any token passes
    while `public_page` is on. A token that is sent is still checked, so a wrong one stays a 401."""
    headers = connection.headers
    if (
        connection.app.state.settings.public_page
        and presented_token(headers.get("authorization"), headers.get("x-api-key")) is None
    ):
        return
    await require_token(connection, handler)


READER_SECURITY = [{BEARER: []}]
"""OpenAPI security of a `require_reader` view: a token (the default; public mode is a deployment choice the
description of each such operation mentions). Declared by hand: `OperationDocs` derives it only for
`require_token` and `require_admin`."""


def reader_responses(*codes: int) -> dict[int, ResponseSpec]:
    """The error responses of a `require_reader` view: 401 and 429 (bad token, lockout) and `codes`."""
    return error_responses(401, 429, *codes)


PUBLIC_NOTE = " No token is needed while the server runs with CSE_SERVING_PUBLIC_PAGE on."


def _static_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


class PageController(Controller):
    include_in_schema = False

    @get("/", media_type="text/html; charset=utf-8", sync_to_thread=False)
    def page(self, state: State) -> Response[bytes]:
        """The page; in public mode it says so in a meta tag, so the page loads its views without asking
        for a token first (and without a refused request in the browser's console)."""
        html = (STATIC_DIR / "index.html").read_bytes()
        if state.settings.public_page:
            html = html.replace(PUBLIC_META_OFF, PUBLIC_META_ON)
        return Response(
            html,
            media_type="text/html; charset=utf-8",
            headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
        )


static_files = create_static_files_router(
    path="/static",
    directories=[STATIC_DIR],
    cache_control=CacheControlHeader(max_age=3600, public=True),
    after_request=_static_headers,
    include_in_schema=False,
)
