"""`cse_hourly`: refresh the whole graph for every symbol partition, on the hour (stopped by default,
so that the demo never trains behind the user's back; start it in the UI)."""

from __future__ import annotations

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from cse_assets.jobs import refresh
from cse_assets.partitions import symbols


@schedule(
    name="cse_hourly",
    cron_schedule="5 * * * *",  # five minutes past: the previous hour's candle has closed everywhere
    job=refresh,
    default_status=DefaultScheduleStatus.STOPPED,
    execution_timezone="UTC",
    description="Refresh data, models and the published model for every symbol partition, hourly.",
)
def cse_hourly(context: ScheduleEvaluationContext) -> list[RunRequest] | SkipReason:
    keys = context.instance.get_dynamic_partitions(symbols.name)
    if not keys:
        return SkipReason("no symbol partitions yet (the seed_symbols_sensor adds the bundled ones)")
    hour = context.scheduled_execution_time.strftime("%Y%m%dT%H")
    return [RunRequest(run_key=f"{key}-{hour}", partition_key=key) for key in keys]
