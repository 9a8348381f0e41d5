"""Data assets per symbol: raw klines → clean klines → features → train-only scaler → windowed datasets.

Each body calls cse_models and describes the result; the IO manager stores the returned value.
"""

# No `from __future__ import annotations`: Dagster inspects the context/resource annotations at import.
import polars as pl
from dagster import AssetExecutionContext, MetadataValue, asset

from cse_assets.catalog import DATA
from cse_assets.charts import png_markdown, price_chart_png
from cse_assets.failures import SOURCE_RETRY_POLICY, library_errors_as_failure
from cse_assets.metadata import cleaning_metadata, time_span
from cse_assets.partitions import symbols
from cse_assets.resources import DataSettings, KlineSourceResource
from cse_models.data.clean import clean_klines
from cse_models.datasets.segments import SplitArrays, build_datasets, compute_features, fit_feature_scaler, window_count
from cse_models.features.scaling import FittedScaler


@asset(
    partitions_def=symbols,
    kinds={"polars", "parquet"},
    group_name=DATA.group,
    owners=DATA.owners,
    code_version=DATA.code_version,
    retry_policy=SOURCE_RETRY_POLICY,
)
def raw_klines(
    context: AssetExecutionContext, kline_source: KlineSourceResource, data_settings: DataSettings
) -> pl.DataFrame:
    """Klines as the source delivers them over the configured range — duplicates, gaps and all. The only
    step that talks to the exchange, so the only one with a retry policy (transient source errors only)."""
    symbol, interval = context.partition_key, data_settings.interval
    with library_errors_as_failure():
        source = kline_source.source()
        start, end = data_settings.time_range().resolve(source.anchor(symbol, interval))
        raw = source.fetch(symbol, interval, start, end)
    context.add_output_metadata({**time_span(raw), "source": kline_source.kind, "interval": interval})
    return raw


@asset(
    partitions_def=symbols,
    kinds={"polars", "parquet"},
    group_name=DATA.group,
    owners=DATA.owners,
    code_version=DATA.code_version,
)
def klines(context: AssetExecutionContext, raw_klines: pl.DataFrame, data_settings: DataSettings) -> pl.DataFrame:
    """The canonical kline table: sorted, unique, bad ticks handled; the cleaning report is the metadata."""
    with library_errors_as_failure():
        clean, report = clean_klines(raw_klines, data_settings.interval, data_settings.cleaning_config())
    chart = png_markdown(price_chart_png(clean, f"{context.partition_key} {data_settings.interval}"), "close")
    context.add_output_metadata({**cleaning_metadata(report), **time_span(clean), "chart": MetadataValue.md(chart)})
    return clean


@asset(
    partitions_def=symbols,
    kinds={"polars", "parquet"},
    group_name=DATA.group,
    owners=DATA.owners,
    code_version=DATA.code_version,
)
def features(context: AssetExecutionContext, klines: pl.DataFrame, data_settings: DataSettings) -> pl.DataFrame:
    """The configured feature set (warm-up rows dropped), one row per candle."""
    with library_errors_as_failure():
        table = compute_features(klines, data_settings.feature_set)
    context.add_output_metadata(
        {**time_span(table), "columns": table.columns[1:], "warmup_rows": klines.height - table.height}
    )
    return table


@asset(
    partitions_def=symbols,
    kinds={"json"},
    group_name=DATA.group,
    owners=DATA.owners,
    code_version=DATA.code_version,
)
def scaler(context: AssetExecutionContext, features: pl.DataFrame, data_settings: DataSettings) -> FittedScaler:
    """Feature scaler fit on the chronological train segment only (JSON, never pickle)."""
    with library_errors_as_failure():
        fitted = fit_feature_scaler(features, data_settings.data_config())
    context.add_output_metadata(
        {
            "kind": fitted.kind,
            "fit_rows": fitted.fit_rows,
            "fit_first_time": MetadataValue.timestamp(fitted.fit_first_time_ms / 1000),
            "fit_last_time": MetadataValue.timestamp(fitted.fit_last_time_ms / 1000),
        }
    )
    return fitted


@asset(
    partitions_def=symbols,
    kinds={"numpy"},
    group_name=DATA.group,
    owners=DATA.owners,
    code_version=DATA.code_version,
)
def datasets(
    context: AssetExecutionContext, features: pl.DataFrame, scaler: FittedScaler, data_settings: DataSettings
) -> dict[str, SplitArrays]:
    """Scaled train / val / test segments with their targets; windows are views made at training time."""
    config = data_settings.data_config()
    with library_errors_as_failure():
        splits = build_datasets(features, scaler, config)
    context.add_output_metadata({f"{name}_windows": window_count(arrays, config) for name, arrays in splits.items()})
    return splits
