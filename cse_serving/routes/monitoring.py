"""The seed's monitoring views: the latest prediction per series, and per-model quality, latency and
confidence (`/metrics/deep_learning`). Token-protected: unlike /metrics they expose predictions."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get

from cse_models.store import Metrics
from cse_serving.auth import require_token
from cse_serving.live import LiveScorecard
from cse_serving.model_registry import ModelRegistry
from cse_serving.monitoring import ServingMetrics
from cse_serving.schemas import DeepLearningMetrics, LatestPredictions, ModelMonitoring

# Manifest metrics shown as model_accuracy ("promotion": versions published before the per-head gate).
QUALITY_KEYS = ("validation", "walk_forward", "walk_forward_skill", "naive_baseline", "skill", "promotion")


def quality(metrics: Metrics) -> dict[str, Any]:
    """The manifest's quality figures: walk-forward per head, and the member's own validation scores."""
    recorded = metrics.to_dict()
    return {key: recorded[key] for key in QUALITY_KEYS if key in recorded}


class MonitoringController(Controller):
    tags = ("monitoring",)
    guards = (require_token,)

    @get(
        "/predictions/latest",
        operation_id="latestPredictions",
        summary="The last prediction served per series",
        sync_to_thread=False,
    )
    def latest(self, metrics: ServingMetrics) -> LatestPredictions:
        return LatestPredictions(predictions=metrics.latest())

    @get(
        "/metrics/deep_learning",
        operation_id="deepLearningMetrics",
        summary="Per-model accuracy, latency and confidence (the seed's monitoring view)",
        description=(
            "`model_accuracy` is what the model measured before publication (validation, walk-forward, naive "
            "baseline, skill, promotion verdict, from its manifest); `predictions_served` and `model_confidence` "
            "(mean max-probability of classification answers and of published forecast direction heads) are live "
            "since the server started. `live` is the live scorecard of the serving version over the last 24 h and "
            "7 d: every prediction scored against the candle it predicted once that candle closed, beside "
            "persistence, with interval coverage and direction accuracy/Brier where served; `degraded` flags a "
            "live skill below the walk-forward skill by more than the configured margin."
        ),
        sync_to_thread=False,
    )
    def deep_learning(
        self, registry: ModelRegistry, metrics: ServingMetrics, live: LiveScorecard | None
    ) -> DeepLearningMetrics:
        rows = []
        for key, model in sorted(registry.models().items()):
            rows.append(
                ModelMonitoring(
                    symbol=key[0],
                    interval=key[1],
                    model_version=model.version,
                    model_accuracy=quality(model.manifest.metrics),
                    predictions_served=metrics.served(key),
                    model_confidence=metrics.mean_confidence(key),
                    live=live.scores(model) if live is not None else {},
                )
            )
        return DeepLearningMetrics(models=rows, prediction_latency=metrics.mean_latency_ms("/predict"))
