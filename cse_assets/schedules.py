"""`cse_hourly`: refresh, on the hour, the symbols whose source has candles newer than the graph last
used (stopped by default, so the demo never trains behind the user's back; start it in the UI).

"Stale" is decided per symbol partition: the source's anchor (the clock for Binance, the last candle for
archives and the bundled sample) against the `last_open_time` of the latest `raw_klines` materialization.
A symbol never materialized is stale; an archive that has not grown is not refreshed again.
"""

from __future__ import annotations

from datetime import datetime

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from cse_assets.jobs import refresh
from cse_assets.partitions import symbols
from cse_assets.resources import DataSettings, KlineSourceResource

RAW_KLINES = AssetKey("raw_klines")


def last_used_candle(instance: DagsterInstance, symbol: str) -> datetime | None:
    """`last_open_time` of the latest raw_klines materialization of `symbol`, or None."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=RAW_KLINES, asset_partitions=[symbol]), limit=1
    ).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get("last_open_time")
    return datetime.fromisoformat(value.value) if value is not None and value.value else None


def stale_symbols(
    instance: DagsterInstance, kline_source: KlineSourceResource, data_settings: DataSettings
) -> list[str]:
    source = kline_source.source()
    stale = []
    for symbol in instance.get_dynamic_partitions(symbols.name):
        used = last_used_candle(instance, symbol)
        if used is None or source.anchor(symbol, data_settings.interval) > used:
            stale.append(symbol)
    return stale


@schedule(
    name="cse_hourly",
    cron_schedule="5 * * * *",  # five minutes past: the previous hour's candle has closed everywhere
    job=refresh,
    default_status=DefaultScheduleStatus.STOPPED,
    execution_timezone="UTC",
    description="Refresh data, models and the published model for every symbol with newer candles, hourly.",
)
def cse_hourly(
    context: ScheduleEvaluationContext, kline_source: KlineSourceResource, data_settings: DataSettings
) -> list[RunRequest] | SkipReason:
    if not context.instance.get_dynamic_partitions(symbols.name):
        return SkipReason("no symbol partitions yet (the seed_symbols_sensor adds the bundled ones)")
    stale = stale_symbols(context.instance, kline_source, data_settings)
    if not stale:
        return SkipReason("every symbol's models were trained on the newest candles its source has")
    hour = context.scheduled_execution_time.strftime("%Y%m%dT%H")
    return [RunRequest(run_key=f"{key}-{hour}", partition_key=key) for key in stale]
