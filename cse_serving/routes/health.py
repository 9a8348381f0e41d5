"""Liveness and readiness for orchestrators: no auth, no work beyond counting loaded models."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from cse_serving.registry import ModelRegistry
from cse_serving.schemas import Health


class HealthController(Controller):
    tags = ("monitoring",)

    @get("/healthz", operation_id="healthz", summary="Process is alive", sync_to_thread=False)
    def healthz(self, registry: ModelRegistry) -> Health:
        return Health(status="ok", models=len(registry))

    @get(
        "/readyz",
        operation_id="readyz",
        summary="Ready to predict",
        description="200 when at least one model is loaded, else 503 (e.g. an empty or corrupt store).",
        sync_to_thread=False,
    )
    def readyz(self, registry: ModelRegistry) -> Response[Health]:
        count = len(registry)
        if count:
            return Response(Health(status="ready", models=count), status_code=HTTP_200_OK)
        return Response(Health(status="no model loaded", models=0), status_code=HTTP_503_SERVICE_UNAVAILABLE)
