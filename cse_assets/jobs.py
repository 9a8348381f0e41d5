"""Jobs over asset selections; schedules that run them live in `schedules.py`.

Both run a symbol partition's steps in one process: the executor is the code location's
(`in_process_executor`, chosen and measured in `definitions.py`)."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from cse_assets.partitions import symbols

data_refresh = define_asset_job(
    "data_refresh",
    selection=AssetSelection.groups("data"),
    partitions_def=symbols,
    description="Fetch, clean and prepare one symbol: raw_klines → datasets, with their checks.",
)

refresh = define_asset_job(
    "refresh",
    selection=AssetSelection.all(),
    partitions_def=symbols,
    description="The whole graph for one symbol: data → train → export (parity-checked) → publish.",
)
