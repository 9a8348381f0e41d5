"""Dependency providers: handlers receive the app's registry, predictor and metrics by DI, never globals.

The lifespan-owned objects live on `app.state` (one set per app instance), so tests can run several
apps side by side."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import Provide

from cse_serving.live import LiveScorecard
from cse_serving.model_registry import ModelRegistry
from cse_serving.monitoring import ServingMetrics
from cse_serving.predictor import Predictor


def provide_registry(state: State) -> ModelRegistry:
    return state.registry


def provide_predictor(state: State) -> Predictor:
    return state.predictor


def provide_metrics(state: State) -> ServingMetrics:
    return state.metrics


def provide_live(state: State) -> LiveScorecard | None:
    """The live scorecard, opened by the lifespan (None when switched off)."""
    return state.live


DEPENDENCIES = {
    "registry": Provide(provide_registry, sync_to_thread=False),
    "predictor": Provide(provide_predictor, sync_to_thread=False),
    "metrics": Provide(provide_metrics, sync_to_thread=False),
    "live": Provide(provide_live, sync_to_thread=False),
}
