"""The application factory: `create_app(settings)` wires the store, registry, tokens, routes and errors.

The lifespan owns what must be opened and closed (the token database) and does the first model load,
so importing this module is cheap and side-effect free. Errors always leave as JSON
`{status_code, detail}`: library errors map once here (DataError → 422, ConfigError → 400,
UnknownNameError → 404, StoreError → 422, SourceError from a kline fetcher → 503) and anything
unexpected becomes a logged 500 without internals.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from cse_models.errors import ConfigError, DataError, SourceError, StoreError, UnknownNameError
from cse_models.store import open_store
from cse_serving.access_log import access_log_middleware
from cse_serving.auth import TokenStore
from cse_serving.decoding import StrictJsonRequest
from cse_serving.dependencies import DEPENDENCIES
from cse_serving.errors import error_response
from cse_serving.fetching import fetcher_from_settings
from cse_serving.live import LiveScorecard
from cse_serving.model_registry import ModelRegistry
from cse_serving.monitoring import ServingMetrics, StateCollector, metrics_middleware
from cse_serving.openapi import OperationDocs, PredictBodySchema, openapi_config
from cse_serving.predictor import KlineFetcher, Predictor
from cse_serving.ratelimit import AuthLockout, Rate, RateLimiter, rate_limit_middleware
from cse_serving.routes import CONTROLLERS
from cse_serving.scorecard import Scorecard
from cse_serving.settings import Settings
from cse_serving.watcher import StoreWatcher

log = logging.getLogger(__name__)


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
    return error_response(exc.status_code, detail, exc.headers)


def _mapped(status_code: int) -> Callable[[Request, Exception], Response[dict[str, Any]]]:
    def handler(_: Request, exc: Exception) -> Response[dict[str, Any]]:
        return error_response(status_code, str(exc))

    return handler


def handle_unexpected(request: Request, exc: Exception) -> Response[dict[str, Any]]:
    request_id = (request.scope.get("state") or {}).get("request_id")
    log.exception("unhandled error on %s %s (request %s)", request.method, request.url.path, request_id, exc_info=exc)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal server error")


RATE_LIMIT_EXEMPT = frozenset({"/healthz", "/readyz"})
"""The orchestrator's probes: never throttled, so a busy client cannot get a healthy pod restarted."""

EXCEPTION_HANDLERS = {
    HTTPException: handle_http,
    DataError: _mapped(HTTP_422_UNPROCESSABLE_ENTITY),
    ConfigError: _mapped(HTTP_400_BAD_REQUEST),
    UnknownNameError: _mapped(HTTP_404_NOT_FOUND),
    StoreError: _mapped(HTTP_422_UNPROCESSABLE_ENTITY),
    SourceError: _mapped(HTTP_503_SERVICE_UNAVAILABLE),
    Exception: handle_unexpected,
}


def serving_lifespan(
    settings: Settings,
    registry: ModelRegistry,
    watcher: StoreWatcher,
    predictor: Predictor,
    collector: StateCollector,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """What lives as long as the server: the token store, the live scorecard, the first load of the store
    and its watcher; closed in reverse on shutdown."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        tokens = TokenStore(settings.db_path) if settings.auth else None
        app.state.tokens = tokens
        if tokens is not None and tokens.count_active() == 0:
            log.warning(
                "auth is on and %s holds no active token: create one with `cse-serving token create`", tokens.where
            )
        live = (
            LiveScorecard(
                Scorecard(settings.scorecard_path, max_rows=settings.scorecard_max_rows),
                margin=settings.live_skill_margin,
            )
            if settings.scorecard_path
            else None
        )
        app.state.live = predictor.scorecard = collector.live = live
        report = await asyncio.to_thread(registry.sync)
        log.info(
            "serving %d model(s) from %s; %d failed to load", len(registry), settings.store_root, len(report.failed)
        )
        watcher.start()
        # Everything loaded so far (libraries, sessions, routes) lives as long as the process: out of the
        # collector's sight, a full collection no longer walks it, which cut p99 latency under load.
        gc.freeze()
        try:
            yield
        finally:
            await watcher.stop()
            if live is not None:
                live.close()
            if tokens is not None:
                tokens.close()

    return lifespan


def create_app(
    settings: Settings | None = None,
    *,
    registry: ModelRegistry | None = None,
    fetcher: KlineFetcher | None = None,
) -> Litestar:
    """Build the service from `settings` (default: the environment).

    `registry` may be injected (embedding, tests); by default one reads `settings.store_root`. `fetcher`
    lets /predict work without klines in the body (server-side fetching); by default it comes from
    `settings.source`, and without one such a request is a 422 saying so."""
    settings = settings or Settings.from_env()
    rate = Rate.parse(settings.rate_limit, name="rate_limit")
    lockout_rate = Rate.parse(settings.auth_lockout, name="auth_lockout")
    lockout = AuthLockout(lockout_rate, settings.auth_lockout_s) if lockout_rate else None
    metrics = ServingMetrics()
    registry = (
        registry
        if registry is not None
        else ModelRegistry(open_store(settings.store_root), settings, on_load=metrics.observe_load)
    )
    fetcher = fetcher or fetcher_from_settings(
        settings.source, api_url=settings.binance_api_url if settings.source == "binance" else None
    )
    watcher = StoreWatcher(registry, settings.watch_interval_s)
    predictor = Predictor(registry, metrics, fetcher=fetcher)
    collector = StateCollector(registry)
    metrics.registry.register(collector)

    lifespan = serving_lifespan(settings, registry, watcher, predictor, collector)

    return Litestar(
        route_handlers=CONTROLLERS,
        dependencies=DEPENDENCIES,
        state=State(
            {
                "settings": settings,
                "registry": registry,
                "predictor": predictor,
                "metrics": metrics,
                "watcher": watcher,
                "live": None,
                "tokens": None,
                "auth_lockout": lockout,
            }
        ),
        lifespan=[lifespan],
        middleware=[
            access_log_middleware(settings.access_log),
            metrics_middleware(metrics),
            *([rate_limit_middleware(RateLimiter(rate), RATE_LIMIT_EXEMPT)] if rate else []),
        ],
        request_class=StrictJsonRequest,
        plugins=[OperationDocs(RATE_LIMIT_EXEMPT), PredictBodySchema()],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(),
    )
