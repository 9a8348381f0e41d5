"""Asset checks on the data assets, per symbol partition. Blocking: a failure stops everything
downstream of the checked asset in the same run (and so, later, publication)."""

# No `from __future__ import annotations`: Dagster inspects the context/resource annotations at import.
import numpy as np
import polars as pl
from dagster import AssetCheckResult, AssetIn, asset_check

from cse_assets.partitions import symbols
from cse_assets.resources import DataSettings
from cse_models.features.scaling import FittedScaler
from cse_models.features.split import chronological_split


@asset_check(asset="klines", partitions_def=symbols, blocking=True)
def klines_unique_and_monotonic(klines: pl.DataFrame) -> AssetCheckResult:
    """open_time strictly increases: sorted and no candle twice."""
    steps = klines.get_column("open_time").dt.epoch("ms").diff().drop_nulls().to_numpy()
    bad = np.flatnonzero(steps <= 0)
    first_bad = {"first_bad_row": int(bad[0]) + 1} if bad.size else {}
    return AssetCheckResult(
        passed=not bad.size, metadata={"rows": klines.height, "bad_steps": int(bad.size), **first_bad}
    )


@asset_check(asset="features", partitions_def=symbols, blocking=True)
def features_finite_after_warmup(features: pl.DataFrame) -> AssetCheckResult:
    """No NaN/inf anywhere in the feature table (compute_features has already dropped the warm-up rows)."""
    values = features.drop("open_time").to_numpy()
    bad_rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
    first_bad = {"first_bad_row": int(bad_rows[0])} if bad_rows.size else {}
    return AssetCheckResult(passed=not bad_rows.size, metadata={"non_finite_rows": int(bad_rows.size), **first_bad})


@asset_check(asset="scaler", partitions_def=symbols, blocking=True, additional_ins={"features": AssetIn("features")})
def scaler_fit_on_train_rows_only(
    scaler: FittedScaler, features: pl.DataFrame, data_settings: DataSettings
) -> AssetCheckResult:
    """The scaler's recorded fit rows are exactly the chronological train segment of the features."""
    config = data_settings.data_config()
    # segment bounds do not depend on min_rows (it only rejects too-short segments, as the asset did)
    train = chronological_split(features.height, config.split, min_rows=1, purge=config.purge)["train"]
    times = features.get_column("open_time").dt.epoch("ms").to_numpy()
    expected = {
        "fit_rows": train.stop - train.start,
        "fit_first_time_ms": int(times[train.start]),
        "fit_last_time_ms": int(times[train.stop - 1]),
    }
    actual = {name: getattr(scaler, name) for name in expected}
    return AssetCheckResult(passed=actual == expected, metadata={"expected": expected, "actual": actual})
