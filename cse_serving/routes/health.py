"""Liveness and readiness for orchestrators: no auth, no work beyond reading the registry's states."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from cse_serving.model_registry import ModelRegistry, Readiness
from cse_serving.openapi import unready_response
from cse_serving.routes.models import series_readiness
from cse_serving.schemas import Health, ReadinessReport


class HealthController(Controller):
    tags = ("monitoring",)

    @get("/healthz", operation_id="healthz", summary="Process is alive", sync_to_thread=False)
    def healthz(self, registry: ModelRegistry) -> Health:
        return Health(status="ok", models=len(registry))

    @get(
        "/readyz",
        operation_id="readyz",
        summary="Ready to predict",
        description=(
            "200 while at least one series answers, with `status` `degraded` and the series that are not "
            "ready listed (another version than the store asks for serves, or none); 503 when no model is "
            "loaded (an empty or corrupt store). Per series: GET /models/{symbol}/{interval}/ready."
        ),
        responses=unready_response(ReadinessReport),
        sync_to_thread=False,
    )
    def readyz(self, registry: ModelRegistry) -> Response[ReadinessReport]:
        states = registry.states()
        count = len(registry)
        not_ready = [
            series_readiness(state, admin=False)
            for _, state in sorted(states.items())
            if state.readiness is not Readiness.READY
        ]
        if not count:
            return Response(
                ReadinessReport(status="no model loaded", models=0, series=not_ready),
                status_code=HTTP_503_SERVICE_UNAVAILABLE,
            )
        status = "degraded" if not_ready else "ready"
        return Response(ReadinessReport(status=status, models=count, series=not_ready), status_code=HTTP_200_OK)
