"""cse_assets — the Dagster wiring of cse: definitions, assets, resources, IO, partitions, checks, jobs."""

import warnings

# Checks on partitioned assets need `partitions_def=` on the check, which Dagster 1.13 marks as preview.
# We rely on it on purpose (see checks.py); say so once here instead of on every import.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")
