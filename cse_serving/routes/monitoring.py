"""The seed's monitoring views: the latest prediction per series, and per-model quality, latency and
confidence (`/metrics/deep_learning`). Token-protected: unlike /metrics they expose predictions."""

from __future__ import annotations

from litestar import Controller, get

from cse_serving.auth import require_token
from cse_serving.monitoring import ServingMetrics
from cse_serving.registry import ModelRegistry
from cse_serving.schemas import DeepLearningMetrics, LatestPredictions, ModelMonitoring

# Manifest metrics shown as model_accuracy ("promotion": versions published before the per-head gate).
QUALITY_KEYS = ("validation", "walk_forward", "walk_forward_skill", "naive_baseline", "skill", "promotion")


class MonitoringController(Controller):
    tags = ("monitoring",)
    guards = (require_token,)

    @get(
        "/predictions/latest",
        operation_id="latestPredictions",
        summary="The last prediction served per series",
        sync_to_thread=False,
    )
    def latest(self, registry: ModelRegistry) -> LatestPredictions:
        return LatestPredictions(predictions=[registry.latest[key] for key in sorted(registry.latest)])

    @get(
        "/metrics/deep_learning",
        operation_id="deepLearningMetrics",
        summary="Per-model accuracy, latency and confidence (the seed's monitoring view)",
        description=(
            "`model_accuracy` is what the model measured before publication (validation, walk-forward, naive "
            "baseline, skill, promotion verdict, from its manifest); `predictions_served` and `model_confidence` "
            "(mean max-probability of classification answers and of published forecast direction heads) are live "
            "since the server started."
        ),
        sync_to_thread=False,
    )
    def deep_learning(self, registry: ModelRegistry, metrics: ServingMetrics) -> DeepLearningMetrics:
        rows = []
        for key, model in sorted(registry.models().items()):
            served = registry.served.get(key, 0)
            confidence = registry.confidence_sum.get(key)
            rows.append(
                ModelMonitoring(
                    symbol=key[0],
                    interval=key[1],
                    model_version=model.version,
                    model_accuracy={k: model.manifest.metrics[k] for k in QUALITY_KEYS if k in model.manifest.metrics},
                    predictions_served=served,
                    model_confidence=confidence / served if confidence is not None and served else None,
                )
            )
        return DeepLearningMetrics(models=rows, prediction_latency=metrics.mean_latency_ms("/predict"))
