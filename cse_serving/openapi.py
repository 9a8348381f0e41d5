"""The OpenAPI document: what each operation can answer, which ones need a token, the /predict body's shapes.

Litestar documents a 200 and, for handlers with parameters, a 400 with its own error shape. The
service's error answers are always `ErrorBody` `{status_code, detail}`, and which ones an operation
can give follows from what it is, so `OperationDocs` derives them once per route as it is registered,
instead of each decorator repeating (and drifting from) a list:

- every operation: 503 (the server's concurrency limit), and 429 unless its path is exempt from the
  rate limit (the orchestrator's probes);
- guarded by `require_token` / `require_admin`: bearer security, 401, and 429 for a locked-out client;
  `require_admin` also 403;
- taking a body: 400 (not JSON, not UTF-8, too deep, a value of the wrong type), 413 (too large),
  422 (unusable values) and 404 (it names a model, which may not be loaded);
- taking path parameters: 400 (a malformed name) and 404 (no such model or version).

Responses a route declares itself (`responses=` on its decorator) win over derived ones. Security is
declared per operation, never globally: /healthz, /readyz, /metrics and /schema take no token.

`PredictBodySchema` documents /predict's body as what it is, either one request (`symbol` required) or
a batch (`requests` required), instead of the flat Struct that decodes both.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, OpenAPIType, Schema, SecurityScheme
from litestar.plugins import OpenAPISchemaPlugin, ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from litestar.typing import FieldDefinition

from cse_serving.auth import require_admin, require_token
from cse_serving.schemas import ErrorBody, PredictBody, PredictRequest

BEARER = "BearerToken"

ERRORS = {
    400: "The body is not JSON, not UTF-8 or nested too deeply, or a value has the wrong type; or a path "
    "parameter is malformed. `detail` names the field.",
    401: "No API token, or an unknown or revoked one: send `Authorization: Bearer <token>` or `X-API-Key`.",
    403: "The token's role may not do this (admin only).",
    404: "No such model or version is loaded; `detail` lists what is.",
    413: "The body is larger than the server accepts.",
    422: "The body is well-formed but unusable: too few or invalid klines, a quoted number, an empty batch; "
    "`detail` says which value.",
    429: "Too many requests for this token (or client address without one), or this client is locked out after "
    "repeated bad tokens. `Retry-After` says when to retry.",
    503: "The server is at its concurrency limit (`Retry-After`), or the kline source failed.",
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """`ErrorBody` responses for `codes`, described from `ERRORS`."""
    return {
        code: ResponseSpec(data_container=ErrorBody, description=ERRORS[code], generate_examples=False)
        for code in sorted(codes)
    }


def derived_error_codes(route: HTTPRoute, handler: HTTPRouteHandler, rate_limit_exempt: Collection[str]) -> set[int]:
    """The error statuses an operation can answer, from its guards, body and path (see the module)."""
    codes = {503}
    if route.path not in rate_limit_exempt:
        codes.add(429)
    guards = handler.resolve_guards()
    if require_token in guards or require_admin in guards:
        codes |= {401, 429}
    if require_admin in guards:
        codes.add(403)
    if handler.parsed_data_field is not None:
        codes |= {400, 404, 413, 422}
    if route.path_parameters:
        codes |= {400, 404}
    return codes


class OperationDocs(ReceiveRoutePlugin):
    """Adds the derived error responses and the bearer security to each operation as its route registers."""

    def __init__(self, rate_limit_exempt: Collection[str]) -> None:
        self.rate_limit_exempt = rate_limit_exempt

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            codes = derived_error_codes(route, handler, self.rate_limit_exempt)
            handler.responses = {**error_responses(*codes), **(handler.responses or {})}
            guards = handler.resolve_guards()
            if require_token in guards or require_admin in guards:
                handler.security = [*(handler.security or []), {BEARER: []}]


def example_klines(n: int = 24, start_ms: int = 1_709_251_200_000, hour_ms: int = 3_600_000) -> list[dict[str, Any]]:
    """`n` valid hourly klines (a gentle uptrend from 100) for the documentation's examples."""
    rows = []
    for i in range(n):
        opn = round(100 + 0.1 * i, 2)
        close = round(opn + 0.1, 2)
        rows.append(
            {
                "open_time": start_ms + i * hour_ms,
                "open": opn,
                "high": round(close + 0.05, 2),
                "low": round(opn - 0.05, 2),
                "close": close,
                "volume": 10.0 + i,
            }
        )
    return rows


class PredictBodySchema(OpenAPISchemaPlugin):
    """/predict's body: one request, or a batch of them (`anyOf`: with `requests`, the rest is ignored)."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is PredictBody

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return field_definition.annotation is PredictBody

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        single = schema_creator.for_field_definition(FieldDefinition.from_annotation(PredictRequest))
        batch = Schema(
            type=OpenAPIType.OBJECT,
            title="PredictBatch",
            required=["requests"],
            properties={"requests": Schema(type=OpenAPIType.ARRAY, items=single, min_items=1)},
            description="Several requests; those for the same model share one inference call.",
        )
        request = {"symbol": "BTCUSDT", "interval": "1h", "klines": example_klines()}
        return Schema(
            any_of=[single, batch],
            description="One request (`symbol` required) or a batch (`requests` required).",
            examples=[request, {"requests": [request]}],
        )


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="cse serving",
        version="1",
        description=(
            "Crypto signal engine: predictions from the ONNX models of the model store. Errors are always "
            "JSON `{status_code, detail}`; operations marked with a lock take an API token."
        ),
        path="/schema",
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="`Authorization: Bearer <token>` (or `X-API-Key: <token>`); "
                    "tokens come from `cse-serving token create`.",
                )
            }
        ),
    )


def unready_response(body: type) -> dict[int, ResponseSpec]:
    """For a readiness route, whose 503 says what is not ready in `body` (or is the server's own 503)."""
    return {
        503: ResponseSpec(
            data_container=body | ErrorBody,  # type: ignore[operator]
            description=f"Not ready (`{body.__name__}` says why), or the server is at its concurrency limit "
            "(`ErrorBody`, with `Retry-After`).",
            generate_examples=False,
        )
    }
