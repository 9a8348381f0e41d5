"""Dependency providers: handlers receive the app's registry and metrics by DI, never from globals.

The lifespan-owned objects live on `app.state` (one set per app instance), so tests can run several
apps side by side."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import Provide

from cse_serving.monitoring import ServingMetrics
from cse_serving.registry import ModelRegistry


def provide_registry(state: State) -> ModelRegistry:
    return state.registry


def provide_metrics(state: State) -> ServingMetrics:
    return state.metrics


DEPENDENCIES = {
    "registry": Provide(provide_registry, sync_to_thread=False),
    "metrics": Provide(provide_metrics, sync_to_thread=False),
}
