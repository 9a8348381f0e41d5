"""Jobs over asset selections; schedules that run them live in `schedules.py`.

Every job runs its steps in one process: the executor is the code location's (`in_process_executor`,
chosen and measured in `definitions.py`)."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from cse_assets.catalog import GLOBAL_MODELS
from cse_assets.partitions import symbols

GLOBAL_TRAINING = AssetSelection.groups(GLOBAL_MODELS.group)

data_refresh = define_asset_job(
    "data_refresh",
    selection=AssetSelection.groups("data"),
    partitions_def=symbols,
    description="Fetch, clean and prepare one symbol: raw_klines → datasets, with their checks.",
)

refresh = define_asset_job(
    "refresh",
    selection=AssetSelection.all() - GLOBAL_TRAINING,
    partitions_def=symbols,
    description="The whole graph for one symbol: data → train → export (parity-checked) → publish, then the "
    "global models checked on it and published when they pass (they are trained by `global_training`).",
)

global_training = define_asset_job(
    "global_training",
    selection=GLOBAL_TRAINING,
    description="Train and export the global models once, on the features of every symbol partition.",
)

serve_new_symbol = define_asset_job(
    "serve_new_symbol",
    selection=AssetSelection.assets("raw_klines", "klines", "features", "global_evaluation", "published_global"),
    partitions_def=symbols,
    description="A new symbol served by the global models with no training: its data, the held-out (zero-shot) "
    "check of the global graphs on it, and their publication when a head passes the gate.",
)
