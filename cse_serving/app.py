"""The application factory: `create_app(settings)` wires the store, registry, tokens, routes and errors.

The lifespan owns what must be opened and closed (the token database) and does the first model load,
so importing this module is cheap and side-effect free. Errors always leave as JSON
`{status_code, detail}`: library errors map once here (DataError → 422, ConfigError → 400,
UnknownNameError → 404, StoreError → 422, SourceError from a kline fetcher → 503) and anything
unexpected becomes a logged 500 without internals.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from cse_models.errors import ConfigError, DataError, SourceError, StoreError, UnknownNameError
from cse_models.store import ModelStore
from cse_serving.auth import TokenStore
from cse_serving.dependencies import DEPENDENCIES
from cse_serving.monitoring import ServingMetrics, metrics_middleware
from cse_serving.registry import KlineFetcher, ModelRegistry
from cse_serving.routes import CONTROLLERS
from cse_serving.settings import Settings

log = logging.getLogger(__name__)


def _error(status_code: int, detail: str, headers: dict[str, str] | None = None) -> Response[dict[str, Any]]:
    return Response(
        {"status_code": status_code, "detail": detail},
        status_code=status_code,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _validation_detail(exc: ValidationException) -> str:
    """Fold Litestar's `extra` list into one readable sentence: which field, what was wrong."""
    problems = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key, message = item.get("key"), str(item.get("message"))
            if key == "data" and message.strip("'") == "data":
                problems.append("a JSON body is required")
            else:
                problems.append(message + (f" (at {key})" if key else ""))
    return f"{exc.detail}: {'; '.join(problems)}" if problems else str(exc.detail)


def handle_http(_: Request, exc: HTTPException) -> Response[dict[str, Any]]:
    detail = _validation_detail(exc) if isinstance(exc, ValidationException) else str(exc.detail)
    return _error(exc.status_code, detail, exc.headers)


def _mapped(status_code: int) -> Callable[[Request, Exception], Response[dict[str, Any]]]:
    def handler(_: Request, exc: Exception) -> Response[dict[str, Any]]:
        return _error(status_code, str(exc))

    return handler


def handle_unexpected(request: Request, exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(HTTP_500_INTERNAL_SERVER_ERROR, "internal server error")


EXCEPTION_HANDLERS = {
    HTTPException: handle_http,
    DataError: _mapped(HTTP_422_UNPROCESSABLE_ENTITY),
    ConfigError: _mapped(HTTP_400_BAD_REQUEST),
    UnknownNameError: _mapped(HTTP_404_NOT_FOUND),
    StoreError: _mapped(HTTP_422_UNPROCESSABLE_ENTITY),
    SourceError: _mapped(HTTP_503_SERVICE_UNAVAILABLE),
    Exception: handle_unexpected,
}


def create_app(
    settings: Settings | None = None,
    *,
    registry: ModelRegistry | None = None,
    fetcher: KlineFetcher | None = None,
) -> Litestar:
    """Build the service from `settings` (default: the environment).

    `registry` may be injected (embedding, tests); by default one reads `settings.store_root`. `fetcher`
    lets /predict work without klines in the body (server-side fetching); without it such a request is
    a 422 saying so."""
    settings = settings or Settings.from_env()
    registry = registry or ModelRegistry(ModelStore(settings.store_root), settings, fetcher=fetcher)
    metrics = ServingMetrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        tokens = TokenStore(settings.db_path) if settings.auth else None
        app.state.tokens = tokens
        if tokens is not None and tokens.count_active() == 0:
            log.warning(
                "auth is on and %s holds no active token: create one with `cse-serving token create`", settings.db_path
            )
        _, failed = registry.load_latest()
        log.info("serving %d model(s) from %s; %d failed to load", len(registry), settings.store_root, len(failed))
        try:
            yield
        finally:
            if tokens is not None:
                tokens.close()

    return Litestar(
        route_handlers=CONTROLLERS,
        dependencies=DEPENDENCIES,
        state=State({"settings": settings, "registry": registry, "metrics": metrics, "tokens": None}),
        lifespan=[lifespan],
        middleware=[metrics_middleware(metrics)],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="cse serving",
            version="1",
            description="Crypto signal engine: predictions from the ONNX models of the model store.",
            path="/schema",
            components=Components(security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")}),
            security=[{"BearerToken": []}],
        ),
    )
