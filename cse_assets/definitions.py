"""The one `Definitions` of cse: asset groups by module, checks, resources per deployment, jobs, sensors.

Adding a domain is one line in ASSET_GROUPS (e.g. `"models": models` for `cse_assets/assets/models.py`);
its checks go in `checks.py` (or their own module added to CHECK_MODULES), its jobs in `jobs.py` and
schedules in `schedules.py`. The deployment is chosen by `CSE_DEPLOYMENT` (default "local").
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from cse_assets import checks, jobs, schedules
from cse_assets.assets import data, evaluation, models, publish
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
from cse_models.errors import UnknownNameError

ASSET_GROUPS: dict[str, ModuleType] = {
    "data": data,
    "models": models,
    "evaluation": evaluation,
    "publish": publish,
}
CHECK_MODULES: list[ModuleType] = [checks, models, evaluation]


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


RESOURCES_BY_DEPLOYMENT: dict[str, dict[str, Any]] = {
    "local": _resources(KlineSourceResource()),  # bundled sample: no network
    "live": _resources(KlineSourceResource(kind="binance", api_url=os.environ.get("CSE_BINANCE_API_URL"))),
}


def resources_for(deployment: str) -> dict[str, Any]:
    try:
        return RESOURCES_BY_DEPLOYMENT[deployment]
    except KeyError:
        known = ", ".join(sorted(RESOURCES_BY_DEPLOYMENT))
        raise UnknownNameError(f"unknown CSE_DEPLOYMENT {deployment!r}; known: {known}") from None


defs = Definitions(
    assets=[
        asset
        for group, module in ASSET_GROUPS.items()
        for asset in load_assets_from_modules([module], group_name=group)
    ],
    asset_checks=load_asset_checks_from_modules(CHECK_MODULES),
    jobs=[jobs.data_refresh, jobs.refresh],
    schedules=[schedules.cse_hourly],
    sensors=[seed_symbols_sensor],
    resources=resources_for(os.environ.get("CSE_DEPLOYMENT", "local")),
)
