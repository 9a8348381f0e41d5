"""The web page for people (`GET /`) and its static files (`/static/...`): plain HTML + one JS file + the
vendored uPlot chart library. The page calls the same API as any client with the token the user enters;
it is public, so it holds no data itself. Served with a Content-Security-Policy that allows only this
origin's scripts and styles (no inline script) and with caching headers: the page is revalidated on every
visit, the static files are cached for an hour."""

from __future__ import annotations

from pathlib import Path

from litestar import Controller, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _static_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


class PageController(Controller):
    include_in_schema = False

    @get("/", media_type="text/html; charset=utf-8", sync_to_thread=False)
    def page(self) -> Response[bytes]:
        return Response(
            (STATIC_DIR / "index.html").read_bytes(),
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
