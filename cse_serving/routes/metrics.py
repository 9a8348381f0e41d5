"""Prometheus scrape endpoint (no auth, like /healthz: it exposes counts and scores, never data)."""

from __future__ import annotations

from litestar import Controller, Response, get

from cse_serving.monitoring import ServingMetrics

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class MetricsController(Controller):
    tags = ("monitoring",)

    @get(
        "/metrics",
        operation_id="metrics",
        summary="Prometheus exposition",
        media_type=PROMETHEUS_TEXT,
        sync_to_thread=False,
    )
    def metrics(self, metrics: ServingMetrics) -> Response[bytes]:
        return Response(metrics.render(), media_type=PROMETHEUS_TEXT)
