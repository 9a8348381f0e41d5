"""The one `Definitions` of cse: asset groups, checks, resources per deployment, jobs, schedules, sensors.

The environment is read once, here (`CseSettings.from_env`): which deployment's resources, which model
set. `build_definitions(settings)` is the whole wiring, so tests and tools build the graph for any
settings without touching the environment. Loading it imports no JAX (a test holds it to that): the
training and export code is imported inside the asset bodies that run it, and every Dagster process —
webserver, daemon, run worker, each step — loads these definitions.

Runs execute in one process (`in_process_executor`) — the `refresh` job, `data_refresh` and the UI's
ad-hoc materializations alike. A run is one symbol partition whose steps mostly form a chain; under the
default multiprocess executor each of its 14 steps started a Python process that imported Dagster and
the definitions again. Measured on a BTCUSDT refresh (benchmarks/bench_refresh.py, `executor_comparison`,
2 CPU cores): 150 s with JAX in the definitions, 110 s without it, 83 s with Dagster's `forkserver` start
method and the library preloaded, 75 s in one process. Forked steps still compile their JAX functions
anew, the one parallel pair (evaluation beside training) competes for the same cores, and two JAX
processes on one GPU would each reserve most of its memory. On Kubernetes, `CSE_EXECUTOR=k8s` runs a pod
per step instead (`executors.py`, deploy/k8s/).

Adding a domain: its asset module under `cse_assets/assets/` (a factory when it depends on the model
specs), its owners and code in `catalog.py`, one line in `build_definitions`; checks on data assets go in
`checks.py`, jobs in `jobs.py`, schedules in `schedules.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from cse_assets import checks, jobs, schedules
from cse_assets.assets import DomainDefinitions, data
from cse_assets.assets.ensemble import build_ensemble
from cse_assets.assets.evaluation import build_evaluation
from cse_assets.assets.global_models import build_global
from cse_assets.assets.models import build_models
from cse_assets.assets.publish import build_published_model
from cse_assets.executors import executor_for
from cse_assets.io import CseIOManager
from cse_assets.partitions import seed_symbols_sensor
from cse_assets.resources import (
    CseHomeResource,
    DataSettings,
    EvaluationSettings,
    KlineSourceResource,
    ModelStoreResource,
    TrainingResource,
)
from cse_assets.settings import CseSettings
from cse_models.errors import UnknownNameError
from cse_models.model_sets import MODEL_SETS
from cse_models.specs import ModelSpec


def _resources(source: KlineSourceResource) -> dict[str, Any]:
    home = CseHomeResource()
    return {
        "kline_source": source,
        "data_settings": DataSettings(),
        "cse_home": home,
        "model_store": ModelStoreResource(),
        "training": TrainingResource(),
        "evaluation_settings": EvaluationSettings(),
        "io_manager": CseIOManager(home=home),
    }


RESOURCES_BY_DEPLOYMENT: dict[str, Callable[[CseSettings], dict[str, Any]]] = {
    "local": lambda _: _resources(KlineSourceResource()),  # bundled sample: no network
    "live": lambda settings: _resources(KlineSourceResource(kind="binance", api_url=settings.binance_api_url)),
}


def resources_for(deployment: str, settings: CseSettings | None = None) -> dict[str, Any]:
    """The deployment's resources; `settings` gives what they take from the environment (Binance's URL)."""
    try:
        build = RESOURCES_BY_DEPLOYMENT[deployment]
    except KeyError:
        known = ", ".join(sorted(RESOURCES_BY_DEPLOYMENT))
        raise UnknownNameError(f"unknown CSE_DEPLOYMENT {deployment!r}; known: {known}") from None
    return build(settings or CseSettings(deployment=deployment))


def graph_assets(specs: Sequence[ModelSpec]) -> DomainDefinitions:
    """The whole asset graph for a model set: data, per-symbol models, evaluation, ensemble, publication and
    the global models, with their checks."""
    domains = [build_models(specs), build_evaluation(specs), build_ensemble(specs), build_global(specs)]
    return DomainDefinitions(
        assets=(
            *load_assets_from_modules([data]),
            *(a for d in domains for a in d.assets),
            build_published_model(specs),
        ),
        checks=(*load_asset_checks_from_modules([checks]), *(c for d in domains for c in d.checks)),
    )


def build_definitions(settings: CseSettings) -> Definitions:
    graph = graph_assets(MODEL_SETS.get(settings.model_set))
    return Definitions(
        assets=list(graph.assets),
        asset_checks=list(graph.checks),
        jobs=[jobs.data_refresh, jobs.refresh, jobs.global_training, jobs.serve_new_symbol],
        schedules=[schedules.cse_hourly],
        sensors=[seed_symbols_sensor],
        resources=resources_for(settings.deployment, settings),
        executor=executor_for(settings.executor),
    )


defs = build_definitions(CseSettings.from_env(os.environ))
