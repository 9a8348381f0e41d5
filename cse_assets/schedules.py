"""`cse_hourly`: refresh, on the hour, the symbols whose source has a closed candle newer than the graph
last used (stopped by default, so the demo never trains behind the user's back; start it in the UI).

Why a schedule and not declarative automation (`AutomationCondition`): Dagster recommends declarative
automation when an asset should update because its upstream assets in Dagster changed; here the trigger
is outside Dagster — a candle closing at the exchange, on the hour — and `raw_klines` has no upstream
asset whose change Dagster could see. Dagster's answer for that shape is a schedule (or sensor) that
asks the outside system and requests only the partitions that changed; the whole chain then runs as one
`refresh` run per symbol, in one process. `published_model` carries the freshness policy that says when
this automation has fallen behind.

Per symbol partition, at each tick (the reasons go to the tick's log, and into the SkipReason when no
symbol is requested):
- the source is asked for its newest closed candle. A symbol it cannot serve (not in the bundled sample,
  no archive file, unknown to Binance) is skipped — never a new failing run every hour; a transient
  source error (Binance 5xx) skips the symbol for this hour only;
- the candle is compared with `last_open_time` of the latest `raw_klines` materialization: a symbol
  never materialized, or with a newer candle, is requested; an archive that has not grown is not.
"""

from __future__ import annotations

from dataclasses import dataclass
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

from cse_assets.catalog import TRAINING_POOL
from cse_assets.jobs import refresh
from cse_assets.partitions import symbols
from cse_assets.resources import DataSettings, KlineSourceResource
from cse_models.data.schema import interval_to_timedelta
from cse_models.data.sources import KlineSource
from cse_models.errors import CseError, TransientSourceError

RAW_KLINES = AssetKey("raw_klines")
PROBE_CANDLES = 3  # how many recent candles the newest-candle probe asks for (one request on Binance)


@dataclass(frozen=True)
class SymbolDecision:
    """Whether the tick refreshes `symbol`, and why (shown in the tick log and skip reasons)."""

    symbol: str
    refresh: bool
    reason: str
    source_failed: bool = False  # logged as a warning: someone may have to act (or wait for the exchange)


def last_used_candle(instance: DagsterInstance, symbol: str) -> datetime | None:
    """`last_open_time` of the latest raw_klines materialization of `symbol`, or None."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=RAW_KLINES, asset_partitions=[symbol]), limit=1
    ).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get("last_open_time")
    return datetime.fromisoformat(value.value) if value is not None and value.value else None


def newest_candle(source: KlineSource, symbol: str, interval: str) -> datetime:
    """Open time of the newest closed candle the source serves for `symbol`; raises the source's
    `CseError` when it cannot serve the symbol. Asking for the last few candles (rather than reading
    `anchor`, which is the wall clock for Binance) is what tells a live source's new candle from none."""
    anchor = source.anchor(symbol, interval)
    step = interval_to_timedelta(interval)
    recent = source.fetch(symbol, interval, anchor - PROBE_CANDLES * step, anchor + step)
    return recent.get_column("open_time").max()


def decide(instance: DagsterInstance, source: KlineSource, symbol: str, interval: str) -> SymbolDecision:
    try:
        newest = newest_candle(source, symbol, interval)
    except TransientSourceError as exc:
        return SymbolDecision(symbol, False, f"{symbol}: source unavailable, retried next hour ({exc})", True)
    except CseError as exc:
        return SymbolDecision(symbol, False, f"{symbol}: the source cannot serve it ({exc})", True)
    used = last_used_candle(instance, symbol)
    if used is None:
        return SymbolDecision(symbol, True, f"{symbol}: never materialized; newest candle {newest.isoformat()}")
    if newest > used:
        return SymbolDecision(symbol, True, f"{symbol}: candle {newest.isoformat()} is newer than {used.isoformat()}")
    return SymbolDecision(symbol, False, f"{symbol}: already built on its newest candle {used.isoformat()}")


def symbol_decisions(
    instance: DagsterInstance, kline_source: KlineSourceResource, data_settings: DataSettings
) -> list[SymbolDecision]:
    """One decision per symbol partition, in partition order."""
    source = kline_source.source()
    return [
        decide(instance, source, symbol, data_settings.interval)
        for symbol in instance.get_dynamic_partitions(symbols.name)
    ]


def ensure_pool_limit(instance: DagsterInstance, pool: str) -> None:
    """Give `pool` the instance's default limit (dagster.yaml `concurrency: pools: default_limit`) if it
    has no limit yet. Dagster writes a pool's default limit lazily, in the queue daemon's iteration that
    first sees a run using it, and does not enforce it in that iteration: on a fresh instance the first
    tick's runs for two symbols would both start training. A limit set by hand is left alone."""
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits and pool not in {p.name for p in storage.get_pool_limits()}:
        storage.initialize_concurrency_limit_to_default(pool)


@schedule(
    name="cse_hourly",
    cron_schedule="5 * * * *",  # five minutes past: the previous hour's candle has closed everywhere
    job=refresh,
    default_status=DefaultScheduleStatus.STOPPED,
    execution_timezone="UTC",
    description="Refresh data, models and the published model for every symbol whose source has a newer "
    "closed candle, hourly; symbols the source cannot serve are skipped with the reason in the tick log.",
)
def cse_hourly(
    context: ScheduleEvaluationContext, kline_source: KlineSourceResource, data_settings: DataSettings
) -> list[RunRequest] | SkipReason:
    if not context.instance.get_dynamic_partitions(symbols.name):
        return SkipReason("no symbol partitions yet (the seed_symbols_sensor adds the bundled ones)")
    decisions = symbol_decisions(context.instance, kline_source, data_settings)
    for decision in decisions:
        (context.log.warning if decision.source_failed else context.log.info)(decision.reason)
    stale = [d.symbol for d in decisions if d.refresh]
    if not stale:
        return SkipReason("nothing to refresh: " + "; ".join(d.reason for d in decisions))
    ensure_pool_limit(context.instance, TRAINING_POOL)
    hour = context.scheduled_execution_time.strftime("%Y%m%dT%H")
    return [RunRequest(run_key=f"{key}-{hour}", partition_key=key) for key in stale]
